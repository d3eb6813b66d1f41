// The mutex functions the addon hands to a module's C_Initialize (CreateMutex … UnlockMutex in
// CK_C_INITIALIZE_ARGS). With CKF_OS_LOCKING_OK and these, the standard lets the module use
// either its own OS locks or ours; SoftHSM2 uses ours for every lock it takes.
//
// Why: a module's locks are held for a few microseconds at a time (SoftHSM2 takes one around
// each of its secure-memory allocations), and a plain OS mutex puts a thread that finds one
// taken to sleep at once. Waking it costs tens of µs of CPU on a VM, more than the wait. Ours
// spins a bounded while first, as glibc's adaptive mutex does, and then sleeps as before. Raw C
// signing ECDSA P-256 through SoftHSM2 (2 vCPUs, 2 s windows, alternating): 8-55% more signs a
// second with 2, 4 and 64 threads, with a third to a tenth of the sleeps (ARCHITECTURE.md).
//
// Header-only: the benchmark's raw C loop (bench/raw-sign.cc) initialises the module with these
// same functions, so that the ratio against it measures the binding, not the choice of locks.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <new>
#include <type_traits>

#include "../async/cpu_relax.h"
#include "../generated/constants.h"

namespace p11 {

// Layout matters: SoftHSM2's mutex factory is a static that C++ exit handlers destroy, and when a
// process exits with the module still initialised, the module's own objects destroyed after it
// fall back to its OS functions: pthread_mutex_destroy() on our handle, then free(). So the
// handle is malloc'd memory that starts with the mutex (a pthread_mutex_t under libstdc++/libc++).
class SpinningMutex {
 public:
  void Lock() {
    for (unsigned i = 0; i < kSpins; ++i) {
      // Read before trying: waiting on a shared line costs the holder nothing, a failed
      // try_lock writes to it.
      if (!locked_.load(std::memory_order_relaxed) && mutex_.try_lock()) {
        locked_.store(true, std::memory_order_relaxed);
        return;
      }
      CpuRelax();
    }
    mutex_.lock();
    locked_.store(true, std::memory_order_relaxed);
  }

  // False when the mutex is not locked (CKR_MUTEX_NOT_LOCKED): unlocking an unlocked
  // std::mutex would be undefined behaviour.
  bool Unlock() {
    if (!locked_.load(std::memory_order_relaxed)) return false;
    locked_.store(false, std::memory_order_relaxed);
    mutex_.unlock();
    return true;
  }

 private:
  // A few µs of waiting, depending on the CPU's PAUSE (4 µs on the AMD EPYC VM of 2026-12-07,
  // 19.5 ns a PAUSE; more where it takes ~140 cycles, Intel since Skylake): longer than most of
  // the module's critical sections, short enough that a thread whose holder was preempted soon
  // sleeps instead. 1000 (20 µs there) turned nearly every sleep on SoftHSM2's locks into a spin
  // and saved no CPU a signature (ARCHITECTURE.md, stop 25).
  static constexpr unsigned kSpins = 200;

  friend void CheckSpinningMutexLayout();
  std::mutex mutex_;  // first: see above
  std::atomic<bool> locked_{false};
};

inline void CheckSpinningMutexLayout() {
  static_assert(std::is_standard_layout<SpinningMutex>::value && offsetof(SpinningMutex, mutex_) == 0,
                "a module that treats the handle as its own OS mutex must find the mutex at its start");
}

// Mutexes created through CreateSpinningMutex and not yet destroyed, process-wide.
inline std::atomic<long> spinningMutexesLive{0};

inline CK_RV PKCS11_CALL CreateSpinningMutex(CK_VOID_PTR* out) {
  if (out == nullptr) return ck::CKR_ARGUMENTS_BAD;
  // malloc, not new: the module may free() it (see SpinningMutex).
  void* memory = std::malloc(sizeof(SpinningMutex));
  if (memory == nullptr) return ck::CKR_HOST_MEMORY;
  *out = new (memory) SpinningMutex();
  spinningMutexesLive.fetch_add(1, std::memory_order_relaxed);
  return ck::CKR_OK;
}

inline CK_RV PKCS11_CALL DestroySpinningMutex(CK_VOID_PTR mutex) {
  if (mutex == nullptr) return ck::CKR_MUTEX_BAD;
  static_cast<SpinningMutex*>(mutex)->~SpinningMutex();
  std::free(mutex);
  spinningMutexesLive.fetch_sub(1, std::memory_order_relaxed);
  return ck::CKR_OK;
}

inline CK_RV PKCS11_CALL LockSpinningMutex(CK_VOID_PTR mutex) {
  if (mutex == nullptr) return ck::CKR_MUTEX_BAD;
  static_cast<SpinningMutex*>(mutex)->Lock();
  return ck::CKR_OK;
}

inline CK_RV PKCS11_CALL UnlockSpinningMutex(CK_VOID_PTR mutex) {
  if (mutex == nullptr) return ck::CKR_MUTEX_BAD;
  return static_cast<SpinningMutex*>(mutex)->Unlock() ? ck::CKR_OK : ck::CKR_MUTEX_NOT_LOCKED;
}

// Fills in the four functions of `args`.
inline void UseSpinningMutexes(CK_C_INITIALIZE_ARGS& args) {
  args.CreateMutex = CreateSpinningMutex;
  args.DestroyMutex = DestroySpinningMutex;
  args.LockMutex = LockSpinningMutex;
  args.UnlockMutex = UnlockSpinningMutex;
}

}  // namespace p11
