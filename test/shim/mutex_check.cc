// initialize.exercisemutexes: before forwarding C_Initialize, the shim uses the mutex
// functions its caller handed over, as a module would, and reports what they answered. This is
// how the tests reach the binding's CreateMutex … UnlockMutex through a real module (SoftHSM2
// uses them too, but never shows their answers or misuses them on purpose).
#include <pthread.h>

#include <string>

#include "fault_shim.h"

namespace shim {
namespace {

constexpr unsigned long kIncrements = 200000;

struct Counter {
  const CK_C_INITIALIZE_ARGS* args;
  CK_VOID_PTR mutex;
  unsigned long value;
  CK_RV firstError;
};

// Each thread adds to the shared counter under the caller's mutex; a lock that lets two threads
// in at once loses increments.
void* Increment(void* raw) {
  auto* counter = static_cast<Counter*>(raw);
  for (unsigned long i = 0; i < kIncrements; ++i) {
    CK_RV rv = counter->args->LockMutex(counter->mutex);
    if (rv != ck::CKR_OK) {
      __atomic_store_n(&counter->firstError, rv, __ATOMIC_RELAXED);
      return nullptr;
    }
    // Read and write apart, so that an unprotected pair of threads would interleave them.
    unsigned long v = __atomic_load_n(&counter->value, __ATOMIC_RELAXED);
    __atomic_store_n(&counter->value, v + 1, __ATOMIC_RELAXED);
    rv = counter->args->UnlockMutex(counter->mutex);
    if (rv != ck::CKR_OK) {
      __atomic_store_n(&counter->firstError, rv, __ATOMIC_RELAXED);
      return nullptr;
    }
  }
  return nullptr;
}

void Field(std::string& json, const char* name, unsigned long value) {
  if (json.size() > 1) json += ',';
  json += '"';
  json += name;
  json += "\":";
  json += std::to_string(value);
}

}  // namespace

std::string CheckMutexes(const CK_C_INITIALIZE_ARGS& args) {
  std::string json = "{";
  Field(json, "createNull", args.CreateMutex(nullptr));
  Field(json, "lockNull", args.LockMutex(nullptr));
  Field(json, "unlockNull", args.UnlockMutex(nullptr));
  Field(json, "destroyNull", args.DestroyMutex(nullptr));

  CK_VOID_PTR mutex = nullptr;
  CK_RV rv = args.CreateMutex(&mutex);
  Field(json, "create", rv);
  if (rv != ck::CKR_OK) return json + "}";
  Field(json, "unlockUnlocked", args.UnlockMutex(mutex));
  Field(json, "lock", args.LockMutex(mutex));
  Field(json, "unlock", args.UnlockMutex(mutex));
  Field(json, "unlockAgain", args.UnlockMutex(mutex));

  Counter counter{&args, mutex, 0, ck::CKR_OK};
  pthread_t threads[2];
  int started = 0;
  for (pthread_t& thread : threads) {
    if (pthread_create(&thread, nullptr, Increment, &counter) == 0) ++started;
  }
  for (int i = 0; i < started; ++i) pthread_join(threads[i], nullptr);
  Field(json, "threads", static_cast<unsigned long>(started));
  Field(json, "counter", counter.value);
  Field(json, "counterExpected", started * kIncrements);
  Field(json, "counterError", counter.firstError);
  Field(json, "destroy", args.DestroyMutex(mutex));
  return json + "}";
}

}  // namespace shim
