// Counts the async calls of one PKCS11 object that are inside the module, so C_Finalize and
// close() can wait for them instead of pulling the module out from under a worker thread.
// Jobs still queued when the gate closes never enter the module; they reject instead.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace p11 {

class CallGate {
 public:
  bool Enter() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return false;
    ++inside_;
    return true;
  }
  void Leave() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--inside_ == 0) drained_.notify_all();
  }
  // Closes the gate and waits until every call inside has returned.
  void CloseAndDrain() {
    std::unique_lock<std::mutex> lock(mutex_);
    closed_ = true;
    drained_.wait(lock, [this] { return inside_ == 0; });
  }
  // The same, giving up after `timeout`; returns false when calls are still inside.
  bool CloseAndDrainFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    closed_ = true;
    return drained_.wait_for(lock, timeout, [this] { return inside_ == 0; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = false;
  }

 private:
  std::mutex mutex_;
  std::condition_variable drained_;
  int inside_ = 0;
  bool closed_ = true;  // nothing may enter before C_Initialize
};

}  // namespace p11
