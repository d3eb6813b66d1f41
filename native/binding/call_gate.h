// Counts the async calls of one PKCS11 object that are inside the module, so C_Finalize and
// close() can wait for them instead of pulling the module out from under a worker thread.
//
// Epochs: every C_Initialize starts a new one, and a job remembers the epoch it was submitted
// in. A job that reaches a worker after the module was finalised (and maybe initialised again)
// never enters it: its session and object handles belong to the old initialisation.
//
// A call that never returns (a network module wedged on a dead connection) would make every
// later drain wait forever. C_Finalize({ abandonCalls: true }) gives up on the calls inside:
// they move to a separate count, and leave from there whenever they return.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace p11 {

class CallGate {
 public:
  using Epoch = unsigned long long;

  // The epoch a job submitted now belongs to.
  Epoch epoch() {
    std::lock_guard<std::mutex> lock(mutex_);
    return epoch_;
  }
  // False when the gate is closed or the module was re-initialised since `submitted`.
  bool Enter(Epoch submitted) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_ || submitted != epoch_) return false;
    ++inside_;
    return true;
  }
  // Returns true when the call had been given up on (the epoch moved on while it was inside).
  bool Leave(Epoch submitted) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (submitted != epoch_) {
      --abandoned_;
      return true;
    }
    if (--inside_ == 0) drained_.notify_all();
    return false;
  }
  // Stops counting the calls inside (they are given up on); returns how many there were.
  unsigned Abandon() {
    std::lock_guard<std::mutex> lock(mutex_);
    unsigned count = inside_;
    abandoned_ += inside_;
    inside_ = 0;
    ++epoch_;
    return count;
  }
  unsigned inside() {
    std::lock_guard<std::mutex> lock(mutex_);
    return inside_;
  }
  unsigned abandoned() {
    std::lock_guard<std::mutex> lock(mutex_);
    return abandoned_;
  }
  // Closes the gate and waits, at most `timeout`, until every call inside has returned; false
  // when calls are still inside.
  bool CloseAndDrainFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    closed_ = true;
    return drained_.wait_for(lock, timeout, [this] { return inside_ == 0; });
  }
  // A fresh initialisation: jobs submitted before it will not enter.
  void OpenNewEpoch() {
    std::lock_guard<std::mutex> lock(mutex_);
    // Calls counted inside now can only be a forked child's copy of its parent's: their threads
    // did not survive the fork, so they will never leave.
    abandoned_ += inside_;
    inside_ = 0;
    ++epoch_;
    closed_ = false;
  }
  // The module stayed initialised after all (C_Finalize failed or was refused).
  void Reopen() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = false;
  }

 private:
  std::mutex mutex_;
  std::condition_variable drained_;
  unsigned inside_ = 0;
  unsigned abandoned_ = 0;  // given up on, not yet returned
  Epoch epoch_ = 0;
  bool closed_ = true;  // nothing may enter before C_Initialize
};

}  // namespace p11
