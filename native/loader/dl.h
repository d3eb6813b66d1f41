// The one place that knows how each platform loads a shared library.
#pragma once

#include <string>

namespace p11 {

struct DlOptions {
  // RTLD_DEEPBIND (glibc only): the module resolves its own dependencies' symbols before the
  // process's. Node exports its bundled OpenSSL, so a module linked to the system libcrypto
  // can otherwise bind to Node's copy. Off by default because AddressSanitizer refuses it.
  bool deepBind = false;
};

class DynamicLibrary {
 public:
  DynamicLibrary() = default;
  ~DynamicLibrary();
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;

  // Opens `path`; on failure returns false and sets `error` to the loader's own message.
  bool Open(const std::string& path, const DlOptions& options, std::string& error);
  // Looks a symbol up in this library only; nullptr when it is absent.
  void* Symbol(const char* name) const;
  // True when `address` lies inside this library's image (dladdr / GetModuleHandleEx), so a
  // symbol that the loader found in some other library is not mistaken for the module's.
  bool Contains(const void* address) const;
  void Close();
  // Lets go of the handle without closing it: the library stays loaded for good.
  void Forget() { handle_ = nullptr; }

 private:
  void* handle_ = nullptr;
  std::string path_;
};

// Keeps the image that holds `address` loaded until the process ends, whatever unloads it
// later. For the addon itself: Node unloads an addon when the last environment that loaded it
// goes (a worker_thread in a process whose main thread never required it), and an engine thread
// left inside a hung module call, or just waking to end, would then run unmapped code.
// False when the platform refused (the addon then works as before, minus that guarantee).
bool KeepImageLoaded(const void* address);

}  // namespace p11
