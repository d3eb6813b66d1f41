// Signing: the standard C_Sign* functions, sign-with-recovery, and the one-hop sign() that runs
// C_SignInit and C_Sign in a single engine job, so the JS thread does no PKCS#11 work at all.
#include <algorithm>
#include <array>

#include "../marshal/mechanism.h"
#include "method_tables.h"

namespace p11 {

namespace {

// Large enough for every common signature (RSA-8192 is 1024 bytes), so one C_Sign call
// normally suffices; a larger one is fetched after CKR_BUFFER_TOO_SMALL.
constexpr size_t kSignatureGuess = 1024;

struct SignInitOp {
  static constexpr const char* kName = "C_SignInit";
  CK_SESSION_HANDLE session = 0;
  Mechanism mechanism;
  CK_OBJECT_HANDLE key = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    mechanism.Parse(args, args.At(1), "mechanism");
    key = args.Ulong(2, "key");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_SignInit(session, mechanism.Bind(), key); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct SignOp {
  static constexpr const char* kName = "C_Sign";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> data;
  std::vector<CK_BYTE> signature;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "data", data);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(signature, kSignatureGuess, [&](CK_BYTE* out, CK_ULONG* length) {
      return f->C_Sign(session, InputBytes(data), data.size(), out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, signature); }
};

struct SignUpdateOp {
  static constexpr const char* kName = "C_SignUpdate";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> part;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "part", part);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_SignUpdate(session, InputBytes(part), part.size()); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct SignFinalOp {
  static constexpr const char* kName = "C_SignFinal";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> signature;
  void Parse(const Args& args) { session = args.Ulong(0, "session"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(signature, kSignatureGuess,
                          [&](CK_BYTE* out, CK_ULONG* length) { return f->C_SignFinal(session, out, length); });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, signature); }
};

struct SignRecoverInitOp {
  static constexpr const char* kName = "C_SignRecoverInit";
  CK_SESSION_HANDLE session = 0;
  Mechanism mechanism;
  CK_OBJECT_HANDLE key = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    mechanism.Parse(args, args.At(1), "mechanism");
    key = args.Ulong(2, "key");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_SignRecoverInit(session, mechanism.Bind(), key); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct SignRecoverOp {
  static constexpr const char* kName = "C_SignRecover";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> data;
  std::vector<CK_BYTE> signature;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "data", data);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(signature, kSignatureGuess, [&](CK_BYTE* out, CK_ULONG* length) {
      return f->C_SignRecover(session, InputBytes(data), data.size(), out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, signature); }
};

// sign(session, mechanism, key, data): C_SignInit + C_Sign on one engine thread.
//
// The signature is written into the job itself when it fits (every ECDSA and EdDSA signature,
// RSA up to 4096 bits): the worker then allocates nothing for it, and the JS thread, which
// frees the job, frees nothing from the worker's malloc arena (that free takes the arena's lock,
// which the worker may hold). A larger one goes through the length protocol.
constexpr size_t kInlineSignature = 512;

struct OneShotSignOp {
  static constexpr const char* kName = "sign";
  SignInitOp init;
  std::vector<CK_BYTE> data;
  std::array<CK_BYTE, kInlineSignature> inlineSignature;
  CK_ULONG inlineLength = 0;
  bool overflowed = false;
  std::vector<CK_BYTE> signature;  // when it did not fit inline
  void Parse(const Args& args) {
    init.Parse(args);
    args.Bytes(3, "data", data);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    CK_RV rv = init.Run(f);
    if (rv != ck::CKR_OK) return rv;
    CK_ULONG length = kInlineSignature;
    rv = f->C_Sign(init.session, InputBytes(data), data.size(), inlineSignature.data(), &length);
    if (rv == ck::CKR_OK) {
      if (length > kInlineSignature) return ck::CKR_GENERAL_ERROR;  // claims more than the buffer holds
      inlineLength = length;
      return rv;
    }
    if (rv != ck::CKR_BUFFER_TOO_SMALL) return rv;
    // "Too small" leaves the operation active (the length convention of PKCS#11 v2.40, 5.2).
    overflowed = true;
    return CallWithOutput(signature, std::max<size_t>(length, kSignatureGuess), [&](CK_BYTE* out, CK_ULONG* size) {
      return f->C_Sign(init.session, InputBytes(data), data.size(), out, size);
    });
  }
  Napi::Value Result(Napi::Env env) {
    if (overflowed) return BytesToJs(env, signature);
    return Napi::Buffer<CK_BYTE>::Copy(env, inlineSignature.data(), inlineLength);
  }
};

}  // namespace

void AddSignMethods(MethodTable& table) {
  AddSyncAndAsync<SignInitOp>(table);
  AddSyncAndAsync<SignOp>(table);
  AddSyncAndAsync<SignUpdateOp>(table);
  AddSyncAndAsync<SignFinalOp>(table);
  AddSyncAndAsync<SignRecoverInitOp>(table);
  AddSyncAndAsync<SignRecoverOp>(table);
  AddAsyncAs<OneShotSignOp>(table, "sign");
  table.emplace_back("signSync", &SyncEntry<OneShotSignOp>);
}

}  // namespace p11
