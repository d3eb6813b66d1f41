// Verification: the standard C_Verify* functions, verify-with-recovery, and the one-hop verify()
// that runs C_VerifyInit and C_Verify in a single engine job.
//
// A signature that does not match is an answer, not a failure: C_Verify and C_VerifyFinal give
// false for CKR_SIGNATURE_INVALID and CKR_SIGNATURE_LEN_RANGE, and throw for any other error.
#include "../marshal/mechanism.h"
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

// C_VerifyInit and C_VerifyRecoverInit take the same arguments; only the function differs.
struct VerifyInitArgs {
  CK_SESSION_HANDLE session = 0;
  Mechanism mechanism;
  CK_OBJECT_HANDLE key = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    mechanism.Parse(args, args.At(1), "mechanism");
    key = args.Ulong(2, "key");
  }
};

struct VerifyInitOp {
  static constexpr const char* kName = "C_VerifyInit";
  VerifyInitArgs in;
  void Parse(const Args& args) { in.Parse(args); }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_VerifyInit(in.session, in.mechanism.Bind(), in.key); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct VerifyOp {
  static constexpr const char* kName = "C_Verify";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> data;
  std::vector<CK_BYTE> signature;
  bool valid = false;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "data", data);
    args.Bytes(2, "signature", signature);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return VerdictOf(
        f->C_Verify(session, InputBytes(data), data.size(), InputBytes(signature), signature.size()), valid);
  }
  Napi::Value Result(Napi::Env env) { return Napi::Boolean::New(env, valid); }
};

struct VerifyUpdateOp {
  static constexpr const char* kName = "C_VerifyUpdate";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> part;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "part", part);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_VerifyUpdate(session, InputBytes(part), part.size()); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
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

struct VerifyRecoverInitOp {
  static constexpr const char* kName = "C_VerifyRecoverInit";
  VerifyInitArgs in;
  void Parse(const Args& args) { in.Parse(args); }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_VerifyRecoverInit(in.session, in.mechanism.Bind(), in.key); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct VerifyRecoverOp {
  static constexpr const char* kName = "C_VerifyRecover";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> signature;
  std::vector<CK_BYTE> data;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "signature", signature);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(data, kRecoverGuess, [&](CK_BYTE* out, CK_ULONG* length) {
      return f->C_VerifyRecover(session, InputBytes(signature), signature.size(), out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, data); }
};

// verify(session, mechanism, key, data, signature): C_VerifyInit + C_Verify on one engine thread.
struct OneShotVerifyOp {
  static constexpr const char* kName = "verify";
  VerifyInitOp init;
  std::vector<CK_BYTE> data;
  std::vector<CK_BYTE> signature;
  bool valid = false;
  void Parse(const Args& args) {
    init.Parse(args);
    args.Bytes(3, "data", data);
    args.Bytes(4, "signature", signature);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    CK_RV rv = init.Run(f);
    if (rv != ck::CKR_OK) return rv;
    return VerdictOf(
        f->C_Verify(init.in.session, InputBytes(data), data.size(), InputBytes(signature), signature.size()), valid);
  }
  Napi::Value Result(Napi::Env env) { return Napi::Boolean::New(env, valid); }
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
