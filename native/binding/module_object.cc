#include "module_object.h"

#include "../addon_data.h"
#include "../async/engine.h"
#include "../errors/ck_error.h"
#include "../generated/constants.h"
#include "../loader/spinning_mutex.h"
#include "../marshal/args.h"
#include "../marshal/ulong.h"
#include "../ops/method_tables.h"

namespace p11 {

namespace {

// Distinguishes our wrapped objects from any other object passed as `this` (N-API 8 type tags).
const napi_type_tag kModuleTag = {0x7a1c3e5b9d2f4a60ULL, 0x8b4d6f1e3c5a7092ULL};

Napi::Object VersionToJs(Napi::Env env, const CK_VERSION& version) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("major", Napi::Number::New(env, version.major));
  object.Set("minor", Napi::Number::New(env, version.minor));
  return object;
}

// Calls given up on keep their engine threads until they return, which may be never.
void ReplaceStuckThreads(Napi::Env env, unsigned count) {
  AddonData& data = GetAddonData(env);
  if (count > 0 && data.engine) data.engine->ReplaceStuckThreads(count);
}

}  // namespace

Napi::Function ModuleObject::Define(Napi::Env env) {
  Napi::Function constructor = DefineClass(
      env, "PKCS11",
      {
          InstanceMethod<&ModuleObject::Load>("load"),
          InstanceMethod<&ModuleObject::Close>("close"),
          InstanceMethod<&ModuleObject::Initialize>("C_Initialize"),
          InstanceMethod<&ModuleObject::Finalize>("C_Finalize"),
          InstanceMethod<&ModuleObject::GetFunctionList>("C_GetFunctionList"),
      });
  // Every other PKCS#11 function is a plain function on the prototype; the tables in ops/
  // say which exist and whether each has a promise variant.
  Napi::Object prototype = constructor.Get("prototype").As<Napi::Object>();
  // Getters check their receiver's type tag like the methods do (a foreign `this` is a TypeError).
  prototype.DefineProperty(Napi::PropertyDescriptor::Accessor(
      env, prototype, "libraryPath",
      [](const Napi::CallbackInfo& info) { return FromThis(info, "libraryPath").GetPath(info); }, napi_configurable));
  prototype.DefineProperty(Napi::PropertyDescriptor::Accessor(
      env, prototype, "initialized",
      [](const Napi::CallbackInfo& info) { return FromThis(info, "initialized").GetInitialized(info); },
      napi_configurable));
  prototype.DefineProperty(Napi::PropertyDescriptor::Accessor(
      env, prototype, "callsInFlight",
      [](const Napi::CallbackInfo& info) { return FromThis(info, "callsInFlight").GetCallsInFlight(info); },
      napi_configurable));
  prototype.DefineProperty(Napi::PropertyDescriptor::Accessor(
      env, prototype, "locking",
      [](const Napi::CallbackInfo& info) { return FromThis(info, "locking").GetLocking(info); }, napi_configurable));
  prototype.DefineProperty(Napi::PropertyDescriptor::Accessor(
      env, prototype, "callsAbandoned",
      [](const Napi::CallbackInfo& info) { return FromThis(info, "callsAbandoned").GetCallsAbandoned(info); },
      napi_configurable));
  for (const auto& [name, entry] : AllMethods()) {
    prototype.DefineProperty(Napi::PropertyDescriptor::Value(
        name, Napi::Function::New(env, entry, name), static_cast<napi_property_attributes>(napi_writable | napi_configurable)));
  }
  return constructor;
}

ModuleObject& ModuleObject::FromThis(const Napi::CallbackInfo& info, const char* function) {
  Napi::Value self = info.This();
  bool tagged = false;
  // The check fails only when N-API refuses calls (the environment is stopping): say that, not
  // that `this` is of the wrong type.
  if (self.IsObject() && napi_check_object_type_tag(info.Env(), self, &kModuleTag, &tagged) != napi_ok) {
    throw Napi::Error::New(info.Env());
  }
  if (!tagged) {
    throw Napi::TypeError::New(info.Env(), std::string(function) + " must be called on a PKCS11 object");
  }
  return *Unwrap(self.As<Napi::Object>());
}

ModuleObject::ModuleObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModuleObject>(info) {
  napi_type_tag_object(info.Env(), info.This(), &kModuleTag);
}

ModuleObject::~ModuleObject() {
  // Garbage collected without close(): give up our share of the initialisation. Async jobs
  // hold their own reference to the library, so none of them is cut off here.
  if (initialized_) {
    if (gate_->CloseAndDrainFor(std::chrono::milliseconds(5000))) library_->Finalize();
  }
}

const std::shared_ptr<Library>& ModuleObject::RequireReady(Napi::Env env, const char* function) {
  if (!library_) {
    throw Napi::Error::New(env, std::string(function) + ": no PKCS#11 module is loaded (call load(path) first)");
  }
  if (!initialized_) ThrowCkError(env, ck::CKR_CRYPTOKI_NOT_INITIALIZED, function);
  if (library_->InheritedFromParent()) {
    ThrowCkError(env, ck::CKR_CRYPTOKI_NOT_INITIALIZED, function,
                 "this process is a fork of the one that initialized the module; call C_Initialize again");
  }
  return library_;
}

Napi::Value ModuleObject::Load(const Napi::CallbackInfo& info) {
  Args args(info, "load");
  std::string path = args.Utf8(0, "path");
  DlOptions options;
  if (!args.IsAbsent(1)) {
    Napi::Object object = args.Object(1, "options");
    Napi::Value deepBind = object.Get("deepBind");
    if (!deepBind.IsUndefined()) {
      if (!deepBind.IsBoolean()) args.Fail("options.deepBind", "a boolean");
      options.deepBind = deepBind.As<Napi::Boolean>().Value();
    }
  }
  if (library_) throw Napi::Error::New(info.Env(), "load: a module is already loaded; call close() first");
  std::string error;
  std::shared_ptr<Library> library = Library::Load(path, options, error);
  if (!library) throw Napi::Error::New(info.Env(), error);
  library_ = std::move(library);
  return info.Env().Undefined();
}

Napi::Value ModuleObject::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "close");
  // How long close() may block the JS thread waiting for calls still inside the module.
  CK_ULONG timeoutMs = 5000;
  if (!args.IsAbsent(0)) {
    Napi::Object options = args.Object(0, "options");
    Napi::Value timeout = options.Get("timeoutMs");
    if (!timeout.IsUndefined() && !UlongFromJs(timeout, timeoutMs)) {
      args.Fail("options.timeoutMs", "a non-negative integer");
    }
  }
  bool drained = true;
  if (initialized_) {
    initialized_ = false;
    drained = gate_->CloseAndDrainFor(std::chrono::milliseconds(timeoutMs));
    // When a call is stuck inside the module (a hung HSM), finalising under it would be
    // undefined behaviour: our share is kept instead, and ~Library finalises the module once
    // that call returns and its job releases the library.
    if (drained) {
      library_->Finalize();
    } else {
      // This object lets go of them; a later load must not wait for them, nor go without threads.
      ReplaceStuckThreads(env, gate_->Abandon());
    }
  }
  library_.reset();  // the last owner unloads the module (after its jobs release it)
  Napi::Object result = Napi::Object::New(env);
  result.Set("drained", Napi::Boolean::New(env, drained));
  return result;
}

Napi::Value ModuleObject::Initialize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "C_Initialize");
  if (!library_) throw Napi::Error::New(env, "C_Initialize: no PKCS#11 module is loaded (call load(path) first)");
  InitOptions options;
  options.flags = ck::CKF_OS_LOCKING_OK;
  if (!args.IsAbsent(0)) {
    Napi::Object object = args.Object(0, "options");
    Napi::Value flags = object.Get("flags");
    if (!flags.IsUndefined() && !UlongFromJs(flags, options.flags)) {
      args.Fail("options.flags", "a non-negative integer (CKF_ flags)");
    }
    Napi::Value spinning = object.Get("spinningMutexes");
    if (!spinning.IsUndefined()) {
      if (!spinning.IsBoolean()) args.Fail("options.spinningMutexes", "a boolean");
      options.spinningMutexes = spinning.As<Napi::Boolean>().Value();
    }
    Napi::Value parameters = object.Get("libraryParameters");
    if (!parameters.IsUndefined() && !parameters.IsNull()) {
      if (!parameters.IsString()) args.Fail("options.libraryParameters", "a string");
      options.hasLibraryParameters = true;
      options.libraryParameters = parameters.As<Napi::String>().Utf8Value();
    }
  }
  if (initialized_ && !library_->InheritedFromParent()) {
    ThrowCkError(env, ck::CKR_CRYPTOKI_ALREADY_INITIALIZED, "C_Initialize");
  }
  CK_RV rv = library_->Initialize(options);
  if (rv != ck::CKR_OK) ThrowCkError(env, rv, "C_Initialize");
  initialized_ = true;
  gate_->OpenNewEpoch();
  return env.Undefined();
}

Napi::Value ModuleObject::Finalize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "C_Finalize");
  // The standard leaves C_Finalize undefined while other threads are inside the module, so the
  // async calls inside are waited for first, but not forever: a wedged call would freeze the
  // event loop. abandonCalls finalises under calls that did not return in time (for modules
  // known to survive it, such as a network client whose connection is gone).
  CK_ULONG timeoutMs = 5000;
  bool abandonCalls = false;
  if (!args.IsAbsent(0)) {
    Napi::Object options = args.Object(0, "options");
    Napi::Value timeout = options.Get("drainTimeoutMs");
    if (!timeout.IsUndefined() && !UlongFromJs(timeout, timeoutMs)) {
      args.Fail("options.drainTimeoutMs", "a non-negative integer");
    }
    Napi::Value abandon = options.Get("abandonCalls");
    if (!abandon.IsUndefined()) {
      if (!abandon.IsBoolean()) args.Fail("options.abandonCalls", "a boolean");
      abandonCalls = abandon.As<Napi::Boolean>().Value();
    }
  }
  if (!library_ || !initialized_) ThrowCkError(env, ck::CKR_CRYPTOKI_NOT_INITIALIZED, "C_Finalize");
  if (!gate_->CloseAndDrainFor(std::chrono::milliseconds(timeoutMs))) {
    if (!abandonCalls) {
      unsigned inside = gate_->inside();
      gate_->Reopen();  // still initialised and usable
      Napi::Error error = Napi::Error::New(
          env, "C_Finalize: " + std::to_string(inside) + " call(s) still inside the module after " +
                   std::to_string(timeoutMs) +
                   " ms; the module was not finalized (pass { abandonCalls: true } to finalize under them)");
      error.Set("code", Napi::String::New(env, "ERR_PKCS11_CALLS_IN_FLIGHT"));
      error.Set("function", Napi::String::New(env, "C_Finalize"));
      error.Set("callsInFlight", Napi::Number::New(env, inside));
      throw error;
    }
    ReplaceStuckThreads(env, gate_->Abandon());
  }
  CK_RV rv = library_->Finalize();
  if (rv != ck::CKR_OK) {
    gate_->Reopen();  // still initialised: the caller may go on using it, or try again
    ThrowCkError(env, rv, "C_Finalize");
  }
  initialized_ = false;
  return env.Undefined();
}

Napi::Value ModuleObject::GetFunctionList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!library_) throw Napi::Error::New(env, "C_GetFunctionList: no PKCS#11 module is loaded");
  Napi::Object result = Napi::Object::New(env);
  result.Set("version", VersionToJs(env, library_->functions()->version));
  result.Set("entryPoint", Napi::String::New(env, library_->entryPoint()));
  return result;
}

Napi::Value ModuleObject::GetPath(const Napi::CallbackInfo& info) {
  if (!library_) return info.Env().Null();
  return Napi::String::New(info.Env(), library_->path());
}

Napi::Value ModuleObject::GetLocking(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!library_ || !initialized_) return env.Null();
  Napi::Object result = Napi::Object::New(env);
  result.Set("serialized", Napi::Boolean::New(env, library_->serialized()));
  result.Set("spinningMutexes", Napi::Boolean::New(env, library_->offeredSpinningMutexes()));
  // Process-wide: every module initialised with them counts.
  result.Set("spinningMutexesLive", Napi::Number::New(env, static_cast<double>(spinningMutexesLive.load())));
  return result;
}

Napi::Value ModuleObject::GetCallsInFlight(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), gate_->inside());
}

Napi::Value ModuleObject::GetCallsAbandoned(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), gate_->abandoned());
}

Napi::Value ModuleObject::GetInitialized(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), initialized_);
}

}  // namespace p11
