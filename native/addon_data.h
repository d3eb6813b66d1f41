// Per-environment state (main thread and each worker_thread get their own).
#pragma once

#include <napi.h>

#include <memory>

#include "async/thread_policy.h"

namespace p11 {

class Engine;

struct AddonData {
  Napi::FunctionReference errorClass;   // Pkcs11Error from lib/errors.ts, registered by the loader
  Napi::FunctionReference moduleClass;  // the wrapped PKCS11 class, for type checks
  std::shared_ptr<Engine> engine;       // worker threads, started on first async call
  unsigned threadCount = 0;             // 0: choose from the machine
  unsigned workerNice = kDefaultWorkerNice;  // setWorkerNice()
  bool workerYield = kDefaultWorkerYield;    // setWorkerYield()
  unsigned threadIdleMs = kDefaultThreadIdleMs;  // setThreadIdleTimeout()
};

AddonData& GetAddonData(Napi::Env env);

}  // namespace p11
