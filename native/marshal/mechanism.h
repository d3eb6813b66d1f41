// A CK_MECHANISM with its parameter owned by plain C++ storage, so it can cross to a worker
// thread. The parameter structure is chosen from the mechanism type (constants table) and
// filled from a JS object; a Buffer parameter is passed through unchanged for any mechanism.
#pragma once

#include <napi.h>

#include <vector>

#include "../pkcs11/types.h"
#include "args.h"

namespace p11 {

class Mechanism {
 public:
  // `value`: a mechanism number, or { mechanism, parameter? }.
  void Parse(const Args& args, const Napi::Value& value, const char* name);
  // A mechanism without a parameter, its type already checked (signToBatch).
  void SetType(CK_MECHANISM_TYPE type) {
    type_ = type;
    layout_ = Layout::None;
  }
  // Points the CK_MECHANISM (and any parameter structure) at this object's storage. Call it
  // where the pointer is used: after a move the old addresses are stale.
  CK_MECHANISM* Bind();
  CK_MECHANISM_TYPE type() const { return type_; }

 private:
  enum class Layout { None, Raw, Ulong, Pss, Oaep, Ecdh1, Gcm, Ctr, EdDsa };

  void ParseStructured(const Args& args, const Napi::Object& parameter, const std::string& where);

  CK_MECHANISM mechanism_{};
  CK_MECHANISM_TYPE type_ = 0;
  Layout layout_ = Layout::None;
  std::vector<CK_BYTE> first_;   // raw parameter, IV, OAEP source, ECDH shared data, EdDSA context
  std::vector<CK_BYTE> second_;  // GCM AAD, ECDH public data
  CK_ULONG ulong_ = 0;
  CK_RSA_PKCS_PSS_PARAMS pss_{};
  CK_RSA_PKCS_OAEP_PARAMS oaep_{};
  CK_ECDH1_DERIVE_PARAMS ecdh1_{};
  CK_GCM_PARAMS gcm_{};
  CK_AES_CTR_PARAMS ctr_{};
  CK_EDDSA_PARAMS eddsa_{};
};

}  // namespace p11
