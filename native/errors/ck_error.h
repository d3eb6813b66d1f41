// PKCS#11 failures as JS errors: a Pkcs11Error with `code` (the CK_RV number), `name` (its
// CKR_ name) and `function` (the PKCS#11 function that returned it). Built from the constant
// table, never by formatting a string that JS must parse back.
#pragma once

#include <napi.h>

#include <string>

#include "../pkcs11/types.h"

namespace p11 {

// "CKR_PIN_INCORRECT", or "CKR_VENDOR_0x80000001" / "CKR_0x00000999" when unknown.
std::string RvDisplayName(CK_RV rv);

Napi::Error MakeCkError(Napi::Env env, CK_RV rv, const char* function, const std::string& detail = "");

// Errors raised by the binding itself (closed module, forked process) that carry a CK_RV so
// callers can treat them like module errors.
[[noreturn]] void ThrowCkError(Napi::Env env, CK_RV rv, const char* function, const std::string& detail = "");

}  // namespace p11
