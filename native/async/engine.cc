#include "engine.h"

namespace p11 {

std::shared_ptr<Engine> Engine::Create(Napi::Env env, unsigned maxThreads) {
  std::shared_ptr<Engine> engine(new Engine());
  engine->maxThreads_ = maxThreads == 0 ? 1 : maxThreads;
  engine->completion_ = Completion::New(env, "pkcs11-napi completions", 0, 1, engine.get());
  // Only jobs in flight keep the process alive; an idle engine must not.
  engine->completion_.Unref(env);
  return engine;
}

Engine::~Engine() { Shutdown(); }

Napi::Promise Engine::Submit(Napi::Env env, std::unique_ptr<Job> job) {
  Napi::Promise promise = job->Promise();
  if (pending_++ == 0) completion_.Ref(env);
  bool spawn = false;
  {
    std::lock_guard<std::mutex> lock(queueMutex_);
    queue_.push_back(std::move(job));
    // Threads start lazily: a new one only when every existing thread is busy.
    spawn = idleThreads_ == 0 && threads_.size() < maxThreads_;
    if (spawn) threads_.emplace_back([self = shared_from_this()] { self->WorkerLoop(); });
  }
  if (!spawn) queueReady_.notify_one();
  return promise;
}

void Engine::WorkerLoop() {
  std::unique_lock<std::mutex> lock(queueMutex_);
  for (;;) {
    ++idleThreads_;
    queueReady_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    --idleThreads_;
    if (stopping_) return;
    std::unique_ptr<Job> job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    job->Execute();
    Complete(std::move(job));
    lock.lock();
  }
}

void Engine::Complete(std::unique_ptr<Job> job) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(doneMutex_);
    if (closed_) {
      job->Abandon();
      return;
    }
    done_.push_back(std::move(job));
    wake = !wakeScheduled_;
    wakeScheduled_ = true;
  }
  if (wake) completion_.NonBlockingCall(nullptr);
}

void Engine::SettleBatch(Napi::Env env, Napi::Function, Engine* engine, std::nullptr_t*) {
  if (env != nullptr) engine->SettleAll(env);
}

void Engine::SettleAll(Napi::Env env) {
  std::vector<std::unique_ptr<Job>> batch;
  {
    std::lock_guard<std::mutex> lock(doneMutex_);
    batch.swap(done_);
    wakeScheduled_ = false;
  }
  for (auto& job : batch) {
    // Each settlement gets its own handle scope so a large batch does not pile up handles.
    Napi::HandleScope scope(env);
    job->Settle(env);
  }
  pending_ -= batch.size();
  if (pending_ == 0 && !batch.empty()) completion_.Unref(env);
}

void Engine::Shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(queueMutex_);
    if (stopping_) return;
    stopping_ = true;
    threads.swap(threads_);
    for (auto& job : queue_) job->Abandon();
    queue_.clear();
  }
  queueReady_.notify_all();
  {
    std::lock_guard<std::mutex> lock(doneMutex_);
    closed_ = true;
    for (auto& job : done_) job->Abandon();
    done_.clear();
  }
  completion_.Release();
  // A thread inside a PKCS#11 call that never returns (a hung network HSM) must not hang the
  // environment's teardown: such threads are detached. Each holds the engine alive through its
  // shared_ptr, so it touches no freed memory when the call finally comes back.
  for (auto& thread : threads) thread.detach();
}

}  // namespace p11
