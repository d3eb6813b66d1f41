#include "completion_sink.h"

#include <cstring>

namespace p11 {

void CompletionSink::Register(Napi::Env env, Napi::Function onBatch, Napi::Function onOne, size_t slabBytes) {
  Flush(env);  // records written for the previous registration go to it
  onBatch_ = Napi::Persistent(onBatch);
  onOne_ = Napi::Persistent(onOne);
  slabBytes_ = slabBytes;
  slab_.Reset();
  data_ = nullptr;
  slabChecked_ = false;
}

bool CompletionSink::EnsureSlab(Napi::Env env) {
  // Only JavaScript can detach the slab, and it runs only in our own calls (Flush, AddValue) and
  // in other jobs' settlements (JavaScriptMayRun): between those, consecutive signatures of a
  // batch skip the two N-API calls of the check. A detached slab is replaced; onBatch receives
  // the slab it should read.
  if (slabChecked_) return true;
  if (!slab_.IsEmpty() && !slab_.Value().IsDetached()) {
    slabChecked_ = true;
    return true;
  }
  if (used_ != 0) return false;  // the records written so far went with the old slab
  Napi::ArrayBuffer slab = Napi::ArrayBuffer::New(env, slabBytes_);
  slab_ = Napi::Persistent(slab);
  data_ = static_cast<uint8_t*>(slab.Data());
  slabChecked_ = true;
  return true;
}

void CompletionSink::AddBytes(Napi::Env env, uint32_t ticket, const uint8_t* bytes, size_t length) {
  size_t record = kRecordHeader + ((length + 3) & ~size_t{3});  // records stay 4-byte aligned
  if (!delivering_ && record <= slabBytes_) {
    if (used_ + record > slabBytes_) Flush(env);
    if (EnsureSlab(env)) {
      uint32_t header[2] = {ticket, static_cast<uint32_t>(length)};
      std::memcpy(data_ + used_, header, sizeof header);
      if (length > 0) std::memcpy(data_ + used_ + kRecordHeader, bytes, length);
      used_ += record;
      ++count_;
      return;
    }
    // The slab was detached with records in it: those are lost to JS, but this one is not.
    used_ = 0;
    count_ = 0;
  }
  // While onBatch reads the slab (a settlement it caused), or too large for the slab.
  AddValue(env, ticket, Napi::Buffer<uint8_t>::Copy(env, bytes, length), false);
}

void CompletionSink::AddValue(Napi::Env env, uint32_t ticket, Napi::Value value, bool failed) {
  Flush(env);
  Call(env, onOne_, {Napi::Number::New(env, ticket), value, Napi::Boolean::New(env, failed)});
}

void CompletionSink::Flush(Napi::Env env) {
  if (count_ == 0 || delivering_) return;
  Napi::HandleScope scope(env);
  Napi::Value slab = slab_.Value();
  Napi::Value count = Napi::Number::New(env, count_);
  delivering_ = true;
  Call(env, onBatch_, {slab, count});
  delivering_ = false;
  used_ = 0;
  count_ = 0;
}

void CompletionSink::Release() {
  onBatch_.Reset();
  onOne_.Reset();
  slab_.Reset();
  data_ = nullptr;
  used_ = 0;
  count_ = 0;
  slabChecked_ = false;
}

void CompletionSink::Call(Napi::Env env, const Napi::FunctionReference& function,
                          std::initializer_list<napi_value> args) {
  // The pool's handlers catch their own errors; one that escapes anyway is reported the way
  // Node reports a throwing callback (process 'uncaughtException'), not swallowed.
  slabChecked_ = false;  // the call below runs JavaScript
  napi_value result;
  napi_status status = napi_call_function(env, env.Undefined(), function.Value(), args.size(), args.begin(), &result);
  if (status == napi_pending_exception) {
    napi_value error;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
  }
}

}  // namespace p11
