// Signing: the standard C_Sign* functions, sign-with-recovery, and the one-hop sign() that runs
// C_SignInit and C_Sign in a single engine job, so the JS thread does no PKCS#11 work at all.
#include <algorithm>
#include <array>

#include "call_shapes.h"
#include "method_tables.h"

namespace p11 {

namespace {

// Large enough for every common signature (RSA-8192 is 1024 bytes), so one C_Sign call
// normally suffices; a larger one is fetched after CKR_BUFFER_TOO_SMALL.
constexpr size_t kSignatureGuess = 1024;

struct SignInitOp : KeyedInitCall<SignInitOp> {
  static constexpr const char* kName = "C_SignInit";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_SignInit;
};

struct SignOp : BytesInOutCall<SignOp> {
  static constexpr const char* kName = "C_Sign";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_Sign;
  static constexpr const char* kInput = "data";
  static size_t OutputGuess(size_t) { return kSignatureGuess; }
};

struct SignUpdateOp : BytesInCall<SignUpdateOp> {
  static constexpr const char* kName = "C_SignUpdate";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_SignUpdate;
  static constexpr const char* kInput = "part";
};

struct SignFinalOp : BytesOutCall<SignFinalOp> {
  static constexpr const char* kName = "C_SignFinal";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_SignFinal;
  static size_t OutputGuess(size_t) { return kSignatureGuess; }
};

struct SignRecoverInitOp : KeyedInitCall<SignRecoverInitOp> {
  static constexpr const char* kName = "C_SignRecoverInit";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_SignRecoverInit;
};

struct SignRecoverOp : BytesInOutCall<SignRecoverOp> {
  static constexpr const char* kName = "C_SignRecover";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_SignRecover;
  static constexpr const char* kInput = "data";
  static size_t OutputGuess(size_t) { return kSignatureGuess; }
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
