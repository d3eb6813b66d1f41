// Most of the cryptographic functions come in a few shapes: the same parameters, another member
// of the function list. One core per shape serves every function of it. A function's op derives
// from its shape (CRTP) and names the function (kName), its function-list member (kFunction),
// its input's name for TypeErrors (kInput) and, for outputs, the first size to offer
// (OutputGuess; a larger output is fetched after CKR_BUFFER_TOO_SMALL).
//
// Each shape also parses its inputs from a given position (ParseInputs), so that the one-hop
// calls (InitThenCall: sign(), encrypt(), digest() …) reuse the op of their second call.
#pragma once

#include "../marshal/mechanism.h"
#include "runner.h"

namespace p11 {

// (session, mechanism, key): C_SignInit, C_VerifyInit, C_EncryptInit, C_DecryptInit and the
// two recover inits.
template <typename Self>
struct KeyedInitCall {
  static constexpr size_t kArgCount = 3;
  CK_SESSION_HANDLE session = 0;
  Mechanism mechanism;
  CK_OBJECT_HANDLE key = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    mechanism.Parse(args, args.At(1), "mechanism");
    key = args.Ulong(2, "key");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return (f->*Self::kFunction)(session, mechanism.Bind(), key); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

// (session, input): the updates that return nothing (C_SignUpdate, C_VerifyUpdate, C_DigestUpdate).
template <typename Self>
struct BytesInCall {
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> input;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, Self::kInput, input);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return (f->*Self::kFunction)(session, InputBytes(input), input.size()); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

// (session) → bytes: the finals (C_SignFinal, C_EncryptFinal, C_DecryptFinal, C_DigestFinal).
template <typename Self>
struct BytesOutCall {
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> output;
  void Parse(const Args& args) { session = args.Ulong(0, "session"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(output, Self::OutputGuess(0), [&](CK_BYTE* out, CK_ULONG* length) {
      return (f->*Self::kFunction)(session, out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, output); }
};

// (session, input) → bytes: the single-part calls (C_Sign, C_Encrypt, C_Digest …), the updates
// with an output, the recovers and the four dual-function updates.
template <typename Self>
struct BytesInOutCall {
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> input;
  std::vector<CK_BYTE> output;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    ParseInputs(args, 1);
  }
  void ParseInputs(const Args& args, size_t first) { args.Bytes(first, Self::kInput, input); }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(output, Self::OutputGuess(input.size()), [&](CK_BYTE* out, CK_ULONG* length) {
      return (f->*Self::kFunction)(session, InputBytes(input), input.size(), out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, output); }
};

// An init and the single-part call after it, in one engine job: the JS thread makes one call,
// and no other call of the session can slip in between. The call's inputs follow the init's.
template <typename Init, typename Call>
struct InitThenCall {
  Init init;
  Call call;
  void Parse(const Args& args) {
    init.Parse(args);
    call.ParseInputs(args, Init::kArgCount);
    call.session = init.session;
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    CK_RV rv = init.Run(f);
    if (rv != ck::CKR_OK) return rv;
    return call.Run(f);
  }
  Napi::Value Result(Napi::Env env) { return call.Result(env); }
};

}  // namespace p11
