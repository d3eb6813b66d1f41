// C_GetInfo. (C_Initialize, C_Finalize and C_GetFunctionList belong to the module object.)
#include "../marshal/info.h"
#include "method_tables.h"

namespace p11 {

namespace {

struct GetInfoOp {
  static constexpr const char* kName = "C_GetInfo";
  static constexpr Scope kScope = Scope::Slot;
  CK_INFO info{};
  void Parse(const Args&) {}
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_GetInfo(&info); }
  Napi::Value Result(Napi::Env env) { return InfoToJs(env, info); }
};

}  // namespace

void AddGeneralMethods(MethodTable& table) { AddSync<GetInfoOp>(table); }

}  // namespace p11
