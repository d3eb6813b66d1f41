#include "ulong.h"

#include <cmath>
#include <limits>

namespace p11 {

static constexpr double kMaxSafeInteger = 9007199254740991.0;

Napi::Value UlongToJs(Napi::Env env, CK_ULONG value) {
  if (static_cast<double>(value) <= kMaxSafeInteger && value <= 9007199254740991ULL) {
    return Napi::Number::New(env, static_cast<double>(value));
  }
  return Napi::BigInt::New(env, static_cast<uint64_t>(value));
}

bool UlongFromJs(const Napi::Value& value, CK_ULONG& out) {
  napi_env env = value.Env();
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type == napi_number) {
    double number;
    if (napi_get_value_double(env, value, &number) != napi_ok) return false;
    if (!(number >= 0) || number > kMaxSafeInteger || std::floor(number) != number) return false;
    if (number > static_cast<double>(std::numeric_limits<CK_ULONG>::max())) return false;
    out = static_cast<CK_ULONG>(number);
    return true;
  }
  if (type == napi_bigint) {
    uint64_t word;
    bool lossless = false;
    if (napi_get_value_bigint_uint64(env, value, &word, &lossless) != napi_ok || !lossless) return false;
    if (word > std::numeric_limits<CK_ULONG>::max()) return false;
    out = static_cast<CK_ULONG>(word);
    return true;
  }
  return false;
}

}  // namespace p11
