// The scheduling of the engine's worker threads. On Linux they run under SCHED_BATCH: the
// scheduler then treats them as the CPU-bound background work they are, and a worker that is
// woken no longer preempts the running thread. The JS thread (left as it is) keeps its core while
// it settles a batch and submits the next calls, instead of being switched out for the worker
// each submit wakes. Measured on 2 vCPUs, ECDSA P-256: 4 to 16 requests in flight sign 5-12%
// faster with event-loop delay p99 about halved; 1 and 64 in flight unchanged.
//
// setWorkerNice(n) has them run at a nice value n above the thread that starts them (default 0).
// With as much queued work as at 64 requests in flight the workers never leave a core idle, and a
// woken JS thread waits for one: its scheduling delay reached 1.8 ms at p99 (`perf sched
// timehist`; 0.8 ms at 32 in flight), and event-loop delay p99 2.1-2.3 ms. At nice 5 it runs at
// once (0.8-1.2 ms), but the workers then also give way to everything else of their autogroup or
// cgroup (a session, a systemd service): V8's helper threads beside a polling JS thread at one
// request in flight (6% fewer signatures in `npm run bench`), and any other busy process of the
// group (ARCHITECTURE.md, "The async engine").
//
// The workers' yield between calls (engine.cc, kYieldEvery) does the same for the JS thread
// without lowering their weight: event-loop delay p99 at 64 ECDSA signatures in flight 0.3-0.5
// ms against 2.1-2.2, the rate within noise (8 in flight: faster). What it costs: a yield lets any
// other runnable thread of the machine have the core, so beside a busy process the pool signs
// less (3-21% in a noisy spell; its event loop waits 0.4-0.8 ms instead of 4-6).
// setWorkerYield(false) keeps the cores for the workers.
#pragma once

namespace p11 {

// The cores this process may run on, at least 1: on Linux the calling thread's CPU affinity (a
// container's cpuset, taskset), as os.availableParallelism() counts them; elsewhere
// std::thread::hardware_concurrency(). A process pinned to 2 of 64 cores that allowed 64 calls at
// once would have them queue for those 2 inside the module.
unsigned UsableCores();
// Puts the calling thread under the batch policy. False where the platform has none (macOS,
// Windows) or refuses it; the thread then runs under the default policy, which is only slower.
bool UseBatchScheduling();
// The default for setWorkerNice(): how much higher the workers' nice value is.
constexpr unsigned kDefaultWorkerNice = 0;
// The default for setWorkerYield().
constexpr bool kDefaultWorkerYield = true;
// The default for setThreadIdleTimeout(), ms: threads started for a burst end within a minute of
// it, and traffic that pauses for seconds does not pay for starting them again each time.
constexpr unsigned kDefaultThreadIdleMs = 30'000;
// Raises the calling thread's nice value by `increment` (at most to 19) and returns the increment
// applied. Linux only, where nice values are per thread; 0 elsewhere, for 0, or when refused.
// Unprivileged, and one-way: lowering it again would need CAP_SYS_NICE.
unsigned LowerWorkerPriority(unsigned increment);
// Puts the calling thread back under the default policy. For threads a worker starts (they
// inherit its policy) that must not be batch work: the flusher, which wakes on a deadline. It
// keeps the worker's nice value (see LowerWorkerPriority).
void UseDefaultScheduling();
// Names the calling thread (at most 15 characters) so that `top -H`, `perf` and /proc show which
// of a process's threads are the engine's. Linux and macOS; a no-op elsewhere or when refused.
void NameThread(const char* name);

}  // namespace p11
