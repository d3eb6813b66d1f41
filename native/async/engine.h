// The addon's own worker threads for blocking PKCS#11 calls. libuv's shared pool (4 threads by
// default) also serves fs and dns, and a slow network HSM would starve it, so signing runs here.
//
// Hand-over: the JS thread appends a job to a queue and wakes one idle thread. Finished jobs go
// to a completion list; the first one in an empty list schedules ONE thread-safe-function call,
// which settles every job finished by the time it runs. Under load one wake-up of the JS thread
// settles many promises.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "job.h"

namespace p11 {

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  static std::shared_ptr<Engine> Create(Napi::Env env, unsigned maxThreads);
  ~Engine();

  // JS thread only. Returns the job's promise.
  Napi::Promise Submit(Napi::Env env, std::unique_ptr<Job> job);
  // Environment teardown: stop the threads; unfinished jobs are abandoned, never settled.
  void Shutdown();

  unsigned threadCount() const { return maxThreads_; }
  size_t pending() const { return pending_; }

 private:
  Engine() = default;
  void WorkerLoop();
  void Complete(std::unique_ptr<Job> job);
  static void SettleBatch(Napi::Env env, Napi::Function, Engine* engine, std::nullptr_t*);
  void SettleAll(Napi::Env env);

  using Completion = Napi::TypedThreadSafeFunction<Engine, std::nullptr_t, SettleBatch>;

  unsigned maxThreads_ = 0;
  Completion completion_;

  std::mutex queueMutex_;
  std::condition_variable queueReady_;
  std::deque<std::unique_ptr<Job>> queue_;
  std::vector<std::thread> threads_;
  unsigned idleThreads_ = 0;
  bool stopping_ = false;

  std::mutex doneMutex_;
  std::vector<std::unique_ptr<Job>> done_;
  bool wakeScheduled_ = false;
  bool closed_ = false;  // the thread-safe function is released: never call it again

  size_t pending_ = 0;  // JS thread only: submitted and not yet settled
};

}  // namespace p11
