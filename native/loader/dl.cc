#include "dl.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace p11 {

DynamicLibrary::~DynamicLibrary() { Close(); }

#ifdef _WIN32

static std::string LastWindowsError() {
  DWORD code = GetLastError();
  char* text = nullptr;
  FormatMessageA(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                 nullptr, code, 0, reinterpret_cast<LPSTR>(&text), 0, nullptr);
  std::string message = text ? text : "error " + std::to_string(code);
  if (text) LocalFree(text);
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) message.pop_back();
  return message;
}

bool DynamicLibrary::Open(const std::string& path, const DlOptions&, std::string& error) {
  int wideLength = MultiByteToWideChar(CP_UTF8, 0, path.c_str(), -1, nullptr, 0);
  std::wstring wide(wideLength > 0 ? wideLength : 1, L'\0');
  MultiByteToWideChar(CP_UTF8, 0, path.c_str(), -1, wide.data(), wideLength);
  HMODULE module = LoadLibraryExW(wide.c_str(), nullptr, LOAD_WITH_ALTERED_SEARCH_PATH);
  if (module == nullptr) {
    error = LastWindowsError();
    return false;
  }
  handle_ = module;
  path_ = path;
  return true;
}

void* DynamicLibrary::Symbol(const char* name) const {
  return reinterpret_cast<void*>(GetProcAddress(static_cast<HMODULE>(handle_), name));
}

bool DynamicLibrary::Contains(const void* address) const {
  HMODULE owner = nullptr;
  if (!GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                          static_cast<LPCSTR>(address), &owner)) {
    return false;
  }
  return owner == static_cast<HMODULE>(handle_);
}

void DynamicLibrary::Close() {
  if (handle_ != nullptr) FreeLibrary(static_cast<HMODULE>(handle_));
  handle_ = nullptr;
}

bool KeepImageLoaded(const void* address) {
  HMODULE pinned = nullptr;
  return GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                            static_cast<LPCSTR>(address), &pinned) != 0;
}

#else

bool DynamicLibrary::Open(const std::string& path, const DlOptions& options, std::string& error) {
  int flags = RTLD_NOW | RTLD_LOCAL;
#ifdef RTLD_DEEPBIND
  if (options.deepBind) flags |= RTLD_DEEPBIND;
#else
  if (options.deepBind) {
    error = "RTLD_DEEPBIND is not available on this platform";
    return false;
  }
#endif
  dlerror();  // clear any stale message
  handle_ = dlopen(path.c_str(), flags);
  if (handle_ == nullptr) {
    const char* message = dlerror();
    error = message ? message : "dlopen failed";
    return false;
  }
  path_ = path;
  return true;
}

void* DynamicLibrary::Symbol(const char* name) const { return dlsym(handle_, name); }

bool DynamicLibrary::Contains(const void* address) const {
  Dl_info info{};
  if (dladdr(address, &info) == 0 || info.dli_fbase == nullptr) return false;
  // Compare the image that holds `address` with the image we opened: dlopen of the file that
  // dladdr names (RTLD_NOLOAD) yields the same handle only when it is the same library.
  void* owner = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
  if (owner == nullptr) return false;
  bool same = owner == handle_;
  dlclose(owner);
  return same;
}

void DynamicLibrary::Close() {
  if (handle_ != nullptr) dlclose(handle_);
  handle_ = nullptr;
}

bool KeepImageLoaded(const void* address) {
  Dl_info info{};
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return false;
  // Opening the loaded image again with RTLD_NODELETE marks it never to be unloaded; the
  // reference this takes is never given back either.
  return dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != nullptr;
}

#endif

}  // namespace p11
