#include "info.h"

#include "ulong.h"

namespace p11 {

namespace {

template <size_t N>
Napi::String PaddedText(Napi::Env env, const CK_UTF8CHAR (&text)[N]) {
  size_t length = N;
  while (length > 0 && (text[length - 1] == ' ' || text[length - 1] == '\0')) --length;
  return Napi::String::New(env, reinterpret_cast<const char*>(text), length);
}

Napi::Object Version(Napi::Env env, const CK_VERSION& version) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("major", Napi::Number::New(env, version.major));
  object.Set("minor", Napi::Number::New(env, version.minor));
  return object;
}

}  // namespace

Napi::Object InfoToJs(Napi::Env env, const CK_INFO& info) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("cryptokiVersion", Version(env, info.cryptokiVersion));
  object.Set("manufacturerID", PaddedText(env, info.manufacturerID));
  object.Set("flags", UlongToJs(env, info.flags));
  object.Set("libraryDescription", PaddedText(env, info.libraryDescription));
  object.Set("libraryVersion", Version(env, info.libraryVersion));
  return object;
}

Napi::Object SlotInfoToJs(Napi::Env env, const CK_SLOT_INFO& info) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("slotDescription", PaddedText(env, info.slotDescription));
  object.Set("manufacturerID", PaddedText(env, info.manufacturerID));
  object.Set("flags", UlongToJs(env, info.flags));
  object.Set("hardwareVersion", Version(env, info.hardwareVersion));
  object.Set("firmwareVersion", Version(env, info.firmwareVersion));
  return object;
}

Napi::Object TokenInfoToJs(Napi::Env env, const CK_TOKEN_INFO& info) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("label", PaddedText(env, info.label));
  object.Set("manufacturerID", PaddedText(env, info.manufacturerID));
  object.Set("model", PaddedText(env, info.model));
  object.Set("serialNumber", PaddedText(env, info.serialNumber));
  object.Set("flags", UlongToJs(env, info.flags));
  // Counts may be CK_UNAVAILABLE_INFORMATION or CK_EFFECTIVELY_INFINITE (0): passed as they are,
  // as numbers or (for ~0) a bigint, so callers can tell them apart.
  object.Set("maxSessionCount", UlongToJs(env, info.ulMaxSessionCount));
  object.Set("sessionCount", UlongToJs(env, info.ulSessionCount));
  object.Set("maxRwSessionCount", UlongToJs(env, info.ulMaxRwSessionCount));
  object.Set("rwSessionCount", UlongToJs(env, info.ulRwSessionCount));
  object.Set("maxPinLen", UlongToJs(env, info.ulMaxPinLen));
  object.Set("minPinLen", UlongToJs(env, info.ulMinPinLen));
  object.Set("totalPublicMemory", UlongToJs(env, info.ulTotalPublicMemory));
  object.Set("freePublicMemory", UlongToJs(env, info.ulFreePublicMemory));
  object.Set("totalPrivateMemory", UlongToJs(env, info.ulTotalPrivateMemory));
  object.Set("freePrivateMemory", UlongToJs(env, info.ulFreePrivateMemory));
  object.Set("hardwareVersion", Version(env, info.hardwareVersion));
  object.Set("firmwareVersion", Version(env, info.firmwareVersion));
  object.Set("utcTime", PaddedText(env, info.utcTime));
  return object;
}

Napi::Object SessionInfoToJs(Napi::Env env, const CK_SESSION_INFO& info) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("slotID", UlongToJs(env, info.slotID));
  object.Set("state", UlongToJs(env, info.state));
  object.Set("flags", UlongToJs(env, info.flags));
  object.Set("deviceError", UlongToJs(env, info.ulDeviceError));
  return object;
}

Napi::Object MechanismInfoToJs(Napi::Env env, const CK_MECHANISM_INFO& info) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("minKeySize", UlongToJs(env, info.ulMinKeySize));
  object.Set("maxKeySize", UlongToJs(env, info.ulMaxKeySize));
  object.Set("flags", UlongToJs(env, info.flags));
  return object;
}

}  // namespace p11
