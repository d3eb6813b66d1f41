// The four dual-function updates, which continue two active operations with one call. Each
// takes a part and returns the (encrypted or decrypted) output for that part.
#include "method_tables.h"

namespace p11 {

namespace {

// Room for padding or a block carried over from an earlier part, on top of the part itself.
constexpr size_t kOutputSlack = 256;

// The four functions share one signature, so one core serves them all; only the name and the
// function-list member differ.
using DualFunction = CK_RV(PKCS11_CALL*)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
using DualMember = DualFunction CK_FUNCTION_LIST::*;

template <const char* Name, DualMember Function>
struct DualUpdateOp {
  static constexpr const char* kName = Name;
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> part;
  std::vector<CK_BYTE> output;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "part", part);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(output, part.size() + kOutputSlack, [&](CK_BYTE* out, CK_ULONG* length) {
      return (f->*Function)(session, InputBytes(part), part.size(), out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, output); }
};

constexpr char kDigestEncryptUpdate[] = "C_DigestEncryptUpdate";
constexpr char kDecryptDigestUpdate[] = "C_DecryptDigestUpdate";
constexpr char kSignEncryptUpdate[] = "C_SignEncryptUpdate";
constexpr char kDecryptVerifyUpdate[] = "C_DecryptVerifyUpdate";

}  // namespace

void AddDualMethods(MethodTable& table) {
  AddSyncAndAsync<DualUpdateOp<kDigestEncryptUpdate, &CK_FUNCTION_LIST::C_DigestEncryptUpdate>>(table);
  AddSyncAndAsync<DualUpdateOp<kDecryptDigestUpdate, &CK_FUNCTION_LIST::C_DecryptDigestUpdate>>(table);
  AddSyncAndAsync<DualUpdateOp<kSignEncryptUpdate, &CK_FUNCTION_LIST::C_SignEncryptUpdate>>(table);
  AddSyncAndAsync<DualUpdateOp<kDecryptVerifyUpdate, &CK_FUNCTION_LIST::C_DecryptVerifyUpdate>>(table);
}

}  // namespace p11
