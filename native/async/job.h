// One unit of blocking PKCS#11 work. Execute() runs on an engine thread and must not touch
// N-API; Settle() runs on the JS thread and hands the outcome to JavaScript: a promise for most
// jobs (OpJob, ops/runner.h), the completion sink for the pool's signatures (completion_sink.h).
#pragma once

#include <napi.h>

#include <cstddef>
#include <functional>

#include "../pkcs11/types.h"
#include "completion_sink.h"

namespace p11 {

// What a call may not share with a concurrent call. Modules are not required to cope with two
// threads in one session at once (SoftHSM2 crashes), so the engine runs the calls of one
// session one at a time, in the order they were made.
enum class Scope {
  Session,      // the call's first argument is a session handle (most calls)
  Slot,         // slot- or module-level: no session to protect
  AllSessions,  // touches every session of the module (C_CloseAllSessions)
};

// A session is a handle within one initialisation of one module: a handle number the module
// hands out again after C_Finalize + C_Initialize is a different session (a call stuck in the old
// one must not hold up the new one).
struct SessionKey {
  const void* library = nullptr;
  unsigned long long initialization = 0;
  CK_SESSION_HANDLE session = 0;
  bool operator==(const SessionKey& other) const {
    return library == other.library && initialization == other.initialization && session == other.session;
  }
};

struct SessionKeyHash {
  size_t operator()(const SessionKey& key) const {
    size_t hash = std::hash<const void*>()(key.library);
    hash = hash * 1099511628211ULL ^ std::hash<unsigned long long>()(key.initialization);
    return hash * 1099511628211ULL ^ std::hash<CK_SESSION_HANDLE>()(key.session);
  }
};

class Job {
 public:
  Job(Scope scope, SessionKey key) : scope_(scope), key_(key) {}
  virtual ~Job() = default;
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  virtual void Execute() = 0;
  virtual void Settle(Napi::Env env, CompletionSink& sink) = 0;
  // The engine is shutting down (environment teardown): release without settling.
  virtual void Abandon() {}
  // True when Settle writes to the sink's slab only before running any JavaScript of its own
  // (SinkSignJob): then the engine need not have the slab checked for detachment again.
  virtual bool SettlesThroughSink() const { return false; }

  // Set by Execute: the call came back from the module after it had been given up on
  // (C_Finalize({ abandonCalls })), so its thread had been replaced (Engine::ReplaceStuckThreads).
  bool returnedAfterAbandon() const { return returnedAfterAbandon_; }
  Scope scope() const { return scope_; }
  const SessionKey& key() const { return key_; }

 protected:
  bool returnedAfterAbandon_ = false;

 private:
  Scope scope_;
  SessionKey key_;
};

}  // namespace p11
