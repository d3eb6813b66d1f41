/**
 * The soak: N signatures through the pool at a fixed concurrency, watching for leaks. RSS is
 * taken after a warm-up (so the first-use allocations, threads and sessions are in "before"),
 * then after the run both as found and after a full GC: a leak shows in both, garbage only in
 * the first. Native handles: sessions (the token's own count, C_GetTokenInfo, when it reports
 * one, and the pool's), the process's threads and the engine's, and open file descriptors.
 */
import * as fs from 'fs';
import { getHeapSpaceStatistics } from 'v8';

import { engineInfo } from '../../lib';
import type { Ulong } from '../../lib/native/types';
import { verifySignature } from '../mechanisms';
import type { RunSpec } from '../types';
import type { NodeLoad } from './node-load';
import { loadModule } from './ours-module';

export interface SoakSpec extends Omit<RunSpec, 'warmupMs' | 'durationMs'> {
  count: number;
}

export interface SoakResult {
  count: number;
  concurrency: number;
  seconds: number;
  signsPerSec: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  rssAfterGcMb: number | null;
  /** V8's view (after GC when available): flat here while RSS grows means native memory. */
  heapUsedMb: { before: number; after: number };
  externalMb: { before: number; after: number };
  /** V8's young generation: it grows (to --max-semi-space-size) when many objects survive scavenges. */
  newSpaceMb: { before: number; after: number };
  /** C_GetTokenInfo's ulSessionCount; null when the token answers CK_UNAVAILABLE_INFORMATION. */
  tokenSessions: { before: number | null; after: number | null; afterClose: number | null };
  poolSessions: { before: number; after: number };
  /** The process's threads (/proc/self/task) and open file descriptors (/proc/self/fd, /dev/fd); null where not listed. */
  processThreads: { before: number | null; after: number | null };
  fileDescriptors: { before: number | null; after: number | null };
  /**
   * The engine's worker threads (engineInfo().threads) and their cap. A call that runs past 5 ms
   * (a worker preempted that long, on a busy VM) lets one more thread start, up to the cap; those
   * end again once idle (setThreadIdleTimeout).
   */
  engineThreads: { before: number; after: number; cap: number };
}

// Enough to cycle through the (fixed) young generation many times, so its pages are resident.
const WARMUP_SIGNS = 50_000;
const mb = (bytes: number) => bytes / (1024 * 1024);
const newSpaceMb = () => mb(getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0);

function tokenSessions(spec: SoakSpec): number | null {
  const count: Ulong = loadModule(spec.target.modulePath, spec.deepBind).findSlot(spec.target.token).tokenInfo().sessionCount;
  return typeof count === 'number' ? count : null; // a bigint here is CK_UNAVAILABLE_INFORMATION
}

/** Entries of a /proc-style listing, or null where the platform has none. */
function entries(dir: string): number | null {
  try {
    return fs.readdirSync(dir).length;
  } catch {
    return null;
  }
}

const handles = () => ({
  threads: entries('/proc/self/task'),
  fds: entries(process.platform === 'linux' ? '/proc/self/fd' : '/dev/fd'),
  engine: engineInfo(),
});

function settle(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  return process.memoryUsage.rss() / (1024 * 1024);
}

export async function soak(load: NodeLoad, spec: SoakSpec): Promise<SoakResult> {
  const prepared = await load.prepare({ ...spec, warmupMs: 0, durationMs: 0 });
  const pool = prepared.pool;
  if (!pool) throw new Error('the soak runs through the pool load');
  const signMany = async (total: number) => {
    let issued = 0;
    let last: Buffer | undefined;
    await Promise.all(
      prepared.clients.map(async (sign) => {
        while (issued < total) {
          issued++;
          last = await sign();
        }
      }),
    );
    return last;
  };
  try {
    await signMany(WARMUP_SIGNS);
    const before = {
      token: tokenSessions(spec),
      pool: pool.stats().sessions,
      handles: handles(),
      rss: settle(),
      memory: process.memoryUsage(),
      newSpace: newSpaceMb(),
    };
    const t0 = performance.now();
    const last = await signMany(spec.count);
    const seconds = (performance.now() - t0) / 1000;
    const rssAfterMb = process.memoryUsage.rss() / (1024 * 1024);
    const hasGc = typeof (globalThis as { gc?: unknown }).gc === 'function';
    const rssAfterGcMb = hasGc ? settle() : null;
    const memory = process.memoryUsage();
    const newSpace = newSpaceMb();
    const after = { token: tokenSessions(spec), pool: pool.stats().sessions, handles: handles() };
    if (!last || !verifySignature(spec.mechanism, Buffer.from(spec.spkiBase64, 'base64'), last)) {
      throw new Error('the last soak signature does not verify');
    }
    await prepared.close();
    return {
      count: spec.count,
      concurrency: spec.concurrency,
      seconds,
      signsPerSec: spec.count / seconds,
      rssBeforeMb: before.rss,
      rssAfterMb,
      rssAfterGcMb,
      heapUsedMb: { before: mb(before.memory.heapUsed), after: mb(memory.heapUsed) },
      externalMb: { before: mb(before.memory.external), after: mb(memory.external) },
      newSpaceMb: { before: before.newSpace, after: newSpace },
      tokenSessions: { before: before.token, after: after.token, afterClose: tokenSessions(spec) },
      poolSessions: { before: before.pool, after: after.pool },
      processThreads: { before: before.handles.threads, after: after.handles.threads },
      fileDescriptors: { before: before.handles.fds, after: after.handles.fds },
      engineThreads: { before: before.handles.engine.threads, after: after.handles.engine.threads, cap: after.handles.engine.maxThreads },
    };
  } catch (error) {
    await prepared.close().catch(() => undefined);
    throw error;
  }
}
