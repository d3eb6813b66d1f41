#include "ck_error.h"

#include <cstdio>

#include "../addon_data.h"
#include "../generated/constants.h"

namespace p11 {

std::string RvDisplayName(CK_RV rv) {
  if (const char* name = ck::RvName(rv)) return name;
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, rv >= ck::CKR_VENDOR_DEFINED ? "CKR_VENDOR_0x%08lX" : "CKR_0x%08lX", rv);
  return buffer;
}

Napi::Error MakeCkError(Napi::Env env, CK_RV rv, const char* function, const std::string& detail) {
  std::string name = RvDisplayName(rv);
  char code[24];
  std::snprintf(code, sizeof code, "0x%08lX", rv);
  std::string message = std::string(function) + " failed: " + name + " (" + code + ")";
  if (!detail.empty()) message += ": " + detail;

  Napi::Object error;
  AddonData& data = GetAddonData(env);
  if (!data.errorClass.IsEmpty()) {
    error = data.errorClass.New({Napi::String::New(env, message)});
  } else {
    error = Napi::Error::New(env, message).Value();
  }
  error.Set("name", Napi::String::New(env, name));
  error.Set("code", Napi::Number::New(env, static_cast<double>(rv)));
  error.Set("function", Napi::String::New(env, function));
  return Napi::Error(env, error);
}

void ThrowCkError(Napi::Env env, CK_RV rv, const char* function, const std::string& detail) {
  throw MakeCkError(env, rv, function, detail);
}

}  // namespace p11
