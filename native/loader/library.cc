#include "library.h"

#include <atomic>
#include <cstdlib>
#include <condition_variable>
#include <map>

#include "../generated/constants.h"
#include "exit_barrier.h"
#include "spinning_mutex.h"

#ifndef _WIN32
#include <climits>
#include <pthread.h>
#endif

namespace p11 {
namespace {

// Process-wide registry: canonical path -> the loaded module. Guarded by registryMutex.
std::mutex registryMutex;
std::condition_variable registryChanged;  // an entry was erased after its module was unloaded
std::map<std::string, std::weak_ptr<Library>>& Registry() {
  static auto* registry = new std::map<std::string, std::weak_ptr<Library>>();  // never destroyed: outlives exit
  return *registry;
}

// Incremented in the child after fork(): a library initialised under an older generation was
// initialised by an ancestor process.
std::atomic<unsigned> forkGeneration{0};
std::once_flag atforkOnce;

void OnForkChild() { forkGeneration.fetch_add(1, std::memory_order_relaxed); }

std::string Canonical(const std::string& path) {
#ifdef _WIN32
  return path;
#else
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) != nullptr) return resolved;
  return path;
#endif
}

}  // namespace

std::shared_ptr<Library> Library::Load(const std::string& path, const DlOptions& options, std::string& error) {
#ifndef _WIN32
  std::call_once(atforkOnce, [] { pthread_atfork(nullptr, nullptr, OnForkChild); });
#endif
  std::string key = Canonical(path);
  std::unique_lock<std::mutex> lock(registryMutex);
  for (;;) {
    auto found = Registry().find(key);
    if (found == Registry().end()) break;
    if (auto existing = found->second.lock()) return existing;
    // The last owner is finalising and unloading this module right now; loading it again
    // before that finishes would let its C_Finalize tear down our fresh initialisation.
    registryChanged.wait(lock);
  }
  // Plain ownership until the module is usable: a failed load just unloads again.
  std::unique_ptr<Library> fresh(new Library());
  fresh->path_ = path;
  std::string dlError;
  if (!fresh->dl_.Open(path, options, dlError)) {
    error = "Cannot load PKCS#11 module '" + path + "': " + dlError;
    return nullptr;
  }
  if (!fresh->Resolve(error)) return nullptr;
  ExitBarrier::ArmAfterLoad();  // after the module's own exit handlers, so it runs before them
  std::shared_ptr<Library> library(fresh.release(), [key](Library* dying) {
    delete dying;  // C_Finalize (if still initialised) and dlclose, outside the registry lock
    std::lock_guard<std::mutex> relock(registryMutex);
    auto entry = Registry().find(key);
    if (entry != Registry().end() && entry->second.expired()) Registry().erase(entry);
    registryChanged.notify_all();
  });
  Registry()[key] = library;
  return library;
}

bool Library::Resolve(std::string& error) {
  // Prefer the 3.0 interface discovery; its "PKCS 11" list starts with the 2.40 entry points.
  auto getInterface = reinterpret_cast<CK_C_GetInterface>(dl_.Symbol("C_GetInterface"));
  if (getInterface != nullptr && dl_.Contains(reinterpret_cast<const void*>(getInterface))) {
    CK_INTERFACE* found = nullptr;
    CK_UTF8CHAR name[] = "PKCS 11";
    if (getInterface(name, nullptr, &found, 0) == ck::CKR_OK && found != nullptr && found->pFunctionList != nullptr) {
      functions_ = static_cast<const CK_FUNCTION_LIST*>(found->pFunctionList);
      entryPoint_ = "C_GetInterface";
    }
  }
  if (functions_ == nullptr) {
    auto getFunctionList = reinterpret_cast<CK_C_GetFunctionList>(dl_.Symbol("C_GetFunctionList"));
    if (getFunctionList == nullptr) {
      error = "'" + path_ + "' is not a PKCS#11 module: it exports neither C_GetInterface nor C_GetFunctionList";
      return false;
    }
    if (!dl_.Contains(reinterpret_cast<const void*>(getFunctionList))) {
      error = "'" + path_ + "' is not a PKCS#11 module: its C_GetFunctionList resolves to another library";
      return false;
    }
    CK_FUNCTION_LIST* list = nullptr;
    CK_RV rv = getFunctionList(&list);
    if (rv != ck::CKR_OK || list == nullptr) {
      const char* name = ck::RvName(rv);
      error = "C_GetFunctionList of '" + path_ + "' failed: " + (name ? name : std::to_string(rv));
      return false;
    }
    functions_ = list;
    entryPoint_ = "C_GetFunctionList";
  }
  if (functions_->version.major < 2) {
    error = "'" + path_ + "' reports Cryptoki version " + std::to_string(functions_->version.major) +
            ": at least 2.x is required";
    return false;
  }
  return true;
}

Library::~Library() {
  // The last owner can be a job dropped on a worker thread (a call that returned after the
  // engine stopped) while the process exits and the module's own exit handlers tear it down on
  // the exiting thread; finalising and unloading it here at the same time would free the same
  // state twice. Counted by the exit barrier, this finishes before those handlers run, or is
  // skipped.
  ExitBarrierPass pass;
  if (!pass.entered()) {
    dl_.Forget();
    return;
  }
  // A module still initialised when its last JS owner is gone (objects garbage collected
  // without close()) is finalised here, unless the initialisation belongs to a parent process.
  if (users_ > 0 && ownsInitialization_ && !InheritedFromParent()) functions_->C_Finalize(nullptr);
  dl_.Close();
}

bool Library::InheritedFromParent() const {
  return users_ > 0 && forkGeneration_ != forkGeneration.load(std::memory_order_relaxed);
}

CK_RV Library::Initialize(const InitOptions& options) {
  std::lock_guard<std::mutex> lock(initMutex_);
  if (InheritedFromParent()) {
    // A forked child: the parent's initialisation is not ours to use or finalise. Start over,
    // as the standard asks a child to do.
    users_ = 0;
    ownsInitialization_ = false;
  }
  if (users_ > 0) {
    ++users_;
    return ck::CKR_OK;
  }
  CK_C_INITIALIZE_ARGS args{};
  args.flags = options.flags;
  args.pReserved = options.hasLibraryParameters ? const_cast<char*>(options.libraryParameters.c_str()) : nullptr;
  // Without CKF_OS_LOCKING_OK the caller promised single-threaded use; mutex functions would
  // turn that into a request for multi-threaded use with our locks, so none are passed then.
  if (options.spinningMutexes && (args.flags & ck::CKF_OS_LOCKING_OK) != 0) UseSpinningMutexes(args);
  CK_RV rv = functions_->C_Initialize(&args);
  if (rv == ck::CKR_CANT_LOCK && args.CreateMutex != nullptr) {
    // The standard's answer when the module can use neither kind of lock. One that merely
    // refuses ours may still take its own: try those before single-threaded use.
    args.CreateMutex = nullptr;
    args.DestroyMutex = nullptr;
    args.LockMutex = nullptr;
    args.UnlockMutex = nullptr;
    rv = functions_->C_Initialize(&args);
  }
  if (rv == ck::CKR_CANT_LOCK && (args.flags & ck::CKF_OS_LOCKING_OK) != 0) {
    // The module cannot use OS locking: initialise it single-threaded and serialise every call.
    args.flags &= ~ck::CKF_OS_LOCKING_OK;
    rv = functions_->C_Initialize(&args);
  }
  if (rv != ck::CKR_OK && rv != ck::CKR_CRYPTOKI_ALREADY_INITIALIZED) return rv;
  if (!armedAfterInitialize_) {
    // Exit handlers registered during C_Initialize run before the barrier armed at load, and
    // tear down what calls still inside the module use: a back end the module loads only now
    // (p11-kit's proxy, the tests' fault shim; a call returning into it at exit crashed), or
    // any static it creates now. Arm once more.
    ExitBarrier::ArmAfterLoad();
    armedAfterInitialize_ = true;
  }
  serialized_ = (args.flags & ck::CKF_OS_LOCKING_OK) == 0;
  offeredSpinningMutexes_ = rv == ck::CKR_OK && args.CreateMutex != nullptr;
  ownsInitialization_ = rv == ck::CKR_OK;
  forkGeneration_ = forkGeneration.load(std::memory_order_relaxed);
  initialization_.fetch_add(1, std::memory_order_acq_rel);
  users_ = 1;
  return ck::CKR_OK;
}

CK_RV Library::Finalize() {
  std::lock_guard<std::mutex> lock(initMutex_);
  if (users_ == 0 || InheritedFromParent()) {
    users_ = 0;
    return ck::CKR_CRYPTOKI_NOT_INITIALIZED;
  }
  if (users_ > 1 || !ownsInitialization_) {
    --users_;
    return ck::CKR_OK;
  }
  CK_RV rv = functions_->C_Finalize(nullptr);
  // A module that refuses to finalise is still initialised: keep our share so the caller can
  // try again, instead of believing it is gone and later sharing a stale initialisation.
  if (rv != ck::CKR_OK) return rv;
  users_ = 0;
  ownsInitialization_ = false;
  return rv;
}

}  // namespace p11
