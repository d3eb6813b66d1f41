#include "engine.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "blocking_probe.h"
#include "cpu_relax.h"
#include "thread_policy.h"

namespace p11 {

namespace {

// How long a thread that ran out of work keeps looking before it sleeps: longer than the JS
// thread's round trip from one completion to the next submit, short enough to cost little CPU.
constexpr std::chrono::microseconds kSpin{50};

// Completions held back while the workers have queued work (see Complete): at most this many,
// for a quarter of the time the queued work keeps the workers busy, but at least kMinDeferral
// and at most kMaxDeferral. 32 rather than 16: at 64 ECDSA signatures in flight (30k a second)
// the JS thread then wakes half as often, spending 0.6-1.0 µs less per signature (2026-12-07).
constexpr size_t kBatch = 32;
constexpr std::chrono::microseconds kMinDeferral{1000};
constexpr std::chrono::microseconds kMaxDeferral{4000};
constexpr unsigned kDeferralShare = 4;  // of the queued work's duration
// The flusher (for batches no worker delivers) checks their deadline at most this often, and
// only every kFlusherPatience while calls keep finishing (the workers then deliver them).
constexpr std::chrono::microseconds kFlusherTick{2000};
constexpr std::chrono::microseconds kFlusherPatience{8000};

// A worker that finishes a call while jobs are queued yields its core (setWorkerYield, on by
// default), at most once per kYieldEvery: a JS thread woken meanwhile, for answers or a timer,
// then waits for a core about as long as a call or kYieldEvery, not a scheduler slice. The bound
// keeps short calls (a digest of a few bytes) from paying a system call each.
constexpr std::chrono::microseconds kYieldEvery{100};
// ... and at most once per kYieldEveryUnasked while the JS thread has not been woken for answers:
// then only its timers or I/O can need a core, and a yield is a system call (1.7 µs on the VM of
// 2026-12-07) that the calls pay for. 0.55 yields an ECDSA signature at 64 in flight otherwise.
constexpr std::chrono::microseconds kYieldEveryUnasked{250};

// Thread limit (see engine.h): a call running longer than this no longer counts against it.
constexpr std::chrono::milliseconds kLongCall{5};
// A thread samples a call for blocking when at least kProbeEvery calls and kProbeGap have passed
// since its last sample; the score moves 1/16 of the way per sample; below kComputeBelow the
// module counts as computing, above kBlockingAbove as waiting. A sample costs two system calls
// (getrusage), 1.3 µs each on the VM of 2026-12-07: every fourth call alone put 0.45 of them on
// each ECDSA signature, the millisecond 0.17-0.24. Calls of 250 µs or more (RSA-2048,
// p11-kit-client) are still sampled every fourth call, so a module that waits is found as soon.
constexpr unsigned kProbeEvery = 4;
constexpr std::chrono::microseconds kProbeGap{1000};
constexpr unsigned kScoreMax = 1024;
constexpr unsigned kComputeBelow = 256;
constexpr unsigned kBlockingAbove = 640;

// C_CloseAllSessions reaches the sessions of the module's current initialisation only.
SessionKey LibraryOf(const SessionKey& key) { return SessionKey{key.library, key.initialization, 0}; }

}  // namespace

std::shared_ptr<Engine> Engine::Create(Napi::Env env, const Settings& settings) {
  std::shared_ptr<Engine> engine(new Engine());
  engine->maxThreads_ = settings.maxThreads == 0 ? 1 : settings.maxThreads;
  engine->workerNice_ = settings.workerNice;
  engine->workerYield_ = settings.workerYield;
  engine->idleTimeout_ = settings.idleTimeout;
  engine->cores_ = UsableCores();
  // Computing is the first guess: a module that waits shows it within a few dozen calls, and
  // calls that hang from the start stop counting against the limit after kLongCall.
  engine->computeBound_ = BlockingProbe::Supported();
  engine->computing_.store(engine->computeBound_, std::memory_order_relaxed);
  engine->callLimit_.store(engine->LimitLocked(), std::memory_order_relaxed);
  engine->completion_ = Completion::New(env, "pkcs11-napi completions", 0, 1, engine.get());
  // Only jobs in flight keep the process alive; an idle engine must not.
  engine->completion_.Unref(env);
  return engine;
}

Engine::~Engine() { Shutdown(); }

void Engine::Submit(Napi::Env env, std::unique_ptr<Job> job) {
  if (pending_++ == 0) completion_.Ref(env);
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(queueMutex_);
    wake = EnqueueLocked(std::move(job));
  }
  if (wake) queueReady_.notify_one();
}

void Engine::SubmitAll(Napi::Env env, std::vector<std::unique_ptr<Job>>& jobs) {
  if (jobs.empty()) return;
  if (pending_ == 0) completion_.Ref(env);
  pending_ += jobs.size();
  unsigned wakes = 0;
  {
    // One lock for the batch: the workers take this lock between calls, and the JS thread
    // taking it once per signature met them there (a futex wait) several times a batch.
    std::lock_guard<std::mutex> lock(queueMutex_);
    for (auto& job : jobs) wakes += EnqueueLocked(std::move(job)) ? 1 : 0;
  }
  jobs.clear();
  for (; wakes > 0; --wakes) queueReady_.notify_one();
}

bool Engine::EnqueueLocked(std::unique_ptr<Job> job) {
  queue_.push_back(std::move(job));
  queued_.store(queue_.size(), std::memory_order_release);
  // The spinning thread takes the first job in the queue, and only that one.
  bool spinning = spinning_ && queue_.size() == 1;
  // Threads start lazily: a new one only when every existing thread is busy, and only while
  // the threads at hand (running a call that counts against the limit, or idle) are fewer than
  // the calls allowed at once. A thread woken for an earlier job but not yet running it, or
  // started but not yet running, still counts as idle, so compare the queue with the idle
  // threads rather than asking whether any is idle: otherwise jobs submitted back to back
  // could wait behind one that hangs in the module. At the thread limit one thread more is
  // started while no idle thread would be left over once the others take their jobs: it
  // watches for calls that run long. (Counting threads as idle only once they ran, a burst of
  // 64 submits started all eight threads for two calls at once. Starting the watcher only
  // when no thread was idle, a single core's one thread took the first of four calls, hung in
  // it, and the other three waited with nobody to notice.)
  bool mayStart = MayStartLocked();
  bool spawn = false;
  if (queue_.size() > idleThreads_ && threads_.size() < maxThreads_) {
    spawn = idleThreads_ == 0 || ActiveLocked(std::chrono::steady_clock::now()) + idleThreads_ <= LimitLocked();
  }
  if (spawn) StartThreadLocked();
  // A spinning thread will see the job by itself; waking a sleeping one as well would only
  // have it find the queue empty again. At the limit the thread that finishes a call takes the
  // job; a sleeping thread is woken only to watch for calls that run long, if none does yet.
  return !spawn && !spinning && (mayStart || !watching_);
}

void Engine::ReplaceStuckThreads(unsigned count) {
  std::lock_guard<std::mutex> lock(queueMutex_);
  if (stopping_) return;
  maxThreads_ += count;
  standIns_ += count;
  callLimit_.store(LimitLocked(), std::memory_order_relaxed);
  size_t waiting = queue_.size() > idleThreads_ ? queue_.size() - idleThreads_ : 0;
  for (; waiting > 0 && threads_.size() < maxThreads_; --waiting) StartThreadLocked();
  queueReady_.notify_all();
}

void Engine::StartThreadLocked() {
  // An ended thread's slot, if any: threads that come and go with bursts must not grow workers_,
  // which ActiveLocked walks on every submit.
  auto free = std::find_if(workers_.begin(), workers_.end(), [](const Worker& worker) { return worker.retired; });
  Worker& worker = free != workers_.end() ? (*free = Worker{}) : workers_.emplace_back();
  try {
    threads_.emplace_back([self = shared_from_this(), &worker] { self->WorkerLoop(worker); });
  } catch (...) {
    worker.retired = true;  // no thread owns the slot
    throw;
  }
  // Idle until it takes its first job. Counted once the thread exists (its constructor may
  // throw); the thread cannot uncount itself before this, as it needs queueMutex_, held here.
  ++idleThreads_;
}

Engine::Info Engine::Snapshot(bool resetPeak) {
  std::lock_guard<std::mutex> lock(queueMutex_);
  Info info{static_cast<unsigned>(threads_.size()),
            maxThreads_,
            LimitLocked(),
            computeBound_,
            static_cast<double>(blockedScore_) / kScoreMax,
            limitChanges_,
            peakRunning_,
            static_cast<double>(callNanos_.load(std::memory_order_relaxed)) / 1000,
            static_cast<double>(jsWakeups_.load(std::memory_order_relaxed)),
            static_cast<double>(flusherWakeups_.load(std::memory_order_relaxed)),
            batchScheduled_.load(std::memory_order_relaxed),
            workerNiceApplied_.load(std::memory_order_relaxed),
            workerYield_,
            static_cast<double>(workerYields_.load(std::memory_order_relaxed)),
            static_cast<double>(probes_.load(std::memory_order_relaxed)),
            static_cast<double>(threadsRetired_)};
  if (resetPeak) peakRunning_ = ActiveLocked(std::chrono::steady_clock::now());
  return info;
}

unsigned Engine::LimitLocked() const { return computeBound_ ? std::min(cores_, maxThreads_) : maxThreads_; }

unsigned Engine::ActiveLocked(std::chrono::steady_clock::time_point now) const {
  unsigned active = 0;
  for (const Worker& worker : workers_) {
    if (worker.running && now - worker.since < kLongCall) ++active;
  }
  return active;
}

bool Engine::MayStartLocked() const {
  unsigned limit = LimitLocked();
  return runningThreads_ < limit || ActiveLocked(std::chrono::steady_clock::now()) < limit;
}

unsigned Engine::KeptThreadsLocked() const { return std::min(cores_, maxThreads_); }

bool Engine::WaitForWorkLocked(std::unique_lock<std::mutex>& lock) {
  const auto idleUntil = std::chrono::steady_clock::now() + idleTimeout_;
  for (;;) {
    if (stopping_ || (!queue_.empty() && MayStartLocked())) return false;
    if (queue_.empty() && threads_.size() > KeptThreadsLocked()) {
      // More threads than cores and nothing to do: this one ends once idle for the timeout.
      if (queueReady_.wait_until(lock, idleUntil) == std::cv_status::timeout && queue_.empty() && !stopping_ &&
          threads_.size() > KeptThreadsLocked()) {
        return true;
      }
      continue;
    }
    if (queue_.empty() || watching_) {
      queueReady_.wait(lock);
      continue;
    }
    // Work waits while every allowed thread runs a call: one thread looks again in a while, in
    // case those calls hang; it hands the watch on when it leaves.
    watching_ = true;
    queueReady_.wait_for(lock, kLongCall);
    watching_ = false;
    if (!queue_.empty() && MayStartLocked()) queueReady_.notify_one();
  }
}

void Engine::NoteBlockingLocked(bool blocked) {
  if (blocked) {
    blockedScore_ += (kScoreMax - blockedScore_) / 16;
  } else {
    blockedScore_ -= blockedScore_ / 16;
  }
  if (computeBound_ && blockedScore_ > kBlockingAbove) {
    computeBound_ = false;
    computing_.store(false, std::memory_order_relaxed);
    ++limitChanges_;
    queueReady_.notify_all();  // threads held back by the limit may start now
  } else if (!computeBound_ && blockedScore_ < kComputeBelow) {
    computeBound_ = true;
    computing_.store(true, std::memory_order_relaxed);
    ++limitChanges_;
  }
  callLimit_.store(LimitLocked(), std::memory_order_relaxed);
}

void Engine::WorkerLoop(Worker& worker) {
  NameThread("p11-worker");
  batchScheduled_.store(UseBatchScheduling(), std::memory_order_relaxed);
  workerNiceApplied_.store(LowerWorkerPriority(workerNice_), std::memory_order_relaxed);
  BlockingProbe probe;
  const bool probing = BlockingProbe::Supported();
  std::chrono::steady_clock::time_point lastYield{};
  std::unique_lock<std::mutex> lock(queueMutex_);
  --idleThreads_;  // counted idle since StartThreadLocked; the loop counts it again
  for (;;) {
    ++idleThreads_;
    if (queue_.empty()) {
      // Out of work: completions held back for a batch go to the JS thread now.
      lock.unlock();
      FlushDeferred();
      lock.lock();
    }
    // Spin only when no other thread has work: then the next job can only come from the JS
    // thread, soon. Under load the spinner would just take CPU from the threads that sign.
    if (queue_.empty() && !spinning_ && !stopping_ && runningThreads_ == 0) {
      spinning_ = true;
      lock.unlock();
      auto until = std::chrono::steady_clock::now() + kSpin;
      // Yielding rather than pausing: on a machine with few cores the thread the spinner waits
      // for (the JS thread, or another worker) may need this very core.
      while (queued_.load(std::memory_order_acquire) == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::yield();
      }
      lock.lock();
      spinning_ = false;
    }
    bool idledOut = WaitForWorkLocked(lock);
    --idleThreads_;
    if (stopping_) return;
    if (idledOut) {
      ++threadsRetired_;
      LeaveLocked(worker);
      return;
    }
    std::unique_ptr<Job> job = std::move(queue_.front());
    queue_.pop_front();
    queued_.store(queue_.size(), std::memory_order_release);
    if (!TryClaimLocked(*job)) {
      ParkLocked(std::move(job));
      continue;
    }
    // Run this job, then any calls of the same session that queued up behind it.
    ++runningThreads_;
    worker.running = true;
    worker.since = std::chrono::steady_clock::now();
    peakRunning_ = std::max(peakRunning_, ActiveLocked(worker.since));
    bool retire = false;
    while (job) {
      lock.unlock();
      bool sampled = probing && ++worker.callsSinceProbe >= kProbeEvery && worker.since - worker.lastProbe >= kProbeGap;
      if (sampled) {
        worker.callsSinceProbe = 0;
        worker.lastProbe = worker.since;
        probes_.fetch_add(1, std::memory_order_relaxed);  // before the answer goes out
        probe.Before();
      }
      job->Execute();
      auto returned = std::chrono::steady_clock::now();
      NoteCallTime(returned - worker.since);
      bool blocked = sampled && probe.WaitedSinceBefore();
      SessionKey key = job->key();
      bool scoped = job->scope() == Scope::Session;
      if (job->returnedAfterAbandon()) {
        // Before the answer goes out, so whoever sees it also sees the cap back where it was.
        lock.lock();
        retire = RetireStandInLocked() || retire;
        lock.unlock();
      }
      Complete(std::move(job));
      auto yieldEvery = jsWoken_.load(std::memory_order_relaxed) ? kYieldEvery : kYieldEveryUnasked;
      if (workerYield_ && returned - lastYield >= yieldEvery) {
        // With jobs queued and calls that compute, the workers keep every core they are allowed
        // busy, and a woken JS thread waited for a worker's slice to end (event-loop delay p99
        // 2.1-2.2 ms at 64 ECDSA signatures in flight, 0.3-0.5 ms with this). Not while calls
        // wait (a network HSM): the cores are not all taken then, and the yield would only hand
        // one to another process, the worker waiting for its slice. Not while the JS thread polls
        // for answers: it is runnable throughout, and the worker would wait for it instead.
        if (queued_.load(std::memory_order_acquire) > 0 && computing_.load(std::memory_order_relaxed) &&
            !polling_.load(std::memory_order_relaxed)) {
          std::this_thread::yield();
          workerYields_.fetch_add(1, std::memory_order_relaxed);
          lastYield = returned;
        }
      }
      lock.lock();
      if (sampled) NoteBlockingLocked(blocked);
      if (scoped) job = ReleaseLocked(key);
      if (job) worker.since = std::chrono::steady_clock::now();  // the session's next call
    }
    worker.running = false;
    --runningThreads_;
    if (retire) {
      // This thread was given up on and replaced; now that it is back, it is one too many: it
      // leaves the engine's threads and ends. What it leaves behind goes on as it would have:
      // queued work to a sleeping thread, held-back completions to the JS thread.
      LeaveLocked(worker);
      bool outOfWork = queue_.empty();
      if (!outOfWork) queueReady_.notify_one();
      lock.unlock();
      if (outOfWork) FlushDeferred();
      return;
    }
  }
}

void Engine::LeaveLocked(Worker& worker) {
  // The thread ends without a join: it holds the engine alive through its shared_ptr until it
  // has returned, and touches nothing of it after this.
  auto self = std::find_if(threads_.begin(), threads_.end(),
                           [](const std::thread& thread) { return thread.get_id() == std::this_thread::get_id(); });
  if (self != threads_.end()) {
    self->detach();
    threads_.erase(self);
  }
  worker.retired = true;
}

bool Engine::RetireStandInLocked() {
  if (standIns_ == 0) return false;
  --standIns_;
  --maxThreads_;
  callLimit_.store(LimitLocked(), std::memory_order_relaxed);
  return true;
}

bool Engine::TryClaimLocked(const Job& job) {
  if (job.scope() != Scope::Session) return true;
  const SessionKey& key = job.key();
  if (exclusive_.count(LibraryOf(key)) != 0 || busySessions_.count(key) != 0) return false;
  busySessions_.emplace(key, JobList());
  ++busyPerLibrary_[LibraryOf(key)];
  return true;
}

void Engine::ParkLocked(std::unique_ptr<Job> job) {
  auto busy = busySessions_.find(job->key());
  if (busy != busySessions_.end()) {
    busy->second.push_back(std::move(job));
  } else {
    heldForExclusive_.push_back(std::move(job));  // its library is inside C_CloseAllSessions
  }
}

std::unique_ptr<Job> Engine::ReleaseLocked(const SessionKey& key) {
  auto busy = busySessions_.find(key);
  if (busy == busySessions_.end()) return nullptr;
  if (!busy->second.empty()) {
    std::unique_ptr<Job> next = std::move(busy->second.front());  // the session stays claimed
    busy->second.pop_front();
    return next;
  }
  busySessions_.erase(busy);
  auto count = busyPerLibrary_.find(LibraryOf(key));
  if (count != busyPerLibrary_.end() && --count->second == 0) busyPerLibrary_.erase(count);
  if (syncWaiters_ > 0) claimsChanged_.notify_all();
  return nullptr;
}

void Engine::RequeueLocked(JobList& jobs) {
  // Back to the front of the queue, in their original order, ahead of later calls.
  while (!jobs.empty()) {
    queue_.push_front(std::move(jobs.back()));
    jobs.pop_back();
  }
  queued_.store(queue_.size(), std::memory_order_release);
  queueReady_.notify_all();
}

void Engine::ClaimForSync(Scope scope, const SessionKey& key) {
  if (scope == Scope::Slot) return;
  std::unique_lock<std::mutex> lock(queueMutex_);
  ++syncWaiters_;
  if (scope == Scope::AllSessions) {
    ++exclusive_[LibraryOf(key)];  // no new call of this library starts from now on
    claimsChanged_.wait(lock, [&] { return busyPerLibrary_.count(LibraryOf(key)) == 0; });
  } else {
    claimsChanged_.wait(lock, [&] {
      return exclusive_.count(LibraryOf(key)) == 0 && busySessions_.count(key) == 0;
    });
    busySessions_.emplace(key, JobList());
    ++busyPerLibrary_[LibraryOf(key)];
  }
  --syncWaiters_;
}

void Engine::ReleaseForSync(Scope scope, const SessionKey& key) {
  if (scope == Scope::Slot) return;
  std::lock_guard<std::mutex> lock(queueMutex_);
  if (scope == Scope::AllSessions) {
    auto count = exclusive_.find(LibraryOf(key));
    if (count != exclusive_.end() && --count->second == 0) exclusive_.erase(count);
    RequeueLocked(heldForExclusive_);
    return;
  }
  auto busy = busySessions_.find(key);
  if (busy == busySessions_.end()) return;
  JobList parked = std::move(busy->second);
  busySessions_.erase(busy);
  auto count = busyPerLibrary_.find(LibraryOf(key));
  if (count != busyPerLibrary_.end() && --count->second == 0) busyPerLibrary_.erase(count);
  if (!parked.empty()) RequeueLocked(parked);
  if (syncWaiters_ > 0) claimsChanged_.notify_all();
}

void Engine::NoteCallTime(std::chrono::steady_clock::duration took) {
  // A moving average (1/16 per call); concurrent updates may lose one, which does not matter.
  long long nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(took).count();
  long long average = callNanos_.load(std::memory_order_relaxed);
  callNanos_.store(average == 0 ? nanos : average + (nanos - average) / 16, std::memory_order_relaxed);
}

std::chrono::microseconds Engine::DeferralFor(size_t queued) const {
  // The queued jobs keep the running calls busy for about queued × call time ÷ calls at once;
  // holding answers back for a quarter of that leaves the JS thread time to refill the queue,
  // and adds at most a quarter to the time those requests already wait in it.
  unsigned running = std::max(1u, callLimit_.load(std::memory_order_relaxed));
  long long busyNanos = static_cast<long long>(queued) * callNanos_.load(std::memory_order_relaxed) / running;
  auto deferral = std::chrono::microseconds(busyNanos / kDeferralShare / 1000);
  return std::clamp(deferral, kMinDeferral, kMaxDeferral);
}

void Engine::Complete(std::unique_ptr<Job> job) {
  {
    std::lock_guard<std::mutex> lock(doneMutex_);
    if (closed_) {
      job->Abandon();
      return;
    }
    done_.push_back(std::move(job));
    hasDone_.store(true, std::memory_order_release);
    ++completions_;
    if (wakeScheduled_ || pollers_ > 0) return;
    // While jobs wait in the queue the workers stay busy without the JS thread, so its wake-up can
    // wait for a batch: it is the most expensive hop. It is not deferred past kBatch completions,
    // past as many as there are jobs still queued (the JS thread must answer while the workers
    // still have work, or they idle while it does), a worker running out of work, or DeferralFor.
    // Each wake-up of the JS thread takes a core from a worker on a busy machine: with RSA-2048
    // answers every 250 µs, a fixed 1 ms cost up to 3% of the throughput against batches of 16.
    size_t queued = queued_.load(std::memory_order_acquire);
    if (done_.size() < std::min(queued, kBatch)) {
      auto now = std::chrono::steady_clock::now();
      if (done_.size() == 1) {
        batchDue_ = now + DeferralFor(queued);
        ++heldBatches_;
        // The flusher delivers a batch only when no worker finishes a call after its deadline
        // (calls that run long or hang), and is woken here only from its idle sleep. Woken
        // whenever a batch started while it slept, and then sleeping until that batch's
        // deadline, it woke 1,000-1,400 times a second with ECDSA at 64 in flight, each time
        // taking a core from a worker.
        if (!flusher_.joinable()) {
          flusher_ = std::thread([this] { FlusherLoop(); });
        } else if (flusherIdle_) {
          flusherIdle_ = false;
          flusherReady_.notify_one();
        }
        return;
      }
      if (now < batchDue_) return;
    }
    wakeScheduled_ = true;
  }
  WakeJs();
}

void Engine::WakeJs() {
  // Outside doneMutex_: the call takes the thread-safe function's own lock and makes a system
  // call, and the JS thread and the other workers need doneMutex_ meanwhile. wakeMutex_ keeps
  // Shutdown from releasing the thread-safe function in between.
  std::lock_guard<std::mutex> lock(wakeMutex_);
  if (released_) return;
  jsWoken_.store(true, std::memory_order_relaxed);
  completion_.NonBlockingCall(nullptr);
  jsWakeups_.fetch_add(1, std::memory_order_relaxed);
}

void Engine::FlushDeferred() {
  {
    std::lock_guard<std::mutex> lock(doneMutex_);
    if (closed_ || wakeScheduled_ || pollers_ > 0 || done_.empty()) return;
    wakeScheduled_ = true;
  }
  WakeJs();
}

void Engine::StartPolling() {
  std::lock_guard<std::mutex> lock(doneMutex_);
  ++pollers_;
  polling_.store(true, std::memory_order_relaxed);
}

size_t Engine::PollCompletions(Napi::Env env, std::chrono::microseconds spin) {
  // Spinning here with the CPU's pause hint, rather than turning the event loop again, leaves the
  // core's execution units to a worker on its other hardware thread, if it has one.
  auto until = std::chrono::steady_clock::now() + spin;
  while (!hasDone_.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until) CpuRelax();
  if (!hasDone_.load(std::memory_order_acquire)) return 0;
  return SettleAll(env);
}

void Engine::StopPolling(Napi::Env env) {
  bool ready = false;
  {
    std::lock_guard<std::mutex> lock(doneMutex_);
    if (pollers_ > 0) --pollers_;
    polling_.store(pollers_ > 0, std::memory_order_relaxed);
    // Completions that arrived since the last turn woke nobody: settle them now.
    ready = pollers_ == 0 && !done_.empty();
  }
  if (ready) SettleAll(env);
}

void Engine::FlusherLoop() {
  UseDefaultScheduling();  // started from a worker, whose batch policy it would inherit
  NameThread("p11-flusher");
  std::unique_lock<std::mutex> lock(doneMutex_);
  unsigned long long seen = heldBatches_;
  unsigned long long seenCompletions = completions_;
  while (!closed_) {
    bool held = !done_.empty() && !wakeScheduled_ && pollers_ == 0;
    auto now = std::chrono::steady_clock::now();
    if (held && now >= batchDue_) {
      wakeScheduled_ = true;
      lock.unlock();
      WakeJs();
      lock.lock();
    } else if (held || heldBatches_ != seen) {
      // Workers that finish calls deliver overdue batches themselves, so while batches are held
      // back this thread looks at the deadline every kFlusherTick instead of following every
      // batch, and every kFlusherPatience while calls have finished since its last look (with
      // batches held all the time it had woken ~480 times a second, each time taking a core from
      // a worker). A batch is late only when no call finishes after its deadline, and then by
      // less than kFlusherPatience.
      // Counting held batches rather than finished calls lets it sleep while nothing is held: with
      // the pool polling at one request in flight it had woken 480 times a second for nothing.
      bool progress = completions_ != seenCompletions;
      seenCompletions = completions_;
      seen = heldBatches_;
      auto tick = progress ? kFlusherPatience : kFlusherTick;
      flusherReady_.wait_until(lock, held ? std::max(batchDue_, now + tick) : now + tick);
      flusherWakeups_.fetch_add(1, std::memory_order_relaxed);
    } else {
      // Nothing finished for a whole tick: sleep until Complete holds back the next batch.
      flusherIdle_ = true;
      flusherReady_.wait(lock, [this] { return !flusherIdle_ || closed_; });
      flusherWakeups_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void Engine::SettleBatch(Napi::Env env, Napi::Function, Engine* engine, std::nullptr_t*) {
  if (env != nullptr) engine->SettleAll(env);
}

size_t Engine::SettleAll(Napi::Env env) {
  // The two buffers go back and forth, keeping their capacity. Swapping with an empty vector had
  // the workers grow done_ anew for every batch (six allocations up to 32 answers, in their malloc
  // arenas) and the JS thread free it, which takes the lock of the arena of a worker that may be
  // inside malloc for the module at that moment.
  std::vector<std::unique_ptr<Job>> batch;
  batch.swap(spareBatch_);  // empty, with capacity (or none, if a settlement re-entered)
  {
    std::lock_guard<std::mutex> lock(doneMutex_);
    batch.swap(done_);
    hasDone_.store(false, std::memory_order_relaxed);
    wakeScheduled_ = false;
    jsWoken_.store(false, std::memory_order_relaxed);
  }
  for (auto& job : batch) {
    // Each settlement gets its own handle scope so a large batch does not pile up handles.
    try {
      Napi::HandleScope scope(env);
      if (!job->SettlesThroughSink()) sink_.JavaScriptMayRun();
      job->Settle(env, sink_);
    } catch (...) {
      // The environment is going away (a worker_thread being terminated): N-API refuses to
      // create values or settle promises. Nobody is left to be told; the exception must not
      // escape into Node, which would abort the whole process.
    }
  }
  try {
    sink_.Flush(env);  // the batch's signatures for the pool, in one call
  } catch (...) {
    // As above: the environment is going away.
  }
  size_t settled = batch.size();
  pending_ -= settled;
  if (pending_ == 0 && settled > 0) completion_.Unref(env);
  batch.clear();
  if (batch.capacity() > spareBatch_.capacity()) spareBatch_.swap(batch);
  return settled;
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
    queued_.store(0, std::memory_order_release);
    for (auto& [key, parked] : busySessions_) {
      for (auto& job : parked) job->Abandon();
      parked.clear();
    }
    for (auto& job : heldForExclusive_) job->Abandon();
    heldForExclusive_.clear();
  }
  queueReady_.notify_all();
  {
    std::lock_guard<std::mutex> lock(doneMutex_);
    closed_ = true;
    for (auto& job : done_) job->Abandon();
    done_.clear();
    hasDone_.store(false, std::memory_order_relaxed);
  }
  {
    std::lock_guard<std::mutex> lock(wakeMutex_);
    released_ = true;
    completion_.Release();
  }
  sink_.Release();  // on the JS thread, while the environment still exists
  flusherReady_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  // A thread inside a PKCS#11 call that never returns (a hung network HSM) must not hang the
  // environment's teardown: such threads are detached. Each holds the engine alive through its
  // shared_ptr, so it touches no freed memory when the call finally comes back.
  for (auto& thread : threads) thread.detach();
}

}  // namespace p11
