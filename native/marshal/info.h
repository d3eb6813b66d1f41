// The fixed-size PKCS#11 info structures as JS objects. Blank-padded text fields are trimmed.
#pragma once

#include <napi.h>

#include "../pkcs11/types.h"

namespace p11 {

Napi::Object InfoToJs(Napi::Env env, const CK_INFO& info);
Napi::Object SlotInfoToJs(Napi::Env env, const CK_SLOT_INFO& info);
Napi::Object TokenInfoToJs(Napi::Env env, const CK_TOKEN_INFO& info);
Napi::Object SessionInfoToJs(Napi::Env env, const CK_SESSION_INFO& info);
Napi::Object MechanismInfoToJs(Napi::Env env, const CK_MECHANISM_INFO& info);

}  // namespace p11
