// The addon's own worker threads for blocking PKCS#11 calls. libuv's shared pool (4 threads by
// default) also serves fs and dns, and a slow network HSM would starve it, so signing runs here.
//
// Hand-over: the JS thread appends a job (or a batch of them: SubmitAll) to a queue and wakes
// one idle thread. Calls of one session run one at a time, in order: a job whose session is busy
// is parked behind it and run by the thread that finishes the session's current call (no thread
// ever blocks on a session). Finished jobs go to a completion list; the first one in an empty
// list schedules ONE thread-safe-function call, which settles every job finished by the time it
// runs. While the workers have queued work, that call waits for a batch (up to 32 completions,
// or a quarter of the time the queued work keeps the workers busy, between 1 and 4 ms, or a
// worker running out of work): under load one wake-up of the JS thread settles many promises. The workers deliver a batch themselves (by
// count, or the first to finish a call past its deadline); a flusher thread, looking every 2 ms
// while batches are held (every 8 ms while calls keep finishing), delivers one no worker does
// (calls that run long or hang).
//
// Waking a sleeping thread costs 15-20 µs on a VM (as much as half an ECDSA signature), so a
// thread that runs out of work first spins briefly (yielding its core) for the next job: with one
// request in flight the JS thread submits the next call within that window. Only one thread
// spins at a time.
//
// While jobs are queued and calls compute, a worker that finishes a call yields its core (at
// most every 100 µs while the JS thread is woken for answers, every 250 µs otherwise): the JS
// thread, woken for answers or a timer, would otherwise wait for a worker's scheduler slice to
// end. setWorkerYield(false) turns it off (thread_policy.h says what it costs).
//
// Threads beyond the cores help only a module that waits (a network HSM); for one that computes
// (SoftHSM2) they queue on the cores and delay the JS thread. The engine samples whether calls
// wait (blocking_probe.h) and, while they do not, runs at most one call per core; once they do,
// every thread may run. A call running longer than kLongCall stops counting against the limit,
// so a hung call never holds the others back.
//
// Threads beyond one per core (started for a network HSM's burst, or to watch for long calls)
// end once idle for Settings::idleTimeout; a later burst starts them again.
#pragma once

#include <napi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "completion_sink.h"
#include "job.h"

namespace p11 {

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  struct Settings {
    unsigned maxThreads;   // the thread cap (setThreadCount)
    unsigned workerNice;   // how much higher each worker sets its nice value (thread_policy.h)
    bool workerYield;      // whether a worker yields its core between calls while jobs are queued
    std::chrono::milliseconds idleTimeout;  // a thread beyond one per core ends after this long idle
  };
  static std::shared_ptr<Engine> Create(Napi::Env env, const Settings& settings);
  ~Engine();

  // JS thread only. The job settles through its own promise or through sink().
  void Submit(Napi::Env env, std::unique_ptr<Job> job);
  // JS thread only: Submit for each job, in order, under one lock of the queue. Empties `jobs`.
  void SubmitAll(Napi::Env env, std::vector<std::unique_ptr<Job>>& jobs);
  // JS thread only: where jobs submitted with a ticket (signTo) deliver their outcome.
  CompletionSink& sink() { return sink_; }
  // Environment teardown: stop the threads; unfinished jobs are abandoned, never settled.
  void Shutdown();

  unsigned threadCount() const { return maxThreads_; }

  // A snapshot for engineInfo(): how many calls may run at once and why, and the most that did.
  struct Info {
    unsigned threads;       // started and not retired
    unsigned maxThreads;    // the cap (setThreadCount, raised by ReplaceStuckThreads)
    unsigned callLimit;     // calls allowed to run at once now
    bool computeBound;      // sampled calls do not wait: one call per core
    double blockedShare;    // moving share of sampled calls that waited, 0..1
    unsigned limitChanges;  // times computeBound flipped
    unsigned peakRunning;   // most calls running at once since the last reset, long ones not counted
    double averageCallMicros;  // moving average of a call's time in the module (NoteCallTime)
    double jsWakeups;       // thread-safe-function calls made to settle completions, since the start (a JS number)
    double flusherWakeups;  // times the flusher thread woke, since the start
    bool batchScheduled;    // the workers run under SCHED_BATCH (thread_policy.h)
    unsigned workerNice;    // how much higher the last worker started set its nice value (thread_policy.h)
    bool workerYield;       // setWorkerYield: workers yield their core between calls while jobs are queued
    double workerYields;    // times a worker did, since the start (a JS number)
    double probes;          // calls sampled for blocking, since the start (a JS number)
    double threadsRetired;  // threads that ended after idling for the idle timeout, since the start
  };
  Info Snapshot(bool resetPeak);
  // `count` threads are stuck in calls that were given up on (C_Finalize({ abandonCalls })): they
  // no longer count against the thread cap, and queued jobs get threads of their own now. Each
  // such thread that comes back lowers the cap again and ends (RetireStandInLocked).
  void ReplaceStuckThreads(unsigned count);
  size_t pending() const { return pending_; }

  // JS thread. While at least one caller polls (the pool's busy-poll, lib/pool/busy-poll.ts),
  // workers do not wake the JS thread through the thread-safe function: the poller settles what
  // is ready on each turn of the loop, and the last one to stop settles whatever is left.
  void StartPolling();
  // Returns how many were settled; with nothing ready it first waits up to `spin` for a call to finish.
  size_t PollCompletions(Napi::Env env, std::chrono::microseconds spin = std::chrono::microseconds(0));
  void StopPolling(Napi::Env env);

  // For a synchronous call on the JS thread: waits until the session (or, for AllSessions,
  // every session of the library) has no call running, and holds it until ReleaseForSync.
  void ClaimForSync(Scope scope, const SessionKey& key);
  void ReleaseForSync(Scope scope, const SessionKey& key);

 private:
  // Calls parked behind a session or a C_CloseAllSessions. A list, not a deque: a session is
  // claimed and released once per call, and an empty std::deque allocates (libstdc++), an empty
  // std::list does not.
  using JobList = std::list<std::unique_ptr<Job>>;

  // One per thread, under queueMutex_; a deque keeps the addresses the threads hold stable.
  struct Worker {
    bool running = false;
    std::chrono::steady_clock::time_point since;  // the current call's start
    unsigned callsSinceProbe = 0;                  // calls since the last one sampled for blocking
    std::chrono::steady_clock::time_point lastProbe{};
    bool retired = false;  // its thread has ended; StartThreadLocked may reuse the slot
  };

  Engine() = default;
  // Queues the job (starting a thread if it needs one); true when a sleeping thread should be woken.
  bool EnqueueLocked(std::unique_ptr<Job> job);
  void StartThreadLocked();
  void WorkerLoop(Worker& worker);
  bool WaitForWorkLocked(std::unique_lock<std::mutex>& lock);
  unsigned KeptThreadsLocked() const;
  void LeaveLocked(Worker& worker);
  bool MayStartLocked() const;
  unsigned ActiveLocked(std::chrono::steady_clock::time_point now) const;
  unsigned LimitLocked() const;
  void NoteBlockingLocked(bool blocked);
  bool TryClaimLocked(const Job& job);
  bool RetireStandInLocked();
  void ParkLocked(std::unique_ptr<Job> job);
  std::unique_ptr<Job> ReleaseLocked(const SessionKey& key);
  void RequeueLocked(JobList& jobs);
  void Complete(std::unique_ptr<Job> job);
  void NoteCallTime(std::chrono::steady_clock::duration took);
  std::chrono::microseconds DeferralFor(size_t queued) const;
  void WakeJs();
  void FlushDeferred();
  void FlusherLoop();
  static void SettleBatch(Napi::Env env, Napi::Function, Engine* engine, std::nullptr_t*);
  size_t SettleAll(Napi::Env env);

  using Completion = Napi::TypedThreadSafeFunction<Engine, std::nullptr_t, SettleBatch>;

  unsigned maxThreads_ = 0;
  Completion completion_;

  std::mutex queueMutex_;
  std::condition_variable queueReady_;
  std::deque<std::unique_ptr<Job>> queue_;
  std::vector<std::thread> threads_;
  unsigned standIns_ = 0;  // the cap was raised for this many threads stuck in abandoned calls, not yet back
  std::deque<Worker> workers_;  // slots of ended threads are reused (Worker::retired)
  std::chrono::milliseconds idleTimeout_{0};
  unsigned long long threadsRetired_ = 0;
  unsigned cores_ = 1;
  // How often sampled calls waited, 0..kScoreMax (a moving average).
  unsigned blockedScore_ = 0;
  bool computeBound_ = false;  // at most cores_ calls run at once
  std::atomic<bool> computing_{false};  // computeBound_, for the workers to read without the lock
  unsigned limitChanges_ = 0;
  bool watching_ = false;      // a thread waits with a timeout for calls that have run long
  unsigned idleThreads_ = 0;
  unsigned runningThreads_ = 0;          // threads running jobs
  unsigned peakRunning_ = 0;
  bool spinning_ = false;                // a thread is spinning for the next job (under queueMutex_)
  std::atomic<size_t> queued_{0};        // queue_.size(), readable without the lock while spinning
  std::atomic<unsigned> callLimit_{1};   // LimitLocked(), readable without the lock
  std::atomic<long long> callNanos_{0};  // moving average of a call's duration
  std::atomic<unsigned long long> jsWakeups_{0};
  std::atomic<unsigned long long> flusherWakeups_{0};
  std::atomic<bool> batchScheduled_{false};  // the last worker started got SCHED_BATCH
  unsigned workerNice_ = 0;                      // setWorkerNice(), for each worker to apply
  std::atomic<unsigned> workerNiceApplied_{0};   // what the last worker started applied
  bool workerYield_ = true;                      // setWorkerYield()
  std::atomic<unsigned long long> workerYields_{0};
  std::atomic<unsigned long long> probes_{0};
  bool stopping_ = false;

  // Session claims, under queueMutex_. A key present in busySessions_ has a call running; its
  // list holds the calls waiting for it, in order.
  std::unordered_map<SessionKey, JobList, SessionKeyHash> busySessions_;
  // Per initialisation of a library (the session field of the key is 0): see LibraryOf.
  std::unordered_map<SessionKey, unsigned, SessionKeyHash> busyPerLibrary_;
  std::unordered_map<SessionKey, unsigned, SessionKeyHash> exclusive_;  // inside C_CloseAllSessions
  JobList heldForExclusive_;
  std::condition_variable claimsChanged_;
  unsigned syncWaiters_ = 0;

  std::mutex doneMutex_;
  std::vector<std::unique_ptr<Job>> done_;
  std::atomic<bool> hasDone_{false};  // !done_.empty(), readable without doneMutex_
  // JS thread only: the buffer SettleAll hands to done_ in exchange for a batch, so that neither
  // side allocates one per batch (see SettleAll).
  std::vector<std::unique_ptr<Job>> spareBatch_;
  bool wakeScheduled_ = false;
  // The thread-safe function was called and SettleAll has not run since: the JS thread is woken
  // (or about to be) for answers. Read by the workers without a lock, to choose how often to yield.
  std::atomic<bool> jsWoken_{false};
  unsigned pollers_ = 0;  // callers polling for completions (see StartPolling)
  std::atomic<bool> polling_{false};  // pollers_ > 0, for the workers to read without doneMutex_
  std::chrono::steady_clock::time_point batchDue_;    // when the held-back completions must go
  unsigned long long heldBatches_ = 0;                // batches held back, for the flusher
  unsigned long long completions_ = 0;                // calls finished, for the flusher
  std::thread flusher_;                               // wakes the JS thread for a stale batch
  std::condition_variable flusherReady_;
  bool flusherIdle_ = false;
  bool closed_ = false;  // shutting down: completions are abandoned
  std::mutex wakeMutex_;   // held while calling the thread-safe function, and to release it
  bool released_ = false;  // under wakeMutex_: the thread-safe function is released

  size_t pending_ = 0;  // JS thread only: submitted and not yet settled
  CompletionSink sink_;  // JS thread only
};

}  // namespace p11
