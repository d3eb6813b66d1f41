// One unit of blocking PKCS#11 work. Execute() runs on an engine thread and must not touch
// N-API; Settle() runs on the JS thread and resolves or rejects the job's promise.
#pragma once

#include <napi.h>

namespace p11 {

class Job {
 public:
  explicit Job(Napi::Env env) : deferred_(Napi::Promise::Deferred::New(env)) {}
  virtual ~Job() = default;
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  virtual void Execute() = 0;
  virtual void Settle(Napi::Env env) = 0;
  // The engine is shutting down (environment teardown): release without settling.
  virtual void Abandon() {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  Napi::Promise::Deferred deferred_;
};

}  // namespace p11
