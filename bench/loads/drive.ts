/**
 * The closed-loop load generator shared by every Node load: N clients, each awaiting its own
 * sign in a loop. After a warm-up the window opens; completions, latencies, the main thread's
 * event-loop utilization and event-loop delay are taken over that window only, so start-up
 * (session growth, JIT, first allocations) is not averaged in, and neither is the drain.
 */
import { monitorEventLoopDelay, performance } from 'perf_hooks';

import { perSign } from '../per-sign';
import type { RunResult } from '../types';
import type { PreparedLoad } from './node-load';

/** The event-loop delay timer's period. Node records the whole tick interval; we subtract it. */
export const ELD_RESOLUTION_MS = 1;

export type Client = () => Promise<Buffer>;

const rssMb = (): number => process.memoryUsage.rss() / (1024 * 1024);

/** Latencies in a growable typed array: no per-sample object for the GC to chase. */
class Samples {
  private data = new Float64Array(1 << 16);
  length = 0;
  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }
  sorted(): Float64Array {
    return this.data.subarray(0, this.length).sort();
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `clients` (one per request in flight) for warm-up + window. Returns the window's numbers
 * and the last signature client 0 produced (for a software check of the result).
 */
export async function drive(
  clients: Client[],
  warmupMs: number,
  durationMs: number,
  state?: PreparedLoad['state'],
): Promise<{ result: RunResult; lastSignature: Buffer | undefined }> {
  const rssBeforeMb = rssMb();
  const latencies = new Samples();
  const delay = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
  let completed = 0;
  let measuring = false;
  let stop = false;
  let lastSignature: Buffer | undefined;

  const loops = clients.map(async (sign, index) => {
    while (!stop) {
      const t0 = performance.now();
      const signature = await sign();
      const t1 = performance.now();
      completed++;
      if (measuring) latencies.push(t1 - t0);
      if (index === 0) lastSignature = signature;
    }
  });
  // A failing client stops the run at once instead of leaving the others to fill the window.
  let failure: unknown;
  const failed = Promise.all(loops).catch((error) => {
    failure = error;
    stop = true;
  });

  await sleep(warmupMs);
  const startCount = completed;
  const start = performance.now();
  const eluStart = performance.eventLoopUtilization();
  const usageStart = process.resourceUsage();
  delay.enable();
  measuring = true;

  await sleep(durationMs);
  const endCount = completed;
  const end = performance.now();
  const usageEnd = process.resourceUsage();
  const elu = performance.eventLoopUtilization(eluStart).utilization;
  const atEnd = state?.(); // while the clients still sign
  measuring = false;
  delay.disable();
  stop = true;
  await Promise.all(loops).catch(() => undefined);
  await failed;
  if (failure !== undefined) throw failure;

  const sorted = latencies.sorted();
  const seconds = (end - start) / 1000;
  return {
    result: {
      signs: endCount - startCount,
      seconds,
      signsPerSec: (endCount - startCount) / seconds,
      latencyMs: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.length ? sorted[sorted.length - 1] : 0 },
      elu,
      eldP99Ms: delay.count > 0 ? Math.max(0, delay.percentile(99) / 1e6 - ELD_RESOLUTION_MS) : 0,
      rssBeforeMb,
      rssAfterMb: rssMb(),
      ...atEnd,
      perSign: perSign(
        endCount - startCount,
        usageEnd.userCPUTime + usageEnd.systemCPUTime - usageStart.userCPUTime - usageStart.systemCPUTime,
        usageEnd.voluntaryContextSwitches - usageStart.voluntaryContextSwitches,
        usageEnd.involuntaryContextSwitches - usageStart.involuntaryContextSwitches,
      ),
    },
    lastSignature,
  };
}
