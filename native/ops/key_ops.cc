// Key management: generation, wrapping, unwrapping and derivation.
//
// Security default: a private or secret key template that says nothing about CKA_SENSITIVE or
// CKA_EXTRACTABLE gets CKA_SENSITIVE=true and CKA_EXTRACTABLE=false, so key material cannot
// leave the token unless the caller asked for that explicitly.
#include "../marshal/attributes.h"
#include "../marshal/mechanism.h"
#include "../marshal/ulong.h"
#include "method_tables.h"

namespace p11 {

namespace {

void ProtectSecret(Template& secretTemplate) {
  secretTemplate.AddBoolIfAbsent(ck::CKA_SENSITIVE, true);
  secretTemplate.AddBoolIfAbsent(ck::CKA_EXTRACTABLE, false);
}

struct GenerateKeyOp {
  static constexpr const char* kName = "C_GenerateKey";
  CK_SESSION_HANDLE session = 0;
  Mechanism mechanism;
  Template keyTemplate;
  CK_OBJECT_HANDLE key = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    mechanism.Parse(args, args.At(1), "mechanism");
    keyTemplate.Parse(args, args.At(2), "template");
    ProtectSecret(keyTemplate);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return f->C_GenerateKey(session, mechanism.Bind(), keyTemplate.data(), keyTemplate.count(), &key);
  }
  Napi::Value Result(Napi::Env env) { return UlongToJs(env, key); }
};

struct GenerateKeyPairOp {
  static constexpr const char* kName = "C_GenerateKeyPair";
  CK_SESSION_HANDLE session = 0;
  Mechanism mechanism;
  Template publicTemplate;
  Template privateTemplate;
  CK_OBJECT_HANDLE publicKey = 0;
  CK_OBJECT_HANDLE privateKey = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    mechanism.Parse(args, args.At(1), "mechanism");
    publicTemplate.Parse(args, args.At(2), "publicKeyTemplate");
    privateTemplate.Parse(args, args.At(3), "privateKeyTemplate");
    ProtectSecret(privateTemplate);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return f->C_GenerateKeyPair(session, mechanism.Bind(), publicTemplate.data(), publicTemplate.count(),
                                privateTemplate.data(), privateTemplate.count(), &publicKey, &privateKey);
  }
  Napi::Value Result(Napi::Env env) {
    Napi::Object pair = Napi::Object::New(env);
    pair.Set("publicKey", UlongToJs(env, publicKey));
    pair.Set("privateKey", UlongToJs(env, privateKey));
    return pair;
  }
};

struct WrapKeyOp {
  static constexpr const char* kName = "C_WrapKey";
  CK_SESSION_HANDLE session = 0;
  Mechanism mechanism;
  CK_OBJECT_HANDLE wrappingKey = 0;
  CK_OBJECT_HANDLE key = 0;
  std::vector<CK_BYTE> wrapped;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    mechanism.Parse(args, args.At(1), "mechanism");
    wrappingKey = args.Ulong(2, "wrappingKey");
    key = args.Ulong(3, "key");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    CK_MECHANISM* bound = mechanism.Bind();
    return CallWithOutput(wrapped, 4096, [&](CK_BYTE* out, CK_ULONG* length) {
      return f->C_WrapKey(session, bound, wrappingKey, key, out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, wrapped); }
};

struct UnwrapKeyOp {
  static constexpr const char* kName = "C_UnwrapKey";
  CK_SESSION_HANDLE session = 0;
  Mechanism mechanism;
  CK_OBJECT_HANDLE unwrappingKey = 0;
  std::vector<CK_BYTE> wrapped;
  Template keyTemplate;
  CK_OBJECT_HANDLE key = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    mechanism.Parse(args, args.At(1), "mechanism");
    unwrappingKey = args.Ulong(2, "unwrappingKey");
    args.Bytes(3, "wrappedKey", wrapped);
    keyTemplate.Parse(args, args.At(4), "template");
    ProtectSecret(keyTemplate);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return f->C_UnwrapKey(session, mechanism.Bind(), unwrappingKey, InputBytes(wrapped), wrapped.size(),
                          keyTemplate.data(), keyTemplate.count(), &key);
  }
  Napi::Value Result(Napi::Env env) { return UlongToJs(env, key); }
};

struct DeriveKeyOp {
  static constexpr const char* kName = "C_DeriveKey";
  CK_SESSION_HANDLE session = 0;
  Mechanism mechanism;
  CK_OBJECT_HANDLE baseKey = 0;
  Template keyTemplate;
  CK_OBJECT_HANDLE key = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    mechanism.Parse(args, args.At(1), "mechanism");
    baseKey = args.Ulong(2, "baseKey");
    keyTemplate.Parse(args, args.At(3), "template");
    ProtectSecret(keyTemplate);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return f->C_DeriveKey(session, mechanism.Bind(), baseKey, keyTemplate.data(), keyTemplate.count(), &key);
  }
  Napi::Value Result(Napi::Env env) { return UlongToJs(env, key); }
};

}  // namespace

void AddKeyMethods(MethodTable& table) {
  AddSyncAndAsync<GenerateKeyOp>(table);
  AddSyncAndAsync<GenerateKeyPairOp>(table);
  AddSyncAndAsync<WrapKeyOp>(table);
  AddSyncAndAsync<UnwrapKeyOp>(table);
  AddSyncAndAsync<DeriveKeyOp>(table);
}

}  // namespace p11
