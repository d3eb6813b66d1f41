// Message digests: the standard C_Digest* functions, and the one-hop digest() that runs
// C_DigestInit and C_Digest in a single engine job.
#include "call_shapes.h"
#include "method_tables.h"

namespace p11 {

namespace {

// Larger than any common digest (SHA-512 is 64 bytes), so one call normally suffices.
constexpr size_t kDigestGuess = 128;

struct DigestInitOp {
  static constexpr const char* kName = "C_DigestInit";
  static constexpr size_t kArgCount = 2;
  CK_SESSION_HANDLE session = 0;
  Mechanism mechanism;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    mechanism.Parse(args, args.At(1), "mechanism");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_DigestInit(session, mechanism.Bind()); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct DigestOp : BytesInOutCall<DigestOp> {
  static constexpr const char* kName = "C_Digest";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_Digest;
  static constexpr const char* kInput = "data";
  static size_t OutputGuess(size_t) { return kDigestGuess; }
};

struct DigestUpdateOp : BytesInCall<DigestUpdateOp> {
  static constexpr const char* kName = "C_DigestUpdate";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_DigestUpdate;
  static constexpr const char* kInput = "part";
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

struct DigestFinalOp : BytesOutCall<DigestFinalOp> {
  static constexpr const char* kName = "C_DigestFinal";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_DigestFinal;
  static size_t OutputGuess(size_t) { return kDigestGuess; }
};

// digest(session, mechanism, data).
struct OneShotDigestOp : InitThenCall<DigestInitOp, DigestOp> {
  static constexpr const char* kName = "digest";
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
