// The JS class `PKCS11`: one loaded module as seen by one JS owner. It holds a share of the
// process-wide Library, its own initialisation state, and the gate its async calls pass.
#pragma once

#include <napi.h>

#include <memory>

#include "../loader/library.h"
#include "call_gate.h"

namespace p11 {

class ModuleObject : public Napi::ObjectWrap<ModuleObject> {
 public:
  static Napi::Function Define(Napi::Env env);
  // The receiver of a PKCS#11 method, checked by type tag: anything else is a TypeError.
  static ModuleObject& FromThis(const Napi::CallbackInfo& info, const char* function);

  explicit ModuleObject(const Napi::CallbackInfo& info);
  ~ModuleObject() override;

  // The library, if this object has initialised it in this process; throws otherwise.
  const std::shared_ptr<Library>& RequireReady(Napi::Env env, const char* function);
  const std::shared_ptr<CallGate>& gate() const { return gate_; }

 private:
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Initialize(const Napi::CallbackInfo& info);
  Napi::Value Finalize(const Napi::CallbackInfo& info);
  Napi::Value GetFunctionList(const Napi::CallbackInfo& info);
  Napi::Value GetPath(const Napi::CallbackInfo& info);
  Napi::Value GetInitialized(const Napi::CallbackInfo& info);
  Napi::Value GetCallsInFlight(const Napi::CallbackInfo& info);
  Napi::Value GetLocking(const Napi::CallbackInfo& info);
  Napi::Value GetCallsAbandoned(const Napi::CallbackInfo& info);

  std::shared_ptr<Library> library_;
  std::shared_ptr<CallGate> gate_ = std::make_shared<CallGate>();
  bool initialized_ = false;
};

}  // namespace p11
