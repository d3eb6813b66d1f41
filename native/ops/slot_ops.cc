// Slots and tokens: lists, info, mechanisms, token and PIN initialisation, slot events.
#include <cstring>

#include "../marshal/info.h"
#include "../marshal/secure_bytes.h"
#include "list_result.h"
#include "method_tables.h"

namespace p11 {

namespace {

struct GetSlotListOp {
  static constexpr const char* kName = "C_GetSlotList";
  static constexpr Scope kScope = Scope::Slot;
  CK_BBOOL tokenPresent = 0;
  std::vector<CK_ULONG> slots;
  void Parse(const Args& args) { tokenPresent = args.IsAbsent(0) ? 0 : (args.Bool(0, "tokenPresent") ? 1 : 0); }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return ReadList(slots, [&](CK_ULONG* list, CK_ULONG* count) { return f->C_GetSlotList(tokenPresent, list, count); });
  }
  Napi::Value Result(Napi::Env env) { return UlongListToJs(env, slots); }
};

struct GetSlotInfoOp {
  static constexpr const char* kName = "C_GetSlotInfo";
  static constexpr Scope kScope = Scope::Slot;
  CK_SLOT_ID slot = 0;
  CK_SLOT_INFO info{};
  void Parse(const Args& args) { slot = args.Ulong(0, "slotID"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_GetSlotInfo(slot, &info); }
  Napi::Value Result(Napi::Env env) { return SlotInfoToJs(env, info); }
};

struct GetTokenInfoOp {
  static constexpr const char* kName = "C_GetTokenInfo";
  static constexpr Scope kScope = Scope::Slot;
  CK_SLOT_ID slot = 0;
  CK_TOKEN_INFO info{};
  void Parse(const Args& args) { slot = args.Ulong(0, "slotID"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_GetTokenInfo(slot, &info); }
  Napi::Value Result(Napi::Env env) { return TokenInfoToJs(env, info); }
};

struct GetMechanismListOp {
  static constexpr const char* kName = "C_GetMechanismList";
  static constexpr Scope kScope = Scope::Slot;
  CK_SLOT_ID slot = 0;
  std::vector<CK_ULONG> mechanisms;
  void Parse(const Args& args) { slot = args.Ulong(0, "slotID"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return ReadList(mechanisms,
                    [&](CK_ULONG* list, CK_ULONG* count) { return f->C_GetMechanismList(slot, list, count); });
  }
  Napi::Value Result(Napi::Env env) { return UlongListToJs(env, mechanisms); }
};

struct GetMechanismInfoOp {
  static constexpr const char* kName = "C_GetMechanismInfo";
  static constexpr Scope kScope = Scope::Slot;
  CK_SLOT_ID slot = 0;
  CK_MECHANISM_TYPE type = 0;
  CK_MECHANISM_INFO info{};
  void Parse(const Args& args) {
    slot = args.Ulong(0, "slotID");
    type = args.Ulong(1, "type");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_GetMechanismInfo(slot, type, &info); }
  Napi::Value Result(Napi::Env env) { return MechanismInfoToJs(env, info); }
};

// The token label is 32 bytes, blank padded, not NUL terminated.
struct InitTokenOp {
  static constexpr const char* kName = "C_InitToken";
  static constexpr Scope kScope = Scope::Slot;
  CK_SLOT_ID slot = 0;
  SecureBytes soPin;
  CK_UTF8CHAR label[32];
  void Parse(const Args& args) {
    slot = args.Ulong(0, "slotID");
    args.Secret(1, "soPin", soPin);
    std::string text = args.Utf8(2, "label");
    if (text.size() > sizeof label) args.Fail("label", "at most 32 bytes of UTF-8");
    std::memset(label, ' ', sizeof label);
    std::memcpy(label, text.data(), text.size());
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_InitToken(slot, soPin.data(), soPin.size(), label); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct InitPinOp {
  static constexpr const char* kName = "C_InitPIN";
  CK_SESSION_HANDLE session = 0;
  SecureBytes pin;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Secret(1, "pin", pin);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_InitPIN(session, pin.data(), pin.size()); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct SetPinOp {
  static constexpr const char* kName = "C_SetPIN";
  CK_SESSION_HANDLE session = 0;
  SecureBytes oldPin;
  SecureBytes newPin;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    args.Secret(1, "oldPin", oldPin);
    args.Secret(2, "newPin", newPin);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return f->C_SetPIN(session, oldPin.data(), oldPin.size(), newPin.data(), newPin.size());
  }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

// Synchronous form: flags should include CKF_DONT_BLOCK (a blocking wait would freeze the JS
// thread). The promise form may block, on an engine thread. Resolves to the slot ID, or null
// when the module reports CKR_NO_EVENT.
struct WaitForSlotEventOp {
  static constexpr const char* kName = "C_WaitForSlotEvent";
  static constexpr Scope kScope = Scope::Slot;
  CK_FLAGS flags = 0;
  CK_SLOT_ID slot = 0;
  bool noEvent = false;
  void Parse(const Args& args) { flags = args.IsAbsent(0) ? 0 : args.Ulong(0, "flags"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    CK_RV rv = f->C_WaitForSlotEvent(flags, &slot, nullptr);
    noEvent = rv == ck::CKR_NO_EVENT;
    return noEvent ? ck::CKR_OK : rv;
  }
  Napi::Value Result(Napi::Env env) { return noEvent ? env.Null() : UlongToJs(env, slot); }
};

}  // namespace

void AddSlotMethods(MethodTable& table) {
  AddSync<GetSlotListOp>(table);
  AddSync<GetSlotInfoOp>(table);
  AddSync<GetTokenInfoOp>(table);
  AddSync<GetMechanismListOp>(table);
  AddSync<GetMechanismInfoOp>(table);
  AddSyncAndAsync<InitTokenOp>(table);
  AddSyncAndAsync<InitPinOp>(table);
  AddSyncAndAsync<SetPinOp>(table);
  AddSyncAndAsync<WaitForSlotEventOp>(table);
}

}  // namespace p11
