// Answers for the signing pool, handed to JavaScript in bulk instead of one promise each.
//
// A promise per signature costs the JS thread a deferred (created, resolved, its reference
// deleted), an external-memory Buffer for the signature, and the pool's then() hop: about
// 1.3 µs of the JS thread's 5-6 µs a signature at the pool's peak (ARCHITECTURE.md). Jobs
// submitted with a ticket (signTo) instead write "ticket, length, bytes" records into one
// ArrayBuffer, the slab, and the registered onBatch(slab, count) copies them out, once per
// batch; the pool copies each signature into a Buffer of its own (V8 keeps one of 64 bytes or
// less on its heap). Failures, and a signature too large for the slab, go one at a time
// through onOne(ticket, value, failed).
//
// JS thread only. The slab is private to lib/pool/sign-sink.ts; it is checked for detachment all
// the same before a write that follows any JavaScript, since a detached ArrayBuffer's memory is
// gone.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace p11 {

class CompletionSink {
 public:
  // Replaces any earlier registration (one per environment: lib/pool/sign-sink.ts).
  void Register(Napi::Env env, Napi::Function onBatch, Napi::Function onOne, size_t slabBytes);
  bool registered() const { return !onBatch_.IsEmpty(); }

  // A signature for `ticket`: appended to the slab (delivered by Flush, or earlier when the slab
  // is full), or delivered at once when it cannot go there.
  void AddBytes(Napi::Env env, uint32_t ticket, const uint8_t* bytes, size_t length);
  // An outcome that is a JS value (an error, when `failed`): delivered at once, after the
  // records already in the slab, so each ticket's answers keep their order.
  void AddValue(Napi::Env env, uint32_t ticket, Napi::Value value, bool failed);
  // Hands the records in the slab to onBatch. The engine calls it after each batch.
  void Flush(Napi::Env env);
  // Another job is about to settle, which may run JavaScript (an error's constructor): the slab
  // is checked for detachment again before the next write.
  void JavaScriptMayRun() { slabChecked_ = false; }
  // Environment teardown (JS thread): drops the references now. The engine may be destroyed
  // later on a thread that was stuck in the module, where deleting a reference would touch an
  // environment that is gone.
  void Release();

  static constexpr size_t kRecordHeader = 8;  // ticket and length, two native-endian uint32

 private:
  bool EnsureSlab(Napi::Env env);
  void Call(Napi::Env env, const Napi::FunctionReference& function, std::initializer_list<napi_value> args);

  Napi::FunctionReference onBatch_;
  Napi::FunctionReference onOne_;
  Napi::Reference<Napi::ArrayBuffer> slab_;
  size_t slabBytes_ = 0;
  uint8_t* data_ = nullptr;  // the slab's memory, valid while it is not detached
  size_t used_ = 0;          // bytes of records written since the last Flush
  uint32_t count_ = 0;       // records written since the last Flush
  bool delivering_ = false;  // onBatch is reading the slab: nothing may write to it
  bool slabChecked_ = false; // no JavaScript ran since the slab was found attached
};

}  // namespace p11
