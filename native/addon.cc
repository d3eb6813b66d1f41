// Entry point: registers the PKCS11 class and the per-environment state, nothing else.
#include <napi.h>

#include "addon_data.h"
#include "async/engine.h"
#include "binding/module_object.h"
#include "loader/dl.h"
#include "marshal/args.h"
#include "ops/runner.h"

namespace p11 {

AddonData& GetAddonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

namespace {

// lib/errors.ts hands over its Pkcs11Error class so native failures are instances of it.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Args args(info, "setErrorClass");
  if (!info[0].IsFunction()) args.Fail("errorClass", "a constructor");
  GetAddonData(info.Env()).errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// Size of the worker thread pool; only before the first async call.
Napi::Value SetThreadCount(const Napi::CallbackInfo& info) {
  Args args(info, "setThreadCount");
  CK_ULONG count = args.Ulong(0, "count");
  if (count < 1 || count > 256) args.Fail("count", "an integer from 1 to 256");
  AddonData& data = GetAddonData(info.Env());
  if (data.engine) throw Napi::Error::New(info.Env(), "setThreadCount: the worker threads are already running");
  data.threadCount = static_cast<unsigned>(count);
  return info.Env().Undefined();
}

// How much higher the worker threads set their nice value (0-19, Linux); only before the first
// async call, like the thread count.
Napi::Value SetWorkerNice(const Napi::CallbackInfo& info) {
  Args args(info, "setWorkerNice");
  CK_ULONG increment = args.Ulong(0, "increment");
  if (increment > 19) args.Fail("increment", "an integer from 0 to 19");
  AddonData& data = GetAddonData(info.Env());
  if (data.engine) throw Napi::Error::New(info.Env(), "setWorkerNice: the worker threads are already running");
  data.workerNice = static_cast<unsigned>(increment);
  return info.Env().Undefined();
}

// Whether a worker yields its core between calls while jobs are queued (default true); only
// before the first async call.
Napi::Value SetWorkerYield(const Napi::CallbackInfo& info) {
  Args args(info, "setWorkerYield");
  if (!info[0].IsBoolean()) args.Fail("enabled", "a boolean");
  AddonData& data = GetAddonData(info.Env());
  if (data.engine) throw Napi::Error::New(info.Env(), "setWorkerYield: the worker threads are already running");
  data.workerYield = info[0].As<Napi::Boolean>().Value();
  return info.Env().Undefined();
}

// How long a worker thread beyond one per core may stay idle before it ends (ms, default 30 s);
// only before the first async call.
Napi::Value SetThreadIdleTimeout(const Napi::CallbackInfo& info) {
  Args args(info, "setThreadIdleTimeout");
  CK_ULONG ms = args.Ulong(0, "ms");
  if (ms < 1 || ms > 86'400'000) args.Fail("ms", "an integer from 1 to 86400000 (a day)");
  AddonData& data = GetAddonData(info.Env());
  if (data.engine) throw Napi::Error::New(info.Env(), "setThreadIdleTimeout: the worker threads are already running");
  data.threadIdleMs = static_cast<unsigned>(ms);
  return info.Env().Undefined();
}

// The engine's state, for benchmarks and tests: engineInfo({ resetPeak }).
Napi::Value EngineInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool resetPeak = false;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "engineInfo: options must be an object");
    Napi::Value reset = info[0].As<Napi::Object>().Get("resetPeak");
    if (!reset.IsUndefined() && !reset.IsBoolean()) {
      throw Napi::TypeError::New(env, "engineInfo: options.resetPeak must be a boolean");
    }
    resetPeak = reset.IsBoolean() && reset.As<Napi::Boolean>().Value();
  }
  Napi::Object result = Napi::Object::New(env);
  AddonData& data = GetAddonData(env);
  Engine::Info snapshot{0, data.threadCount, data.threadCount, false, 0.0, 0, 0, 0.0, 0, 0, false, 0, data.workerYield, 0, 0, 0};  // nothing known yet
  if (data.engine) snapshot = data.engine->Snapshot(resetPeak);
  result.Set("threads", Napi::Number::New(env, snapshot.threads));
  result.Set("maxThreads", Napi::Number::New(env, snapshot.maxThreads));
  result.Set("callLimit", Napi::Number::New(env, snapshot.callLimit));
  result.Set("computeBound", Napi::Boolean::New(env, snapshot.computeBound));
  result.Set("blockedShare", Napi::Number::New(env, snapshot.blockedShare));
  result.Set("limitChanges", Napi::Number::New(env, snapshot.limitChanges));
  result.Set("peakRunning", Napi::Number::New(env, snapshot.peakRunning));
  result.Set("averageCallMicros", Napi::Number::New(env, snapshot.averageCallMicros));
  result.Set("jsWakeups", Napi::Number::New(env, snapshot.jsWakeups));
  result.Set("flusherWakeups", Napi::Number::New(env, snapshot.flusherWakeups));
  result.Set("batchScheduled", Napi::Boolean::New(env, snapshot.batchScheduled));
  result.Set("workerNice", Napi::Number::New(env, snapshot.workerNice));
  result.Set("workerYield", Napi::Boolean::New(env, snapshot.workerYield));
  result.Set("workerYields", Napi::Number::New(env, snapshot.workerYields));
  result.Set("probes", Napi::Number::New(env, snapshot.probes));
  result.Set("threadsRetired", Napi::Number::New(env, snapshot.threadsRetired));
  return result;
}

// The pool's busy-poll (lib/pool/busy-poll.ts): while it polls, completions wait for
// pollCompletions() on each turn instead of waking the JS thread (see Engine::StartPolling).
Napi::Value StartCompletionPolling(const Napi::CallbackInfo& info) {
  GetEngine(info.Env()).StartPolling();
  return info.Env().Undefined();
}

// pollCompletions(spinMicros = 0): settles the calls finished since the last turn and returns how
// many; with none ready, it first waits up to spinMicros (at most 1000) for one.
Napi::Value PollCompletions(const Napi::CallbackInfo& info) {
  AddonData& data = GetAddonData(info.Env());
  CK_ULONG spin = 0;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    Args args(info, "pollCompletions");
    spin = args.Ulong(0, "spinMicros");
    if (spin > 1000) args.Fail("spinMicros", "an integer from 0 to 1000");
  }
  if (!data.engine) return Napi::Number::New(info.Env(), 0);
  return Napi::Number::New(info.Env(), static_cast<double>(data.engine->PollCompletions(
                                           info.Env(), std::chrono::microseconds(static_cast<long long>(spin)))));
}

Napi::Value StopCompletionPolling(const Napi::CallbackInfo& info) {
  AddonData& data = GetAddonData(info.Env());
  if (data.engine) data.engine->StopPolling(info.Env());
  return info.Env().Undefined();
}

// The signing pool's completion sink (async/completion_sink.h): setSignSink(onBatch, onOne,
// slabBytes). signTo() answers through it.
Napi::Value SetSignSink(const Napi::CallbackInfo& info) {
  Args args(info, "setSignSink");
  if (!info[0].IsFunction()) args.Fail("onBatch", "a function");
  if (!info[1].IsFunction()) args.Fail("onOne", "a function");
  CK_ULONG slabBytes = args.Ulong(2, "slabBytes");
  // At least one ECDSA P-521 record; a larger signature than the slab holds goes through onOne.
  if (slabBytes < 256 || slabBytes > (1u << 24)) args.Fail("slabBytes", "an integer from 256 to 16777216");
  GetEngine(info.Env()).sink().Register(info.Env(), info[0].As<Napi::Function>(), info[1].As<Napi::Function>(),
                                         static_cast<size_t>(slabBytes));
  return info.Env().Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // The engine detaches threads stuck in module calls at teardown; they need this code later.
  static const bool kept = KeepImageLoaded(&kept);
  (void)kept;
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  // Stop the engine's threads before the environment (a worker_thread, or the process) goes.
  env.AddCleanupHook([data] {
    if (data->engine) data->engine->Shutdown();
  });
  Napi::Function moduleClass = ModuleObject::Define(env);
  data->moduleClass = Napi::Persistent(moduleClass);
  exports.Set("PKCS11", moduleClass);
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("setThreadCount", Napi::Function::New(env, SetThreadCount, "setThreadCount"));
  exports.Set("setWorkerNice", Napi::Function::New(env, SetWorkerNice, "setWorkerNice"));
  exports.Set("setThreadIdleTimeout", Napi::Function::New(env, SetThreadIdleTimeout, "setThreadIdleTimeout"));
  exports.Set("setWorkerYield", Napi::Function::New(env, SetWorkerYield, "setWorkerYield"));
  exports.Set("engineInfo", Napi::Function::New(env, EngineInfo, "engineInfo"));
  exports.Set("startCompletionPolling", Napi::Function::New(env, StartCompletionPolling, "startCompletionPolling"));
  exports.Set("pollCompletions", Napi::Function::New(env, PollCompletions, "pollCompletions"));
  exports.Set("stopCompletionPolling", Napi::Function::New(env, StopCompletionPolling, "stopCompletionPolling"));
  exports.Set("setSignSink", Napi::Function::New(env, SetSignSink, "setSignSink"));
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  return exports;
}

}  // namespace p11

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return p11::Init(env, exports); }

NODE_API_MODULE(pkcs11_napi, InitAddon)
