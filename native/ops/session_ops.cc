// Sessions: open, close, info, login, logout, and saved operation state.
#include "../marshal/info.h"
#include "../marshal/secure_bytes.h"
#include "../marshal/ulong.h"
#include "method_tables.h"

namespace p11 {

namespace {

// Notification callbacks are not offered: they would run on the module's threads, and the
// standard lets modules ignore them. CKF_SERIAL_SESSION is always added, as the standard requires.
struct OpenSessionOp {
  static constexpr const char* kName = "C_OpenSession";
  static constexpr Scope kScope = Scope::Slot;
  CK_SLOT_ID slot = 0;
  CK_FLAGS flags = 0;
  CK_SESSION_HANDLE session = 0;
  void Parse(const Args& args) {
    slot = args.Ulong(0, "slotID");
    flags = (args.IsAbsent(1) ? 0 : args.Ulong(1, "flags")) | ck::CKF_SERIAL_SESSION;
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_OpenSession(slot, flags, nullptr, nullptr, &session); }
  Napi::Value Result(Napi::Env env) { return UlongToJs(env, session); }
};

struct CloseSessionOp {
  static constexpr const char* kName = "C_CloseSession";
  CK_SESSION_HANDLE session = 0;
  void Parse(const Args& args) { session = args.Ulong(0, "session"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_CloseSession(session); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct CloseAllSessionsOp {
  static constexpr const char* kName = "C_CloseAllSessions";
  // Closes sessions other threads may be using: it waits until none of them is in a call.
  static constexpr Scope kScope = Scope::AllSessions;
  CK_SLOT_ID slot = 0;
  void Parse(const Args& args) { slot = args.Ulong(0, "slotID"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_CloseAllSessions(slot); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct GetSessionInfoOp {
  static constexpr const char* kName = "C_GetSessionInfo";
  CK_SESSION_HANDLE session = 0;
  CK_SESSION_INFO info{};
  void Parse(const Args& args) { session = args.Ulong(0, "session"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_GetSessionInfo(session, &info); }
  Napi::Value Result(Napi::Env env) { return SessionInfoToJs(env, info); }
};

struct GetOperationStateOp {
  static constexpr const char* kName = "C_GetOperationState";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> state;
  void Parse(const Args& args) { session = args.Ulong(0, "session"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    // The state's size is not known in advance: ask for it first (the standard two-call form).
    CK_ULONG length = 0;
    CK_RV rv = f->C_GetOperationState(session, nullptr, &length);
    if (rv != ck::CKR_OK) return rv;
    return CallWithOutput(state, length, [&](CK_BYTE* out, CK_ULONG* size) {
      return f->C_GetOperationState(session, out, size);
    });
  }
  Napi::Value Result(Napi::Env env) { return BytesToJs(env, state); }
};

struct SetOperationStateOp {
  static constexpr const char* kName = "C_SetOperationState";
  CK_SESSION_HANDLE session = 0;
  std::vector<CK_BYTE> state;
  CK_OBJECT_HANDLE encryptionKey = 0;
  CK_OBJECT_HANDLE authenticationKey = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Bytes(1, "state", state);
    encryptionKey = args.IsAbsent(2) ? 0 : args.Ulong(2, "encryptionKey");
    authenticationKey = args.IsAbsent(3) ? 0 : args.Ulong(3, "authenticationKey");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return f->C_SetOperationState(session, InputBytes(state), state.size(), encryptionKey, authenticationKey);
  }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct LoginOp {
  static constexpr const char* kName = "C_Login";
  CK_SESSION_HANDLE session = 0;
  CK_USER_TYPE userType = 0;
  SecureBytes pin;
  bool protectedPath = false;  // no PIN given: the token's own PIN pad (CKF_PROTECTED_AUTHENTICATION_PATH)
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    userType = args.Ulong(1, "userType");
    protectedPath = args.IsAbsent(2);
    if (!protectedPath) args.Secret(2, "pin", pin);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return f->C_Login(session, userType, protectedPath ? nullptr : pin.data(), protectedPath ? 0 : pin.size());
  }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct LogoutOp {
  static constexpr const char* kName = "C_Logout";
  CK_SESSION_HANDLE session = 0;
  void Parse(const Args& args) { session = args.Ulong(0, "session"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_Logout(session); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

}  // namespace

void AddSessionMethods(MethodTable& table) {
  AddSyncAndAsync<OpenSessionOp>(table);
  AddSyncAndAsync<CloseSessionOp>(table);
  AddSync<CloseAllSessionsOp>(table);
  AddSync<GetSessionInfoOp>(table);
  AddSync<GetOperationStateOp>(table);
  AddSync<SetOperationStateOp>(table);
  AddSyncAndAsync<LoginOp>(table);
  AddSyncAndAsync<LogoutOp>(table);
}

}  // namespace p11
