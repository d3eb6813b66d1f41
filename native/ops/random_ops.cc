// Random numbers, and the two legacy parallel-function calls kept for completeness.
#include "method_tables.h"

namespace p11 {

namespace {

// A resource limit, not a PKCS#11 one: far more than any key or nonce needs.
constexpr CK_ULONG kMaxRandomBytes = 1024u * 1024u;

struct SeedRandomOp {
  static constexpr const char* kName = "C_SeedRandom";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> seed;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "seed", seed);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_SeedRandom(session, InputBytes(seed), seed.size()); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct GenerateRandomOp {
  static constexpr const char* kName = "C_GenerateRandom";
  CK_SESSION_HANDLE session = 0;
  CK_ULONG length = 0;
  std::vector<CK_BYTE> random;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    length = args.Ulong(1, "length");
    if (length > kMaxRandomBytes) args.Fail("length", "an integer from 0 to 1048576");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    random.assign(length, 0);
    return f->C_GenerateRandom(session, InputBytes(random), length);
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, random); }
};

// v2.40 modules answer both with CKR_FUNCTION_NOT_PARALLEL; that goes out as a normal error.
struct GetFunctionStatusOp {
  static constexpr const char* kName = "C_GetFunctionStatus";
  CK_SESSION_HANDLE session = 0;
  void Parse(const Args& args) { session = args.Ulong(0, "session"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_GetFunctionStatus(session); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct CancelFunctionOp {
  static constexpr const char* kName = "C_CancelFunction";
  CK_SESSION_HANDLE session = 0;
  void Parse(const Args& args) { session = args.Ulong(0, "session"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_CancelFunction(session); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

}  // namespace

void AddRandomMethods(MethodTable& table) {
  AddSyncAndAsync<SeedRandomOp>(table);
  AddSyncAndAsync<GenerateRandomOp>(table);
  AddSync<GetFunctionStatusOp>(table);
  AddSync<CancelFunctionOp>(table);
}

}  // namespace p11
