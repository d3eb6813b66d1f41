/**
 * Worker threads beyond one per core end once idle for setThreadIdleTimeout (native/async/engine.h)
 * and start again for the next burst. What starts them is calls that wait: the fault shim sleeps
 * inside C_Sign, like a network HSM, and the engine then lets every thread run (on Linux, once its
 * probe has seen the calls wait; elsewhere from the start).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';

import { CKF_RW_SESSION, CKM_ECDSA, CKU_USER, PKCS11, engineInfo, setThreadCount, setThreadIdleTimeout } from '../lib';
import type { Handle } from '../lib';
import { ecPublicKeyObject, findSlotByLabel, generateEcKeyPair, ulongArgMessage } from './support/binding-helpers';
import { ShimControl, applyShimEnv, buildShim } from './support/shim';
import { TestToken, createTestToken } from './support/softhsm';

const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
const cap = cores + 4; // room for threads beyond the cores
const idleMs = 300;
const message = Buffer.from('engine-idle');
const digest = crypto.createHash('sha256').update(message).digest();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let token: TestToken;
let control: ShimControl;
let m: PKCS11;
let sessions: Handle[];
let privateKey: Handle;
let publicKey: crypto.KeyObject;

beforeAll(() => {
  const shimPath = buildShim();
  token = createTestToken({ label: 'engine-idle' });
  control = new ShimControl();
  applyShimEnv(control);
  // A fresh jest worker per file: the engine has not started yet (any call on a session starts it).
  setThreadCount(cap);
  setThreadIdleTimeout(idleMs);
  m = new PKCS11();
  m.load(shimPath);
  m.C_Initialize();
  const slot = findSlotByLabel(m, token.label);
  sessions = Array.from({ length: 16 }, () => m.C_OpenSession(slot, CKF_RW_SESSION));
  m.C_Login(sessions[0], CKU_USER, token.userPin);
  const pair = generateEcKeyPair(m, sessions[0], 'P-256');
  privateKey = pair.privateKey;
  publicKey = ecPublicKeyObject(m, sessions[0], pair.publicKey);
});

afterAll(() => {
  control?.clear();
  m?.close({ timeoutMs: 0 });
  control?.cleanup();
  token?.cleanup();
});

/** `count` signatures, one client per session; every one checked against the public key. */
async function signMany(count: number): Promise<void> {
  let left = count;
  await Promise.all(
    sessions.map(async (session) => {
      while (left > 0) {
        left--;
        const signature = await m.sign(session, CKM_ECDSA, privateKey, digest);
        if (!crypto.verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)) {
          throw new Error('a signature does not verify');
        }
      }
    }),
  );
}

/** Signs through calls that sleep 5 ms until more threads than cores run; returns how many. */
async function burstOfWaitingCalls(): Promise<number> {
  control.set({ 'delay.C_Sign': 5 });
  try {
    for (let round = 0; round < 20; round++) {
      await signMany(160);
      const { threads } = engineInfo();
      if (threads > cores) return threads;
    }
    throw new Error(`still ${engineInfo().threads} threads for ${cores} cores after 3,200 calls that wait`);
  } finally {
    control.unset('delay.C_Sign');
  }
}

/** Polls engineInfo() until `threads` reads `want`, for up to `ms`. */
async function threadsSettleAt(want: number, ms: number): Promise<number> {
  const until = Date.now() + ms;
  let threads = engineInfo().threads;
  while (threads !== want && Date.now() < until) {
    await sleep(20);
    threads = engineInfo().threads;
  }
  return threads;
}

/** The threads of this process named p11-worker (Linux). */
function workerThreadsInProc(): number {
  let count = 0;
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      if (fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === 'p11-worker') count++;
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return count;
}

test('setThreadIdleTimeout takes an integer from 1 ms to a day', () => {
  expect(() => setThreadIdleTimeout('300' as never)).toThrow(new TypeError(ulongArgMessage('setThreadIdleTimeout', 'ms')));
  expect(() => setThreadIdleTimeout(0)).toThrow(
    new TypeError("setThreadIdleTimeout: argument 'ms' must be an integer from 1 to 86400000 (a day)"),
  );
  expect(() => setThreadIdleTimeout(86_400_001)).toThrow(/^setThreadIdleTimeout: argument 'ms' must be an integer from 1 to 86400000/);
  expect(() => setThreadIdleTimeout(1.5)).toThrow(new TypeError(ulongArgMessage('setThreadIdleTimeout', 'ms')));
  expect(engineInfo().threadsRetired).toBe(0);
});

test('threads started for a burst end once idle for the timeout, down to one per core; the next burst starts them again', async () => {
  const first = await burstOfWaitingCalls();
  expect(first).toBeGreaterThan(cores);
  expect(first).toBeLessThanOrEqual(cap);
  // Counted from here: a thread may also have idled out during the burst (one started to watch
  // for long calls while the calls were still judged to compute).
  const retiredBefore = engineInfo().threadsRetired;

  const settled = await threadsSettleAt(cores, idleMs * 10);
  expect({ threads: settled, retired: engineInfo().threadsRetired - retiredBefore }).toEqual({ threads: cores, retired: first - cores });
  if (process.platform === 'linux') {
    // The threads really ended (each leaves a moment after it stops counting itself).
    const deadline = Date.now() + 2000;
    while (workerThreadsInProc() !== cores && Date.now() < deadline) await sleep(20);
    expect(workerThreadsInProc()).toBe(cores);
  }

  // Fast calls on the threads that stayed sign as before, and a second burst starts threads again.
  await signMany(200);
  const second = await burstOfWaitingCalls();
  expect(second).toBeGreaterThan(cores);
  const retiredAfterSecond = engineInfo().threadsRetired;
  expect({ threads: await threadsSettleAt(cores, idleMs * 10), retired: engineInfo().threadsRetired - retiredAfterSecond }).toEqual({
    threads: cores,
    retired: second - cores,
  });
});

test('one thread per core stays however long the engine idles', async () => {
  await sleep(idleMs * 3);
  expect(engineInfo().threads).toBe(cores);
  await signMany(64);
  expect(engineInfo().threads).toBeGreaterThanOrEqual(cores);
});

test('setThreadIdleTimeout is refused once the worker threads run', () => {
  expect(() => setThreadIdleTimeout(1000)).toThrow(new Error('setThreadIdleTimeout: the worker threads are already running'));
});
