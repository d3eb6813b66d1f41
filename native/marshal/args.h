// Reading JS arguments into plain C++ values on the main thread. Every failure is a TypeError
// that names the PKCS#11 function and the argument; nothing malformed reaches the module.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

#include "../pkcs11/types.h"
#include "secure_bytes.h"

namespace p11 {

// Inputs larger than this are refused before any copy is made (a resource limit, not a
// PKCS#11 one): 64 MiB is far above any real signing or wrapping payload.
constexpr size_t kMaxInputBytes = 64u * 1024u * 1024u;

enum class BytesResult { Ok, NotBytes, Detached, TooLarge };

// Buffer, any Uint8Array, or ArrayBuffer; copied into `out`.
BytesResult BytesFromJs(const Napi::Value& value, std::vector<CK_BYTE>& out);
// The same, plus strings taken as UTF-8.
BytesResult BytesOrStringFromJs(const Napi::Value& value, std::vector<CK_BYTE>& out);

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* function) : info_(info), function_(function) {}

  Napi::Env Env() const { return info_.Env(); }
  const char* function() const { return function_; }
  Napi::Value At(size_t index) const { return info_[index]; }
  bool IsAbsent(size_t index) const;  // missing, undefined or null

  CK_ULONG Ulong(size_t index, const char* name) const;
  bool Bool(size_t index, const char* name) const;
  void Bytes(size_t index, const char* name, std::vector<CK_BYTE>& out) const;
  // A PIN or other secret: a string (UTF-8) or bytes, copied into wiped-on-release storage.
  void Secret(size_t index, const char* name, SecureBytes& out) const;
  std::string Utf8(size_t index, const char* name) const;
  Napi::Object Object(size_t index, const char* name) const;
  Napi::Array Array(size_t index, const char* name) const;

  [[noreturn]] void Fail(const char* name, const std::string& expected) const;
  [[noreturn]] void FailBytes(const char* name, BytesResult result) const;

 private:
  const Napi::CallbackInfo& info_;
  const char* function_;
};

}  // namespace p11
