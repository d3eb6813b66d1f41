// A loaded PKCS#11 module, shared process-wide by every JS object (and every worker_thread)
// that opens the same file. The registry of these is the addon's one deliberate global:
// PKCS#11 allows one C_Initialize per process, so its bookkeeping must be process-wide too.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "../pkcs11/types.h"
#include "dl.h"

namespace p11 {

struct InitOptions {
  CK_FLAGS flags = 0;
  bool hasLibraryParameters = false;
  std::string libraryParameters;  // passed in pReserved (NSS softokn reads its config there)
  // With CKF_OS_LOCKING_OK, also hand the module the addon's spinning mutexes (spinning_mutex.h).
  bool spinningMutexes = true;
};

class Library {
 public:
  // Loads (or finds already loaded) the module at `path`. On failure returns nullptr and sets
  // `error` to a message naming the path and the cause.
  static std::shared_ptr<Library> Load(const std::string& path, const DlOptions& options, std::string& error);

  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  const CK_FUNCTION_LIST* functions() const { return functions_; }
  const std::string& path() const { return path_; }
  // "C_GetInterface" or "C_GetFunctionList": how the function list was obtained.
  const char* entryPoint() const { return entryPoint_; }

  // Counts users process-wide: the first calls the module's C_Initialize, later ones share it.
  // CKR_CRYPTOKI_ALREADY_INITIALIZED from the module (someone else in the process initialised
  // it) is shared use too; we then never finalise it ourselves.
  CK_RV Initialize(const InitOptions& options);
  // The last user's Finalize calls the module's C_Finalize. If that fails, the share is kept.
  // An owner that cannot finalise (a call is stuck inside the module) simply keeps its share:
  // ~Library finalises the module once the last owner, the stuck job, releases it.
  CK_RV Finalize();

  // True when calls must be serialised by us: the module answered CKR_CANT_LOCK, or the caller
  // initialised it without CKF_OS_LOCKING_OK. Then every call holds serialLock().
  bool serialized() const { return serialized_; }
  std::mutex& serialLock() { return serialLock_; }
  // True when the module accepted the addon's mutex functions at C_Initialize (it may still
  // use its own locks: CKF_OS_LOCKING_OK lets it choose).
  bool offeredSpinningMutexes() const { return offeredSpinningMutexes_; }

  // True when this process is a fork of the one that initialised the module: the module's
  // state belongs to the parent, so calls must not reach it until it is initialised again.
  bool InheritedFromParent() const;

  // Counts the module's initialisations in this process. Session handles are only meaningful
  // within one: after C_Finalize and C_Initialize the module may hand the same numbers out again.
  unsigned long long initialization() const { return initialization_.load(std::memory_order_acquire); }

 private:
  Library() = default;
  bool Resolve(std::string& error);

  DynamicLibrary dl_;
  std::string path_;
  const CK_FUNCTION_LIST* functions_ = nullptr;
  const char* entryPoint_ = "";

  std::mutex initMutex_;
  bool armedAfterInitialize_ = false;  // the exit barrier, once more after the first C_Initialize
  int users_ = 0;
  bool ownsInitialization_ = false;
  unsigned forkGeneration_ = 0;
  bool serialized_ = false;
  bool offeredSpinningMutexes_ = false;
  std::atomic<unsigned long long> initialization_{0};
  std::mutex serialLock_;
};

}  // namespace p11
