#include "args.h"

#include <cstring>

#include "ulong.h"

namespace p11 {

namespace {

BytesResult CopyIn(const uint8_t* data, size_t length, std::vector<CK_BYTE>& out) {
  if (length > kMaxInputBytes) return BytesResult::TooLarge;
  out.assign(data, data + length);
  return BytesResult::Ok;
}

bool IsDetached(napi_env env, napi_value arrayBuffer) {
  bool detached = false;
  napi_is_detached_arraybuffer(env, arrayBuffer, &detached);
  return detached;
}

}  // namespace

BytesResult BytesFromJs(const Napi::Value& value, std::vector<CK_BYTE>& out) {
  napi_env env = value.Env();
  bool is = false;
  if (napi_is_typedarray(env, value, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    napi_value buffer;
    size_t offset = 0;
    if (napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, &offset) != napi_ok) {
      return BytesResult::NotBytes;
    }
    if (type != napi_uint8_array && type != napi_uint8_clamped_array) return BytesResult::NotBytes;
    // A detached buffer reports length 0; say so rather than signing nothing.
    if (length == 0 && IsDetached(env, buffer)) return BytesResult::Detached;
    return CopyIn(static_cast<const uint8_t*>(data), length, out);
  }
  if (napi_is_arraybuffer(env, value, &is) == napi_ok && is) {
    void* data = nullptr;
    size_t length = 0;
    if (napi_get_arraybuffer_info(env, value, &data, &length) != napi_ok) return BytesResult::NotBytes;
    if (length == 0 && IsDetached(env, value)) return BytesResult::Detached;
    return CopyIn(static_cast<const uint8_t*>(data), length, out);
  }
  return BytesResult::NotBytes;
}

BytesResult BytesOrStringFromJs(const Napi::Value& value, std::vector<CK_BYTE>& out) {
  if (value.IsString()) {
    napi_env env = value.Env();
    size_t length = 0;
    if (napi_get_value_string_utf8(env, value, nullptr, 0, &length) != napi_ok) return BytesResult::NotBytes;
    if (length > kMaxInputBytes) return BytesResult::TooLarge;
    out.resize(length + 1);
    napi_get_value_string_utf8(env, value, reinterpret_cast<char*>(out.data()), length + 1, &length);
    out.resize(length);
    return BytesResult::Ok;
  }
  return BytesFromJs(value, out);
}

bool Args::IsAbsent(size_t index) const {
  Napi::Value value = info_[index];
  return value.IsUndefined() || value.IsNull();
}

void Args::Fail(const char* name, const std::string& expected) const {
  throw Napi::TypeError::New(Env(), std::string(function_) + ": argument '" + name + "' must be " + expected);
}

void Args::FailBytes(const char* name, BytesResult result) const {
  switch (result) {
    case BytesResult::Detached:
      Fail(name, "a Buffer, Uint8Array or ArrayBuffer that is not detached");
    case BytesResult::TooLarge:
      Fail(name, "at most " + std::to_string(kMaxInputBytes) + " bytes long");
    default:
      Fail(name, "a Buffer, Uint8Array or ArrayBuffer");
  }
}

CK_ULONG Args::Ulong(size_t index, const char* name) const {
  CK_ULONG out = 0;
  if (!UlongFromJs(info_[index], out)) {
    Fail(name, "a non-negative integer (a number up to 2^53-1, or a bigint up to the platform's CK_ULONG)");
  }
  return out;
}

bool Args::Bool(size_t index, const char* name) const {
  Napi::Value value = info_[index];
  if (!value.IsBoolean()) Fail(name, "a boolean");
  return value.As<Napi::Boolean>().Value();
}

void Args::Bytes(size_t index, const char* name, std::vector<CK_BYTE>& out) const {
  BytesResult result = BytesFromJs(info_[index], out);
  if (result != BytesResult::Ok) FailBytes(name, result);
}

void Args::Secret(size_t index, const char* name, SecureBytes& out) const {
  Napi::Value value = info_[index];
  napi_env env = Env();
  if (value.IsString()) {
    size_t length = 0;
    napi_get_value_string_utf8(env, value, nullptr, 0, &length);
    if (length > 4096) Fail(name, "at most 4096 bytes long");
    // Read straight into wiped storage: no std::string copy of the secret is ever made.
    SecureBytes text(length + 1);
    napi_get_value_string_utf8(env, value, reinterpret_cast<char*>(text.data()), length + 1, &length);
    text.Truncate(length);
    out = std::move(text);
    return;
  }
  std::vector<CK_BYTE> bytes;
  BytesResult result = BytesFromJs(value, bytes);
  if (result != BytesResult::Ok) Fail(name, "a string or a Buffer");
  if (bytes.size() > 4096) Fail(name, "at most 4096 bytes long");
  out.Resize(bytes.size());
  if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  volatile CK_BYTE* scrub = bytes.data();
  for (size_t i = 0; i < bytes.size(); ++i) scrub[i] = 0;
}

std::string Args::Utf8(size_t index, const char* name) const {
  Napi::Value value = info_[index];
  if (!value.IsString()) Fail(name, "a string");
  return value.As<Napi::String>().Utf8Value();
}

Napi::Object Args::Object(size_t index, const char* name) const {
  Napi::Value value = info_[index];
  if (!value.IsObject() || value.IsArray()) Fail(name, "an object");
  return value.As<Napi::Object>();
}

Napi::Array Args::Array(size_t index, const char* name) const {
  Napi::Value value = info_[index];
  if (!value.IsArray()) Fail(name, "an array");
  return value.As<Napi::Array>();
}

}  // namespace p11
