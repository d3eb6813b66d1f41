// Message digests: the standard C_Digest* functions, and the one-hop digest() that runs
// C_DigestInit and C_Digest in a single engine job.
#include "../marshal/mechanism.h"
#include "method_tables.h"

namespace p11 {

namespace {

// Larger than any common digest (SHA-512 is 64 bytes), so one call normally suffices.
constexpr size_t kDigestGuess = 128;

struct DigestInitOp {
  static constexpr const char* kName = "C_DigestInit";
  CK_SESSION_HANDLE session = 0;
  Mechanism mechanism;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    mechanism.Parse(args, args.At(1), "mechanism");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_DigestInit(session, mechanism.Bind()); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct DigestOp {
  static constexpr const char* kName = "C_Digest";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> data;
  std::vector<CK_BYTE> digest;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "data", data);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(digest, kDigestGuess, [&](CK_BYTE* out, CK_ULONG* length) {
      return f->C_Digest(session, InputBytes(data), data.size(), out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, digest); }
};

struct DigestUpdateOp {
  static constexpr const char* kName = "C_DigestUpdate";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> part;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "part", part);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_DigestUpdate(session, InputBytes(part), part.size()); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct DigestKeyOp {
  static constexpr const char* kName = "C_DigestKey";
  CK_SESSION_HANDLE session = 0;
  CK_OBJECT_HANDLE key = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    key = args.Ulong(1, "key");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_DigestKey(session, key); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct DigestFinalOp {
  static constexpr const char* kName = "C_DigestFinal";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> digest;
  void Parse(const Args& args) { session = args.Ulong(0, "session"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return CallWithOutput(digest, kDigestGuess,
                          [&](CK_BYTE* out, CK_ULONG* length) { return f->C_DigestFinal(session, out, length); });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, digest); }
};

// digest(session, mechanism, data): C_DigestInit + C_Digest on one engine thread.
struct OneShotDigestOp {
  static constexpr const char* kName = "digest";
  DigestInitOp init;
  std::vector<CK_BYTE> data;
  std::vector<CK_BYTE> digest;
  void Parse(const Args& args) {
    init.Parse(args);
    args.Bytes(2, "data", data);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    CK_RV rv = init.Run(f);
    if (rv != ck::CKR_OK) return rv;
    return CallWithOutput(digest, kDigestGuess, [&](CK_BYTE* out, CK_ULONG* length) {
      return f->C_Digest(init.session, InputBytes(data), data.size(), out, length);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, digest); }
};

}  // namespace

void AddDigestMethods(MethodTable& table) {
  AddSyncAndAsync<DigestInitOp>(table);
  AddSyncAndAsync<DigestOp>(table);
  AddSyncAndAsync<DigestUpdateOp>(table);
  AddSyncAndAsync<DigestKeyOp>(table);
  AddSyncAndAsync<DigestFinalOp>(table);
  AddAsyncAs<OneShotDigestOp>(table, "digest");
  table.emplace_back("digestSync", &SyncEntry<OneShotDigestOp>);
}

}  // namespace p11
