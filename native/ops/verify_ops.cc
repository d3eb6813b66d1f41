// Verification: the standard C_Verify* functions, verify-with-recovery, and the one-hop verify()
// that runs C_VerifyInit and C_Verify in a single engine job.
//
// A signature that does not match is an answer, not a failure: C_Verify and C_VerifyFinal give
// false for CKR_SIGNATURE_INVALID and CKR_SIGNATURE_LEN_RANGE, and throw for any other error.
#include "call_shapes.h"
#include "method_tables.h"

namespace p11 {

namespace {

// Large enough for the data recovered from any common signature (RSA-8192 is 1024 bytes).
constexpr size_t kRecoverGuess = 1024;

// Turns a verification result into (rv, valid): a mismatch is CKR_OK with valid == false.
CK_RV VerdictOf(CK_RV rv, bool& valid) {
  valid = rv == ck::CKR_OK;
  if (rv == ck::CKR_SIGNATURE_INVALID || rv == ck::CKR_SIGNATURE_LEN_RANGE) return ck::CKR_OK;
  return rv;
}

struct VerifyInitOp : KeyedInitCall<VerifyInitOp> {
  static constexpr const char* kName = "C_VerifyInit";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_VerifyInit;
};

struct VerifyOp {
  static constexpr const char* kName = "C_Verify";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> data;
  std::vector<CK_BYTE> signature;
  bool valid = false;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    ParseInputs(args, 1);
  }
  void ParseInputs(const Args& args, size_t first) {
    args.Bytes(first, "data", data);
    args.Bytes(first + 1, "signature", signature);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return VerdictOf(
        f->C_Verify(session, InputBytes(data), data.size(), InputBytes(signature), signature.size()), valid);
  }
  Napi::Value Result(Napi::Env env) { return Napi::Boolean::New(env, valid); }
};

struct VerifyUpdateOp : BytesInCall<VerifyUpdateOp> {
  static constexpr const char* kName = "C_VerifyUpdate";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_VerifyUpdate;
  static constexpr const char* kInput = "part";
};

struct VerifyFinalOp {
  static constexpr const char* kName = "C_VerifyFinal";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> signature;
  bool valid = false;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "signature", signature);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return VerdictOf(f->C_VerifyFinal(session, InputBytes(signature), signature.size()), valid);
  }
  Napi::Value Result(Napi::Env env) { return Napi::Boolean::New(env, valid); }
};

struct VerifyRecoverInitOp : KeyedInitCall<VerifyRecoverInitOp> {
  static constexpr const char* kName = "C_VerifyRecoverInit";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_VerifyRecoverInit;
};

struct VerifyRecoverOp : BytesInOutCall<VerifyRecoverOp> {
  static constexpr const char* kName = "C_VerifyRecover";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_VerifyRecover;
  static constexpr const char* kInput = "signature";
  static size_t OutputGuess(size_t) { return kRecoverGuess; }
};

// verify(session, mechanism, key, data, signature).
struct OneShotVerifyOp : InitThenCall<VerifyInitOp, VerifyOp> {
  static constexpr const char* kName = "verify";
};

}  // namespace

void AddVerifyMethods(MethodTable& table) {
  AddSyncAndAsync<VerifyInitOp>(table);
  AddSyncAndAsync<VerifyOp>(table);
  AddSyncAndAsync<VerifyUpdateOp>(table);
  AddSyncAndAsync<VerifyFinalOp>(table);
  AddSyncAndAsync<VerifyRecoverInitOp>(table);
  AddSyncAndAsync<VerifyRecoverOp>(table);
  AddAsyncAs<OneShotVerifyOp>(table, "verify");
  table.emplace_back("verifySync", &SyncEntry<OneShotVerifyOp>);
}

}  // namespace p11
