// Encryption and decryption: the standard C_Encrypt* and C_Decrypt* functions, and the one-hop
// encrypt() / decrypt() that run Init and the single-part call in one engine job.
#include <algorithm>

#include "../marshal/mechanism.h"
#include "method_tables.h"

namespace p11 {

namespace {

// Room for padding, an IV or an AEAD tag on top of the input, so one call normally suffices;
// a larger output is fetched after CKR_BUFFER_TOO_SMALL.
constexpr size_t kOutputSlack = 256;
constexpr size_t kMinOutputGuess = 1024;
constexpr size_t kFinalGuess = 1024;

size_t OutputGuess(size_t inputSize) { return std::max(inputSize + kOutputSlack, kMinOutputGuess); }

// C_EncryptInit and C_DecryptInit take the same arguments; only the function differs.
struct CipherInitArgs {
  CK_SESSION_HANDLE session = 0;
  Mechanism mechanism;
  CK_OBJECT_HANDLE key = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    mechanism.Parse(args, args.At(1), "mechanism");
    key = args.Ulong(2, "key");
  }
};

struct EncryptInitOp {
  static constexpr const char* kName = "C_EncryptInit";
  CipherInitArgs in;
  void Parse(const Args& args) { in.Parse(args); }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_EncryptInit(in.session, in.mechanism.Bind(), in.key); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct EncryptOp {
  static constexpr const char* kName = "C_Encrypt";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> data;
  std::vector<CK_BYTE> encrypted;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "data", data);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(encrypted, OutputGuess(data.size()), [&](CK_BYTE* out, CK_ULONG* length) {
      return f->C_Encrypt(session, InputBytes(data), data.size(), out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, encrypted); }
};

struct EncryptUpdateOp {
  static constexpr const char* kName = "C_EncryptUpdate";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> part;
  std::vector<CK_BYTE> encrypted;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "part", part);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(encrypted, OutputGuess(part.size()), [&](CK_BYTE* out, CK_ULONG* length) {
      return f->C_EncryptUpdate(session, InputBytes(part), part.size(), out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, encrypted); }
};

struct EncryptFinalOp {
  static constexpr const char* kName = "C_EncryptFinal";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> encrypted;
  void Parse(const Args& args) { session = args.Ulong(0, "session"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(encrypted, kFinalGuess,
                          [&](CK_BYTE* out, CK_ULONG* length) { return f->C_EncryptFinal(session, out, length); });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, encrypted); }
};

struct DecryptInitOp {
  static constexpr const char* kName = "C_DecryptInit";
  CipherInitArgs in;
  void Parse(const Args& args) { in.Parse(args); }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_DecryptInit(in.session, in.mechanism.Bind(), in.key); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct DecryptOp {
  static constexpr const char* kName = "C_Decrypt";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> encrypted;
  std::vector<CK_BYTE> data;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "encryptedData", encrypted);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(data, OutputGuess(encrypted.size()), [&](CK_BYTE* out, CK_ULONG* length) {
      return f->C_Decrypt(session, InputBytes(encrypted), encrypted.size(), out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, data); }
};

struct DecryptUpdateOp {
  static constexpr const char* kName = "C_DecryptUpdate";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> encrypted;
  std::vector<CK_BYTE> part;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "encryptedPart", encrypted);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(part, OutputGuess(encrypted.size()), [&](CK_BYTE* out, CK_ULONG* length) {
      return f->C_DecryptUpdate(session, InputBytes(encrypted), encrypted.size(), out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, part); }
};

struct DecryptFinalOp {
  static constexpr const char* kName = "C_DecryptFinal";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> part;
  void Parse(const Args& args) { session = args.Ulong(0, "session"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(part, kFinalGuess,
                          [&](CK_BYTE* out, CK_ULONG* length) { return f->C_DecryptFinal(session, out, length); });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, part); }
};

// encrypt(session, mechanism, key, data): C_EncryptInit + C_Encrypt on one engine thread.
struct OneShotEncryptOp {
  static constexpr const char* kName = "encrypt";
  EncryptInitOp init;
  std::vector<CK_BYTE> data;
  std::vector<CK_BYTE> encrypted;
  void Parse(const Args& args) {
    init.Parse(args);
    args.Bytes(3, "data", data);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    CK_RV rv = init.Run(f);
    if (rv != ck::CKR_OK) return rv;
    return CallWithOutput(encrypted, OutputGuess(data.size()), [&](CK_BYTE* out, CK_ULONG* length) {
      return f->C_Encrypt(init.in.session, InputBytes(data), data.size(), out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, encrypted); }
};

// decrypt(session, mechanism, key, encryptedData): C_DecryptInit + C_Decrypt on one engine thread.
struct OneShotDecryptOp {
  static constexpr const char* kName = "decrypt";
  DecryptInitOp init;
  std::vector<CK_BYTE> encrypted;
  std::vector<CK_BYTE> data;
  void Parse(const Args& args) {
    init.Parse(args);
    args.Bytes(3, "encryptedData", encrypted);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    CK_RV rv = init.Run(f);
    if (rv != ck::CKR_OK) return rv;
    return CallWithOutput(data, OutputGuess(encrypted.size()), [&](CK_BYTE* out, CK_ULONG* length) {
      return f->C_Decrypt(init.in.session, InputBytes(encrypted), encrypted.size(), out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, data); }
};

}  // namespace

void AddCipherMethods(MethodTable& table) {
  AddSyncAndAsync<EncryptInitOp>(table);
  AddSyncAndAsync<EncryptOp>(table);
  AddSyncAndAsync<EncryptUpdateOp>(table);
  AddSyncAndAsync<EncryptFinalOp>(table);
  AddSyncAndAsync<DecryptInitOp>(table);
  AddSyncAndAsync<DecryptOp>(table);
  AddSyncAndAsync<DecryptUpdateOp>(table);
  AddSyncAndAsync<DecryptFinalOp>(table);
  AddAsyncAs<OneShotEncryptOp>(table, "encrypt");
  table.emplace_back("encryptSync", &SyncEntry<OneShotEncryptOp>);
  AddAsyncAs<OneShotDecryptOp>(table, "decrypt");
  table.emplace_back("decryptSync", &SyncEntry<OneShotDecryptOp>);
}

}  // namespace p11
