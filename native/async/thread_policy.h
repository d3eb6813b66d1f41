// The scheduling policy of the engine's worker threads. On Linux they run under SCHED_BATCH (same
// nice value, same share of the CPU): the scheduler then treats them as the CPU-bound background
// work they are, and a worker that is woken no longer preempts the running thread. The JS thread
// (left as it is) keeps its core while it settles a batch and submits the next calls, instead of
// being switched out for the worker each submit wakes. Measured on 2 vCPUs, ECDSA P-256: 4 to 16
// requests in flight sign 5-12% faster with event-loop delay p99 about halved; 1 and 64 in
// flight unchanged (ARCHITECTURE.md, "The async engine").
#pragma once

namespace p11 {

// Puts the calling thread under the batch policy. False where the platform has none (macOS,
// Windows) or refuses it; the thread then runs under the default policy, which is only slower.
bool UseBatchScheduling();
// Puts the calling thread back under the default policy. For threads a worker starts (they
// inherit its policy) that must not be batch work: the flusher, which wakes on a deadline.
void UseDefaultScheduling();

}  // namespace p11
