// Lists whose length the module reports first (slot IDs, mechanism types, object handles).
#pragma once

#include <napi.h>

#include <vector>

#include "../generated/constants.h"
#include "../marshal/ulong.h"
#include "../pkcs11/types.h"

namespace p11 {

// `call(nullptr, &count)` then `call(buffer, &count)`, again if the list grew in between.
template <typename Call>
CK_RV ReadList(std::vector<CK_ULONG>& out, Call call) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    CK_ULONG count = 0;
    CK_RV rv = call(nullptr, &count);
    if (rv != ck::CKR_OK) return rv;
    out.assign(count, 0);
    if (count == 0) return rv;
    rv = call(out.data(), &count);
    if (rv == ck::CKR_BUFFER_TOO_SMALL) continue;  // the list grew between the calls
    if (rv != ck::CKR_OK) return rv;
    if (count > out.size()) return ck::CKR_GENERAL_ERROR;
    out.resize(count);
    return rv;
  }
  return ck::CKR_BUFFER_TOO_SMALL;
}

inline Napi::Array UlongListToJs(Napi::Env env, const std::vector<CK_ULONG>& values) {
  Napi::Array array = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) array.Set(static_cast<uint32_t>(i), UlongToJs(env, values[i]));
  return array;
}

}  // namespace p11
