// CK_ULONG values (slot IDs, handles, flags, lengths) between C++ and JS. A JS number is exact
// only up to 2^53-1, so larger values travel as BigInt in both directions and are never
// rounded. On Windows CK_ULONG is 32 bits and larger inputs are refused.
#pragma once

#include <napi.h>

#include "../pkcs11/types.h"

namespace p11 {

// Number when exactly representable (<= 2^53-1), else BigInt.
Napi::Value UlongToJs(Napi::Env env, CK_ULONG value);

// Accepts a non-negative integer Number (<= 2^53-1) or a BigInt in CK_ULONG's range. On any
// other value returns false; the caller names the argument in its TypeError.
bool UlongFromJs(const Napi::Value& value, CK_ULONG& out);

}  // namespace p11
