/**
 * The engine's limit on calls running at once (native/async/engine.h), through the fault shim in
 * front of SoftHSM2:
 * - calls that compute (SoftHSM2 signing) run at most one per core, on about as many threads,
 *   and stay judged so;
 * - calls that wait (the shim's delay sleeps inside C_Sign, like a network HSM) get every thread;
 * - with the limit at the cores, calls that hang do not hold the others back.
 * Telling computing from waiting needs the blocking probe (native/async/blocking_probe.h), which
 * is Linux's; elsewhere every thread may run from the start, and the pool never polls.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';

import {
  CKF_RW_SESSION,
  CKM_ECDSA,
  CKM_SHA256,
  CKU_USER,
  Module,
  PKCS11,
  SigningPool,
  engineInfo,
  setThreadCount,
  setThreadIdleTimeout,
  setWorkerNice,
} from '../lib';
import type { Handle } from '../lib';
import { generateEcKeyPair } from './support/binding-helpers';
import { ShimControl, applyShimEnv, buildShim } from './support/shim';
import { within } from './support/within';
import { TestToken, createTestToken } from './support/softhsm';

const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
// More threads than cores, so that the limit is visible.
const threads = Math.min(256, Math.max(8, cores * 4));
// Where the engine can tell computing calls from waiting ones, and so limits them to the cores.
const probes = process.platform === 'linux';
const computingLimit = probes ? cores : threads;
const digest = Buffer.alloc(32, 7);
const niceAtStart = os.getPriority(); // the JS thread's, before any engine thread exists
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let token: TestToken;
let shimPath: string;
let control: ShimControl;
let m: PKCS11;
let sessions: Handle[];
let key: Handle;

beforeAll(() => {
  shimPath = buildShim();
  token = createTestToken({ label: 'engine-limit' });
  control = new ShimControl();
  control.set({ 'hang.max': 15_000 });
  applyShimEnv(control);
  setThreadCount(threads); // a fresh jest worker per file: the engine has not started yet
  setWorkerNice(5);
  // These tests count the workers (in /proc too) and bound by them: none may end half-way, as
  // one idle for the default 30 s could under a sanitizer (engine-idle.test.ts tests that).
  setThreadIdleTimeout(86_400_000);
  m = new PKCS11();
  m.load(shimPath);
  m.C_Initialize();
  const slot = m.C_GetSlotList(true).find((id) => m.C_GetTokenInfo(id).label === token.label);
  if (slot === undefined) throw new Error('token not found behind the shim');
  sessions = Array.from({ length: 32 }, () => m.C_OpenSession(slot, CKF_RW_SESSION));
  m.C_Login(sessions[0], CKU_USER, token.userPin);
  key = generateEcKeyPair(m, sessions[0], 'P-256').privateKey;
});

afterAll(() => {
  control?.clear();
  m?.close({ timeoutMs: 0 });
  control?.cleanup();
  token?.cleanup();
});

/** `count` signatures, one client per session, each awaiting its own call. */
async function signMany(count: number, on: Handle[] = sessions): Promise<void> {
  let left = count;
  await Promise.all(
    on.map(async (session) => {
      while (left > 0) {
        left--;
        const signature = await m.sign(session, CKM_ECDSA, key, digest);
        if (signature.length !== 64) throw new Error(`a P-256 signature has 64 bytes, not ${signature.length}`);
      }
    }),
  );
}

test('before any async call no thread runs, and calls are taken to compute: one per core (Linux)', () => {
  expect(engineInfo()).toEqual({
    threads: 0,
    maxThreads: threads,
    callLimit: computingLimit,
    computeBound: probes,
    blockedShare: 0,
    limitChanges: 0,
    peakRunning: 0,
    averageCallMicros: 0,
    jsWakeups: 0,
    flusherWakeups: 0,
    batchScheduled: false,
    workerNice: 0,
    workerYield: true,
    workerYields: 0,
    probes: 0,
    threadsRetired: 0,
  });
  expect(() => engineInfo({ resetPeak: 1 } as never)).toThrow(new TypeError('engineInfo: options.resetPeak must be a boolean'));
  expect(() => engineInfo(5 as never)).toThrow(new TypeError('engineInfo: options must be an object'));
});

/** The name, scheduling policy and nice value of each thread of this process (Linux: comm and fields 41 and 19 of /proc/self/task/<tid>/stat). */
function threadScheduling(): Map<number, { name: string; policy: number; nice: number }> {
  const threads = new Map<number, { name: string; policy: number; nice: number }>();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // "pid (comm) " and then the fields from the third (state) on.
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    threads.set(Number(tid), { name, policy: Number(fields[41 - 3]), nice: Number(fields[19 - 3]) });
  }
  return threads;
}

test('the first burst of calls starts threads for the calls allowed at once, not the whole cap', async () => {
  // 32 calls submitted in one turn, the engine's first: read at once, before any call could have
  // run past the long-call allowance (after which one more thread may start, legitimately). One
  // thread per call allowed, and one to watch for long calls; counting threads as idle only once
  // they ran, this burst used to start all of them (8 here).
  const burst = signMany(200);
  const started = engineInfo().threads;
  await burst;
  expect(started).toBeGreaterThanOrEqual(1);
  expect(started).toBeLessThanOrEqual(probes ? cores + 1 : threads);
});

test('the worker threads run under SCHED_BATCH at the nice increment asked for (5 here, Linux); the JS thread keeps its policy and nice value', async () => {
  await signMany(200);
  const info = engineInfo();
  if (process.platform !== 'linux') {
    expect([info.batchScheduled, info.workerNice]).toEqual([false, 0]);
    return;
  }
  const SCHED_OTHER = 0;
  const SCHED_BATCH = 3;
  const threads = threadScheduling();
  const js = threads.get(process.pid)!;
  expect([info.batchScheduled, info.workerNice]).toEqual([true, Math.min(19, niceAtStart + 5) - niceAtStart]);
  expect(info.threads).toBeGreaterThanOrEqual(1);
  // Exactly the engine's workers: not the JS thread, libuv's pool, V8's threads or the flusher.
  const workers = [...threads.values()].filter((thread) => thread.policy === SCHED_BATCH);
  expect(workers).toHaveLength(info.threads);
  expect(js.policy).toBe(SCHED_OTHER);
  expect(js.nice).toBe(niceAtStart);
  expect(workers.map((worker) => worker.nice)).toEqual(workers.map(() => Math.min(19, js.nice + 5)));
  expect(() => setWorkerNice(0)).toThrow(new Error('setWorkerNice: the worker threads are already running'));
});

test('the engine names its threads (Linux): p11-worker for each worker, p11-flusher for the one that delivers late batches', async () => {
  // Queued work (200 calls from 32 sessions on a few cores) holds completions back for a batch,
  // which starts the flusher.
  await signMany(200);
  const info = engineInfo();
  if (process.platform !== 'linux') return; // no /proc to read the names from; macOS names them too
  const SCHED_OTHER = 0;
  const SCHED_BATCH = 3;
  const threads = [...threadScheduling().values()];
  const named = (name: string) => threads.filter((thread) => thread.name === name);
  // The workers are the SCHED_BATCH threads, and every one of them carries the name.
  expect(named('p11-worker')).toHaveLength(info.threads);
  expect(named('p11-worker').every((thread) => thread.policy === SCHED_BATCH)).toBe(true);
  expect(threads.filter((thread) => thread.policy === SCHED_BATCH)).toHaveLength(info.threads);
  // One flusher, under the default policy (it wakes on deadlines), at the workers' nice value.
  const flusher = named('p11-flusher');
  expect(flusher).toHaveLength(1);
  expect(flusher[0].policy).toBe(SCHED_OTHER);
  expect(flusher[0].nice).toBe(Math.min(19, niceAtStart + 5));
  // Nothing else of the process is named after the engine.
  expect(threads.filter((thread) => thread.name.startsWith('p11-'))).toHaveLength(info.threads + 1);
});

/**
 * Runs `body` in a fresh process whose engine has not started: first `setter(value)` on the
 * binding (unless value is 'unset'; a throw is reported as { error }), then a logged-in session
 * `first` on the test token with a P-256 key pair `privateKey`. `body` prints one JSON line.
 */
function inFreshProcess<T>(setter: string, value: unknown, body: string, timeoutMs = 30_000): T {
  const kit = path.join(__dirname, 'support', 'child-kit.js');
  const script = `
    const fs = require('fs');
    const kit = require(${JSON.stringify(kit)});
    const binding = kit.loadBinding();
    try { if (${JSON.stringify(value)} !== 'unset') binding.${setter}(${JSON.stringify(value)}); } catch (e) { console.log(JSON.stringify({ error: e.constructor.name + ': ' + e.message })); process.exit(0); }
    const { p11, slot } = kit.openToken(${JSON.stringify(token.modulePath)}, ${JSON.stringify(token.label)});
    const first = kit.openSession(p11, slot, ${JSON.stringify(token.userPin)});
    const { privateKey } = kit.ecKeyPair(p11, first);
    ${body}`;
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: timeoutMs });
  if (child.status !== 0) throw new Error(`child failed (${child.status}): ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop()!) as T;
}

/**
 * A process whose engine starts after setWorkerNice(increment): its worker threads' nice values
 * above its JS thread's, as read from /proc, and what engineInfo() reports.
 */
type NiceReport = { workers: number[]; js: number; reported: number; error?: string };
function niceInFreshProcess(increment: unknown): NiceReport {
  return inFreshProcess<NiceReport>(
    'setWorkerNice',
    increment,
    `(async () => {
      await Promise.all(Array.from({ length: 8 }, () => p11.sign(first, kit.C.CKM_ECDSA, privateKey, Buffer.alloc(32, 1))));
      const read = (tid) => {
        const stat = fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      };
      const workers = fs.readdirSync('/proc/self/task').map(read).filter((f) => Number(f[41 - 3]) === 3).map((f) => Number(f[19 - 3]));
      const js = Number(read(process.pid)[19 - 3]);
      console.log(JSON.stringify({ workers: workers.map((nice) => nice - js), js, reported: binding.engineInfo().workerNice }));
      p11.C_Finalize();
    })();`,
  );
}

test('by default the workers\' nice value is the JS thread\'s; setWorkerNice raises it by as much as asked', () => {
  if (process.platform !== 'linux') return; // nice values per thread are Linux's
  const level = niceInFreshProcess('unset');
  expect(level.workers.length).toBeGreaterThanOrEqual(1);
  expect(level).toEqual({ workers: level.workers.map(() => 0), js: level.js, reported: 0 });
  const three = niceInFreshProcess(3);
  const applied = Math.min(19, three.js + 3) - three.js;
  expect(three).toEqual({ workers: three.workers.map(() => applied), js: three.js, reported: applied });
  expect(three.workers.length).toBeGreaterThanOrEqual(1);
  expect(niceInFreshProcess(20)).toEqual({ error: "TypeError: setWorkerNice: argument 'increment' must be an integer from 0 to 19" });
  expect(niceInFreshProcess('5')).toEqual({ error: expect.stringMatching(/^TypeError: setWorkerNice: argument 'increment' must be /) });
});

/**
 * A process whose engine starts after setWorkerYield(enabled) (unless 'unset'): 32 sessions, one
 * signature in flight on each until 640 are done, so that calls wait in the queue behind the
 * threads; then what engineInfo() reports.
 */
type YieldReport = { workerYield: boolean; workerYields: number; late?: string; error?: string };
function yieldsInFreshProcess(enabled: unknown): YieldReport {
  return inFreshProcess<YieldReport>(
    'setWorkerYield',
    enabled,
    `const sessions = [first, ...Array.from({ length: 31 }, () => kit.openSession(p11, slot, ${JSON.stringify(token.userPin)}))];
    let left = 640;
    (async () => {
      await Promise.all(sessions.map(async (session) => {
        while (left-- > 0) await p11.sign(session, kit.C.CKM_ECDSA, privateKey, Buffer.alloc(32, 1));
      }));
      const { workerYield, workerYields } = binding.engineInfo();
      let late;
      try { binding.setWorkerYield(true); } catch (e) { late = e.message; }
      console.log(JSON.stringify({ workerYield, workerYields, late }));
      p11.C_Finalize();
    })();`,
    60_000,
  );
}

test('by default a worker yields its core between calls while computing calls are queued (Linux); setWorkerYield(false) stops it', () => {
  const late = 'setWorkerYield: the worker threads are already running';
  // 640 calls of 50-150 µs, one per core at a time, yielding at most every 100 or 250 µs: dozens of
  // yields at the least. Only where the engine can tell that calls compute (Linux's probe); it
  // never yields while they wait.
  const byDefault = yieldsInFreshProcess('unset');
  expect(byDefault).toEqual({ workerYield: true, workerYields: expect.any(Number), late });
  if (probes) expect(byDefault.workerYields).toBeGreaterThanOrEqual(10);
  else expect(byDefault.workerYields).toBe(0);
  expect(yieldsInFreshProcess(false)).toEqual({ workerYield: false, workerYields: 0, late });
  expect(yieldsInFreshProcess(true)).toEqual({ workerYield: true, workerYields: expect.any(Number), late });
  expect(yieldsInFreshProcess(1)).toEqual({ error: "TypeError: setWorkerYield: argument 'enabled' must be a boolean" });
});

/** engineInfo() after one async call, in a process started under `taskset -c <cpus>`. */
function engineUnderAffinity(cpus: string): { callLimit: number; maxThreads: number; parallelism: number } {
  const kit = path.join(__dirname, 'support', 'child-kit.js');
  const script = `
    const os = require('os');
    const kit = require(${JSON.stringify(kit)});
    const { p11, slot } = kit.openToken(${JSON.stringify(token.modulePath)}, ${JSON.stringify(token.label)});
    const session = kit.openSession(p11, slot, ${JSON.stringify(token.userPin)});
    p11.C_GenerateRandomAsync(session, 8).then(() => {
      const { callLimit, maxThreads } = kit.loadBinding().engineInfo();
      console.log(JSON.stringify({ callLimit, maxThreads, parallelism: os.availableParallelism() }));
      p11.C_Finalize();
    });`;
  const child = spawnSync('taskset', ['-c', cpus, process.execPath, '-e', script], { encoding: 'utf8', timeout: 30_000 });
  if (child.error) throw new Error(`taskset (util-linux) could not run: ${child.error.message}`);
  if (child.status !== 0) throw new Error(`child failed (${child.status}): ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop()!);
}

test('the cores counted are those the process may run on (its CPU affinity, Linux), as os.availableParallelism() counts them', () => {
  if (process.platform !== 'linux') return; // the engine reads the affinity on Linux only
  // The first CPU this process may use (a container's cpuset need not include CPU 0).
  const allowed = /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  expect(allowed).not.toBeNull();
  const all = allowed![1];
  const first = /^\d+/.exec(all)![0];
  // Computing calls: one at a time on one core; the cap follows the cores too (8 at least).
  expect(engineUnderAffinity(first)).toEqual({ callLimit: 1, maxThreads: 8, parallelism: 1 });
  // Every allowed CPU: as many calls at once as this process counts cores.
  expect(engineUnderAffinity(all)).toEqual({ callLimit: cores, maxThreads: Math.max(8, cores * 2), parallelism: cores });
});

test('signing that computes runs one call per core (Linux; elsewhere up to every thread)', async () => {
  await signMany(4000);
  const settled = engineInfo({ resetPeak: true });
  expect(settled).toMatchObject({ maxThreads: threads, computeBound: probes, callLimit: computingLimit });
  expect(settled.averageCallMicros).toBeGreaterThan(0);

  await signMany(4000);
  const after = engineInfo();
  // The module was judged the same way throughout, and 32 calls were in flight the whole time:
  // without the limit, every thread would have run. (Calls past the long-call allowance, 5 ms,
  // are not counted: on a busy machine a preempted signature can take that long, and then one
  // more call may start.)
  expect(after.limitChanges).toBe(settled.limitChanges);
  expect(after.peakRunning).toBeGreaterThanOrEqual(1);
  expect(after.peakRunning).toBeLessThanOrEqual(computingLimit);
});

/** `count` SHA-256 digests of a few bytes (microseconds each in SoftHSM2), one client per session. */
async function digestMany(count: number): Promise<void> {
  let left = count;
  await Promise.all(
    sessions.map(async (session) => {
      while (left > 0) {
        left--;
        const digestOut = await m.digest(session, CKM_SHA256, digest);
        if (digestOut.length !== 32) throw new Error(`a SHA-256 digest has 32 bytes, not ${digestOut.length}`);
      }
    }),
  );
}

test('a thread samples a call for blocking only when 4 calls and 1 ms have passed since its last sample (Linux)', async () => {
  // A sample costs two getrusage() system calls. Short calls: the millisecond decides, at most
  // one sample a millisecond on each thread (every fourth call would be 5,000 here).
  const before = engineInfo();
  const started = performance.now();
  await digestMany(20_000);
  const elapsed = performance.now() - started;
  const fast = engineInfo();
  const fastSamples = fast.probes - before.probes;
  if (!probes) {
    expect(fastSamples).toBe(0);
    return;
  }
  expect(fastSamples).toBeGreaterThan(0);
  expect(fastSamples).toBeLessThanOrEqual(fast.threads * (Math.ceil(elapsed) + 1));

  // Calls of a millisecond or more (a 1 ms sleep in C_Sign): every fourth call on each thread.
  control.set({ 'delay.C_Sign': 1 });
  await signMany(400);
  control.unset('delay.C_Sign');
  const slow = engineInfo();
  const slowSamples = slow.probes - fast.probes;
  // A thread may carry up to three digests counted towards its next sample (one sample more),
  // and leaves at most three calls unsampled at the end.
  expect(slowSamples).toBeLessThanOrEqual(400 / 4 + slow.threads);
  expect(slowSamples).toBeGreaterThanOrEqual(400 / 4 - 3 * slow.threads);
});

test('calls that wait inside the module get every thread again', async () => {
  await signMany(4000);
  expect(engineInfo().computeBound).toBe(probes);

  control.set({ 'delay.C_Sign': 3 }); // sleeps: the thread gives up its core, like a network call
  await signMany(300);
  const waiting = engineInfo({ resetPeak: true });
  await signMany(300);
  const { peakRunning, averageCallMicros, workerYields } = engineInfo();
  control.unset('delay.C_Sign');

  expect(waiting).toMatchObject({ computeBound: false, callLimit: threads });
  // 32 calls in flight on fewer threads keep calls queued, but the cores are not all taken while
  // calls wait: no worker yielded its core.
  expect(workerYields).toBe(waiting.workerYields);
  // The time inside the module, every call at least the 3 ms sleep (a moving average that has
  // long forgotten the fast calls before).
  expect(averageCallMicros).toBeGreaterThan(2990);
  // 32 sessions each with a 3 ms call in flight: many more than the cores run at once.
  expect(peakRunning).toBeGreaterThan(cores);
});

test('the pool does not poll for answers to calls that wait, however short', async () => {
  // 1 ms sleeps inside C_Sign are well under this pool's polling budget (50 ms): only the
  // engine's judgement that the calls wait keeps the JS thread from polling through them.
  const module = Module.load(shimPath);
  const pool = await SigningPool.open({
    module,
    token: token.label,
    key: { label: 'ec-P-256' },
    pin: token.userPin,
    size: 1,
    busyPollMicros: 50_000,
  });
  const utilization = async (count: number): Promise<number> => {
    const start = performance.eventLoopUtilization();
    for (let i = 0; i < count; i++) await pool.sign(digest, CKM_ECDSA);
    return performance.eventLoopUtilization(start).utilization;
  };
  try {
    await signMany(4000);
    expect(engineInfo().computeBound).toBe(probes);
    await utilization(100); // the pool's latency average, JIT
    const computing = await utilization(400);
    if (!probes) {
      // Nothing tells the engine the calls compute: the pool never polls.
      expect(computing).toBeLessThan(0.5);
      return;
    }

    control.set({ 'delay.C_Sign': 1 });
    for (let i = 0; i < 20 && engineInfo().computeBound; i++) await signMany(64);
    expect(engineInfo().computeBound).toBe(false);
    await sleep(150); // past the pool's sampling period of the engine's judgement
    const waiting = await utilization(150);

    // Polling keeps the loop busy between answers; waiting calls leave it asleep.
    if (cores > 1) expect(computing).toBeGreaterThan(0.8);
    expect(waiting).toBeLessThan(0.5);
  } finally {
    control.unset('delay.C_Sign');
    await pool.close();
    module.close();
  }
});

test('with one call per core, calls that hang do not hold the next one back', async () => {
  await signMany(4000);
  expect(engineInfo()).toMatchObject({ computeBound: probes, callLimit: computingLimit });
  const hangsBefore = control.stats().faults.hang;
  control.set({ 'hang.C_GenerateRandom.count': cores });
  const hung = sessions.slice(0, cores).map((session) => m.C_GenerateRandomAsync(session, 8));
  await control.waitForStats((s) => s.faults.hang === hangsBefore + cores, 3000);

  // Every call the limit allows is hung: the next one runs once they count as long-running.
  const outcome = await within(
    3000,
    m.sign(sessions[cores], CKM_ECDSA, key, digest).then((signature) => signature.length),
  );
  control.unset('hang.C_GenerateRandom.count');
  const released = await Promise.all(hung.map((call) => call.then((bytes) => bytes.length)));

  expect({ outcome, released }).toEqual({ outcome: 64, released: Array(cores).fill(8) });
});
