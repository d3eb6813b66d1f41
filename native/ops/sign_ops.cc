// Signing: the standard C_Sign* functions, sign-with-recovery, and the one-hop sign() that runs
// C_SignInit and C_Sign in a single engine job, so the JS thread does no PKCS#11 work at all;
// signTo() is the same job answering through the completion sink (the signing pool's path), and
// signToBatch() hands over many of those at once.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "call_shapes.h"
#include "method_tables.h"

namespace p11 {

namespace {

// Large enough for every common signature (RSA-8192 is 1024 bytes), so one C_Sign call
// normally suffices; a larger one is fetched after CKR_BUFFER_TOO_SMALL.
constexpr size_t kSignatureGuess = 1024;

struct SignInitOp : KeyedInitCall<SignInitOp> {
  static constexpr const char* kName = "C_SignInit";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_SignInit;
};

struct SignOp : BytesInOutCall<SignOp> {
  static constexpr const char* kName = "C_Sign";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_Sign;
  static constexpr const char* kInput = "data";
  static size_t OutputGuess(size_t) { return kSignatureGuess; }
};

struct SignUpdateOp : BytesInCall<SignUpdateOp> {
  static constexpr const char* kName = "C_SignUpdate";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_SignUpdate;
  static constexpr const char* kInput = "part";
};

struct SignFinalOp : BytesOutCall<SignFinalOp> {
  static constexpr const char* kName = "C_SignFinal";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_SignFinal;
  static size_t OutputGuess(size_t) { return kSignatureGuess; }
};

struct SignRecoverInitOp : KeyedInitCall<SignRecoverInitOp> {
  static constexpr const char* kName = "C_SignRecoverInit";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_SignRecoverInit;
};

struct SignRecoverOp : BytesInOutCall<SignRecoverOp> {
  static constexpr const char* kName = "C_SignRecover";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_SignRecover;
  static constexpr const char* kInput = "data";
  static size_t OutputGuess(size_t) { return kSignatureGuess; }
};

// sign(session, mechanism, key, data): C_SignInit + C_Sign on one engine thread.
//
// The signature is written into the job itself when it fits (every ECDSA and EdDSA signature,
// RSA up to 4096 bits): the worker then allocates nothing for it, and the JS thread, which
// frees the job, frees nothing from the worker's malloc arena (that free takes the arena's lock,
// which the worker may hold). A larger one goes through the length protocol.
constexpr size_t kInlineSignature = 512;

struct OneShotSignOp {
  static constexpr const char* kName = "sign";
  SignInitOp init;
  std::vector<CK_BYTE> data;
  std::array<CK_BYTE, kInlineSignature> inlineSignature;
  CK_ULONG inlineLength = 0;
  bool overflowed = false;
  std::vector<CK_BYTE> signature;  // when it did not fit inline
  void Parse(const Args& args) {
    init.Parse(args);
    args.Bytes(3, "data", data);
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    CK_RV rv = init.Run(f);
    if (rv != ck::CKR_OK) return rv;
    CK_ULONG length = kInlineSignature;
    rv = f->C_Sign(init.session, InputBytes(data), data.size(), inlineSignature.data(), &length);
    if (rv == ck::CKR_OK) {
      if (length > kInlineSignature) return ck::CKR_GENERAL_ERROR;  // claims more than the buffer holds
      inlineLength = length;
      return rv;
    }
    if (rv != ck::CKR_BUFFER_TOO_SMALL) return rv;
    // "Too small" leaves the operation active (the length convention of PKCS#11 v2.40, 5.2).
    overflowed = true;
    return CallWithOutput(signature, std::max<size_t>(length, kSignatureGuess), [&](CK_BYTE* out, CK_ULONG* size) {
      return f->C_Sign(init.session, InputBytes(data), data.size(), out, size);
    });
  }
  Napi::Value Result(Napi::Env env) {
    if (overflowed) return BytesToJs(env, signature);
    return Napi::Buffer<CK_BYTE>::Copy(env, inlineSignature.data(), inlineLength);
  }
  const CK_BYTE* SignatureBytes() const { return overflowed ? signature.data() : inlineSignature.data(); }
  size_t SignatureLength() const { return overflowed ? signature.size() : inlineLength; }
};

// sign() whose outcome goes to the completion sink under the caller's ticket, not to a promise.
class SinkSignJob final : public OpJobBase<OneShotSignOp> {
 public:
  SinkSignJob(const SessionKey& key, OneShotSignOp&& op, std::shared_ptr<Library> library,
              std::shared_ptr<CallGate> gate, uint32_t ticket)
      : OpJobBase(key, std::move(op), std::move(library), std::move(gate)), ticket_(ticket) {}

  // Its failure's constructor runs JavaScript, but only AddValue follows, which writes nothing
  // to the slab before its own call into JavaScript.
  bool SettlesThroughSink() const override { return true; }

  void Settle(Napi::Env env, CompletionSink& sink) override {
    Napi::Value failure = Failure(env);
    if (!failure.IsEmpty()) {
      sink.AddValue(env, ticket_, failure, true);
      return;
    }
    try {
      sink.AddBytes(env, ticket_, op_.SignatureBytes(), op_.SignatureLength());
    } catch (const Napi::Error& error) {
      sink.AddValue(env, ticket_, error.Value(), true);  // could not make a Buffer: still an answer
    }
  }

 private:
  uint32_t ticket_;
};

// signTo(session, mechanism, key, data, ticket): returns nothing; the signature or the error
// reaches the sink registered with setSignSink (native/addon.cc), under `ticket`.
Napi::Value SignToEntry(const Napi::CallbackInfo& info) {
  constexpr const char* kName = "signTo";
  Napi::Env env = info.Env();
  ModuleObject& module = ModuleObject::FromThis(info, kName);
  const std::shared_ptr<Library>& library = module.RequireReady(env, kName);
  Args args(info, kName);
  OneShotSignOp op;
  op.Parse(args);
  CK_ULONG ticket = args.Ulong(4, "ticket");
  if (ticket > UINT32_MAX) args.Fail("ticket", "an integer from 0 to 4294967295");
  Engine& engine = GetEngine(env);
  if (!engine.sink().registered()) throw Napi::Error::New(env, "signTo: no completion sink is registered (setSignSink)");
  SessionKey key = KeyOf(*library, info, Scope::Session);
  engine.Submit(env, std::make_unique<SinkSignJob>(key, std::move(op), library, module.gate(), static_cast<uint32_t>(ticket)));
  return env.Undefined();
}

// signToBatch(count, fields, data): `count` signTo() calls in one (lib/pool/sign-batch.ts).
// `fields`, a Float64Array, holds kBatchFields numbers a request: session, mechanism type (one
// without a parameter), key, ticket, and where the data to sign lies in `data` (a Uint8Array):
// offset and length. Each crossing into the addon cost the JS thread more than the job it
// submits (the call, the type-tag check of `this`, parsing five arguments, a lock of the queue
// the workers also take); a batch pays those once. Everything is checked before anything is
// submitted: a bad field is a TypeError naming it, and then no request of the batch was.
constexpr size_t kBatchFields = 6;

Napi::Value SignToBatchEntry(const Napi::CallbackInfo& info) {
  constexpr const char* kName = "signToBatch";
  Napi::Env env = info.Env();
  ModuleObject& module = ModuleObject::FromThis(info, kName);
  Args args(info, kName);
  CK_ULONG count = args.Ulong(0, "count");
  Napi::Value fieldsValue = info[1];
  if (!fieldsValue.IsTypedArray() || fieldsValue.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    args.Fail("fields", "a Float64Array");
  }
  Napi::Value dataValue = info[2];
  if (!dataValue.IsTypedArray() || dataValue.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    args.Fail("data", "a Uint8Array");
  }
  Napi::Float64Array fields = fieldsValue.As<Napi::Float64Array>();
  Napi::Uint8Array data = dataValue.As<Napi::Uint8Array>();
  if (data.ArrayBuffer().IsDetached()) args.Fail("data", "a Uint8Array that is not detached");
  if (count > fields.ElementLength() / kBatchFields) {
    args.Fail("count", "at most the number of requests in 'fields' (" + std::to_string(kBatchFields) + " numbers each)");
  }
  const std::shared_ptr<Library>& library = module.RequireReady(env, kName);
  Engine& engine = GetEngine(env);
  if (!engine.sink().registered()) {
    throw Napi::Error::New(env, "signToBatch: no completion sink is registered (setSignSink)");
  }
  // A handle or mechanism type must be a whole number that a double holds exactly and a CK_ULONG
  // holds at all (32 bits on Windows).
  const double maxUlong = std::min(9007199254740991.0, static_cast<double>(std::numeric_limits<CK_ULONG>::max()));
  const double* field = count > 0 ? fields.Data() : nullptr;
  const uint8_t* bytes = data.Data();
  const size_t dataBytes = data.ByteLength();
  std::vector<std::unique_ptr<Job>> jobs;
  jobs.reserve(count);
  for (CK_ULONG i = 0; i < count; ++i, field += kBatchFields) {
    auto whole = [&](size_t k, double max, const char* expected) -> CK_ULONG {
      double value = field[k];
      if (!(value >= 0 && value <= max) || value != std::floor(value)) {
        std::string name = "fields[" + std::to_string(i * kBatchFields + k) + "]";
        args.Fail(name.c_str(), expected);
      }
      return static_cast<CK_ULONG>(value);
    };
    OneShotSignOp op;
    op.init.session = whole(0, maxUlong, "a session handle (a non-negative integer)");
    op.init.mechanism.SetType(whole(1, maxUlong, "a mechanism type (a non-negative integer)"));
    op.init.key = whole(2, maxUlong, "a key handle (a non-negative integer)");
    auto ticket = static_cast<uint32_t>(whole(3, UINT32_MAX, "a ticket, an integer from 0 to 4294967295"));
    CK_ULONG offset = whole(4, static_cast<double>(dataBytes), "an offset within 'data'");
    CK_ULONG length = whole(5, static_cast<double>(std::min(dataBytes - offset, kMaxInputBytes)),
                            "a length that stays within 'data'");
    op.data.assign(bytes + offset, bytes + offset + length);
    SessionKey key{library.get(), library->initialization(), op.init.session};
    jobs.push_back(std::make_unique<SinkSignJob>(key, std::move(op), library, module.gate(), ticket));
  }
  engine.SubmitAll(env, jobs);
  return env.Undefined();
}

}  // namespace

void AddSignMethods(MethodTable& table) {
  AddSyncAndAsync<SignInitOp>(table);
  AddSyncAndAsync<SignOp>(table);
  AddSyncAndAsync<SignUpdateOp>(table);
  AddSyncAndAsync<SignFinalOp>(table);
  AddSyncAndAsync<SignRecoverInitOp>(table);
  AddSyncAndAsync<SignRecoverOp>(table);
  AddAsyncAs<OneShotSignOp>(table, "sign");
  table.emplace_back("signSync", &SyncEntry<OneShotSignOp>);
  table.emplace_back("signTo", &SignToEntry);
  table.emplace_back("signToBatch", &SignToBatchEntry);
}

}  // namespace p11
