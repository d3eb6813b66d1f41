// One core per PKCS#11 operation, shared by the synchronous and the promise-returning entry.
//
// An operation is a plain struct:
//   static constexpr const char* kName = "C_Sign";
//   void Parse(const Args& args);                       // JS thread: copy arguments in (may throw TypeError)
//   CK_RV Run(const CK_FUNCTION_LIST* f);               // any thread: only PKCS#11 calls, no N-API
//   Napi::Value Result(Napi::Env env);                  // JS thread: convert the outputs
// SyncEntry<Op> runs it on the calling thread; AsyncEntry<Op> queues it on the engine.
#pragma once

#include <napi.h>

#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "../addon_data.h"
#include "../async/engine.h"
#include "../binding/module_object.h"
#include "../errors/ck_error.h"
#include "../generated/constants.h"
#include "../loader/exit_barrier.h"
#include "../marshal/args.h"
#include "../marshal/ulong.h"

namespace p11 {

using EntryPoint = Napi::Value (*)(const Napi::CallbackInfo&);
using MethodTable = std::vector<std::pair<std::string, EntryPoint>>;

Engine& GetEngine(Napi::Env env);

// An operation's Scope: Session unless it declares `static constexpr Scope kScope`.
template <typename Op, typename = void>
struct ScopeOf {
  static constexpr Scope value = Scope::Session;
};
template <typename Op>
struct ScopeOf<Op, std::void_t<decltype(Op::kScope)>> {
  static constexpr Scope value = Op::kScope;
};

// The session a call belongs to: every session-scoped function takes it as its first argument
// (already checked by Parse, so reading it again cannot fail).
inline SessionKey KeyOf(const Library& library, const Napi::CallbackInfo& info, Scope scope) {
  SessionKey key{&library, library.initialization(), 0};
  if (scope == Scope::Session) UlongFromJs(info[0], key.session);
  return key;
}

// Holds a session (or all of them) for a synchronous call, so it never overlaps an async call
// of the same session running on an engine thread.
class SyncClaim {
 public:
  SyncClaim(Engine& engine, Scope scope, const SessionKey& key) : engine_(engine), scope_(scope), key_(key) {
    engine_.ClaimForSync(scope_, key_);
  }
  ~SyncClaim() { engine_.ReleaseForSync(scope_, key_); }
  SyncClaim(const SyncClaim&) = delete;
  SyncClaim& operator=(const SyncClaim&) = delete;

 private:
  Engine& engine_;
  Scope scope_;
  SessionKey key_;
};

// Runs `op` against the module, holding the library's serialising lock when it needs one.
template <typename Op>
CK_RV RunOp(Library& library, Op& op) {
  ExitBarrierPass pass;
  if (!pass.entered()) return ck::CKR_CRYPTOKI_NOT_INITIALIZED;  // the process is exiting
  try {
    if (library.serialized()) {
      std::lock_guard<std::mutex> lock(library.serialLock());
      return op.Run(library.functions());
    }
    return op.Run(library.functions());
  } catch (const std::bad_alloc&) {
    return ck::CKR_HOST_MEMORY;
  }
}

template <typename Op>
Napi::Value SyncEntry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ModuleObject& module = ModuleObject::FromThis(info, Op::kName);
  const std::shared_ptr<Library>& library = module.RequireReady(env, Op::kName);
  Op op;
  op.Parse(Args(info, Op::kName));
  constexpr Scope scope = ScopeOf<Op>::value;
  CK_RV rv;
  {
    SyncClaim claim(GetEngine(env), scope, KeyOf(*library, info, scope));
    rv = RunOp(*library, op);
  }
  if (rv != ck::CKR_OK) throw MakeCkError(env, rv, Op::kName);
  return op.Result(env);
}

// The part of a job that runs the operation: shared by OpJob (a promise) and the pool's
// ticketed signatures (SinkSignJob, ops/sign_ops.cc).
template <typename Op>
class OpJobBase : public Job {
 public:
  OpJobBase(const SessionKey& key, Op&& op, std::shared_ptr<Library> library, std::shared_ptr<CallGate> gate)
      : Job(ScopeOf<Op>::value, key),
        op_(std::move(op)),
        library_(std::move(library)),
        gate_(std::move(gate)),
        epoch_(gate_->epoch()) {}

  void Execute() override {
    if (!gate_->Enter(epoch_)) {
      refused_ = true;  // C_Finalize or close() ran after this job was submitted
      return;
    }
    rv_ = RunOp(*library_, op_);
    returnedAfterAbandon_ = gate_->Leave(epoch_);
  }

 protected:
  // JS thread: the error the call ended with, or an empty value when it succeeded.
  Napi::Value Failure(Napi::Env env) const {
    if (refused_) {
      return MakeCkError(env, ck::CKR_CRYPTOKI_NOT_INITIALIZED, Op::kName,
                         "the module was finalized before this call could run")
          .Value();
    }
    if (rv_ != ck::CKR_OK) return MakeCkError(env, rv_, Op::kName).Value();
    return Napi::Value();
  }

  Op op_;

 private:
  std::shared_ptr<Library> library_;  // keeps the module loaded while this job exists
  std::shared_ptr<CallGate> gate_;
  CallGate::Epoch epoch_;  // the initialisation this job's handles belong to
  CK_RV rv_ = ck::CKR_OK;
  bool refused_ = false;
};

template <typename Op>
class OpJob final : public OpJobBase<Op> {
 public:
  OpJob(Napi::Env env, const SessionKey& key, Op&& op, std::shared_ptr<Library> library,
        std::shared_ptr<CallGate> gate)
      : OpJobBase<Op>(key, std::move(op), std::move(library), std::move(gate)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Settle(Napi::Env env, CompletionSink&) override {
    Napi::Value failure = this->Failure(env);
    if (!failure.IsEmpty()) {
      deferred_.Reject(failure);
      return;
    }
    try {
      deferred_.Resolve(this->op_.Result(env));
    } catch (const Napi::Error& error) {
      deferred_.Reject(error.Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
};

template <typename Op>
Napi::Value AsyncEntry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ModuleObject& module = ModuleObject::FromThis(info, Op::kName);
  const std::shared_ptr<Library>& library = module.RequireReady(env, Op::kName);
  static_assert(ScopeOf<Op>::value != Scope::AllSessions, "calls on every session are synchronous only");
  Op op;
  op.Parse(Args(info, Op::kName));
  SessionKey key = KeyOf(*library, info, ScopeOf<Op>::value);
  auto job = std::make_unique<OpJob<Op>>(env, key, std::move(op), library, module.gate());
  Napi::Promise promise = job->Promise();
  GetEngine(env).Submit(env, std::move(job));
  return promise;
}

template <typename Op>
void AddSync(MethodTable& table) {
  table.emplace_back(Op::kName, &SyncEntry<Op>);
}

// The standard name runs synchronously; NameAsync returns a promise and runs on the engine.
template <typename Op>
void AddSyncAndAsync(MethodTable& table) {
  table.emplace_back(Op::kName, &SyncEntry<Op>);
  table.emplace_back(std::string(Op::kName) + "Async", &AsyncEntry<Op>);
}

template <typename Op>
void AddAsyncAs(MethodTable& table, const char* name) {
  table.emplace_back(name, &AsyncEntry<Op>);
}

// Calls `call(buffer, &length)` with a first guess at the output size; when the module answers
// CKR_BUFFER_TOO_SMALL it is asked again with the length it announced (a few times at most, in
// case the module keeps changing its answer). On success `out` has the exact output length.
template <typename Call>
CK_RV CallWithOutput(std::vector<CK_BYTE>& out, size_t guess, Call call) {
  constexpr size_t kMaxOutput = 256u * 1024u * 1024u;
  out.resize(guess == 0 ? 1 : guess);
  for (int attempt = 0; attempt < 4; ++attempt) {
    CK_ULONG length = static_cast<CK_ULONG>(out.size());
    CK_RV rv = call(out.data(), &length);
    if (rv == ck::CKR_OK) {
      if (length > out.size()) return ck::CKR_GENERAL_ERROR;  // claims more than our buffer holds
      out.resize(length);
      return rv;
    }
    if (rv != ck::CKR_BUFFER_TOO_SMALL) return rv;
    // A module that answers "too small" without asking for more is given twice the room.
    size_t next = length > out.size() ? static_cast<size_t>(length) : out.size() * 2;
    if (next > kMaxOutput) return ck::CKR_DEVICE_MEMORY;
    out.resize(next);
  }
  return ck::CKR_BUFFER_TOO_SMALL;
}

// Input bytes for a PKCS#11 call. Some modules (SoftHSM2 among them) answer a NULL pointer
// with CKR_ARGUMENTS_BAD even when the length is 0, and then leave the operation active; an
// empty input therefore points at a real (unused) byte.
inline CK_BYTE* InputBytes(std::vector<CK_BYTE>& bytes) {
  static CK_BYTE empty = 0;
  return bytes.empty() ? &empty : bytes.data();
}

// Output bytes as a Buffer.
Napi::Buffer<CK_BYTE> BytesToJs(Napi::Env env, std::vector<CK_BYTE>& bytes);

}  // namespace p11
