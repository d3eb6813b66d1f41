/**
 * The addon's worker threads (native/async/engine.cc) under a hung module call: a call submitted
 * while another hangs must get a thread of its own (the engine may start at least 8), never wait
 * behind the hung one. The hang comes from the fault shim in front of SoftHSM2.
 */
import * as path from 'path';
import { Worker } from 'worker_threads';

import { CKF_RW_SESSION, CKU_USER, engineInfo, PKCS11, Pkcs11Error } from '../lib';
import type { Handle } from '../lib';
import { expectTypeError, isNativeError, thrownBy, ulongArgMessage } from './support/binding-helpers';
import { ShimControl, applyShimEnv, buildShim } from './support/shim';
import { TestToken, createTestToken } from './support/softhsm';

let token: TestToken;
let control: ShimControl;
let shimPath: string;
let m: PKCS11;
let sessions: Handle[];

beforeAll(() => {
  shimPath = buildShim();
  token = createTestToken({ label: 'faults-engine' });
  control = new ShimControl();
  control.set({ 'hang.max': 10_000, 'stats.always': 1 });
  applyShimEnv(control);
  m = new PKCS11();
  m.load(shimPath);
  m.C_Initialize();
  const slot = m.C_GetSlotList(true).find((id) => m.C_GetTokenInfo(id).label === token.label);
  if (slot === undefined) throw new Error('token not found behind the shim');
  sessions = Array.from({ length: 4 }, () => m.C_OpenSession(slot, CKF_RW_SESSION));
  try {
    m.C_Login(sessions[0], CKU_USER, token.userPin);
  } catch (error) {
    if (!Pkcs11Error.is(error, 'CKR_USER_ALREADY_LOGGED_IN')) throw error;
  }
});

afterAll(() => {
  control?.clear();
  m?.close();
  control?.cleanup();
  token?.cleanup();
});

test('calls submitted back to back while one worker thread is idle each get a thread: a hung call holds up no other', async () => {
  // One call at a time: afterwards the engine has (in this fresh worker) one thread, idle.
  for (const session of sessions) await m.C_GenerateRandomAsync(session, 8);
  const before = control.stats().calls.C_GenerateRandom ?? 0;
  control.set({ 'hang.C_GenerateRandom.count': 1 });
  // Four calls on four sessions at once. One hangs in the module: whichever enters it first,
  // which is not always the first submitted when the machine has more cores than two (each call
  // then gets a thread at once, and they race into the module). The other three must run.
  const calls = sessions.map((session) => m.C_GenerateRandomAsync(session, 8));
  const lengths: Array<number | 'pending'> = calls.map(() => 'pending');
  let settled = 0;
  let timer: NodeJS.Timeout | undefined;
  const threeSettled = new Promise<void>((resolve) => {
    calls.forEach((call, index) =>
      call.then((bytes) => {
        lengths[index] = bytes.length;
        if (++settled === 3) resolve();
      }),
    );
  });
  const outcome = await Promise.race([
    threeSettled.then(() => 'three settled'),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still waiting after 2 s'), 2000))),
  ]);
  clearTimeout(timer);
  const stats = control.stats();
  const atThatPoint = [...lengths].sort();
  control.unset('hang.C_GenerateRandom.count');
  await Promise.all(calls);
  expect({
    outcome,
    lengths: atThatPoint,
    enteredTheModule: (stats.calls.C_GenerateRandom ?? 0) - before,
    hangs: stats.faults.hang,
  }).toEqual({
    outcome: 'three settled',
    lengths: [8, 8, 8, 'pending'],
    enteredTheModule: 4,
    hangs: 1,
  });
  expect(lengths).toEqual([8, 8, 8, 8]);
});

test('C_Finalize under a call hung in the module: refused after drainTimeoutMs (module still usable); abandonCalls finalises under it; a call queued behind it never runs in the new initialisation', async () => {
  const [first, second] = sessions;
  const capBefore = engineInfo().maxThreads;
  const hangsBefore = control.stats().faults.hang;
  control.set({ 'hang.C_GenerateRandom.count': 1 });
  const hung = m.C_GenerateRandomAsync(first, 8);
  const queued = m.C_GenerateRandomAsync(first, 8); // same session: waits behind the hung call
  await control.waitForStats((s) => s.faults.hang === hangsBefore + 1, 3000);
  const inFlight = m.callsInFlight;

  const begin = Date.now();
  let refusal: unknown;
  try {
    m.C_Finalize({ drainTimeoutMs: 200 });
  } catch (error) {
    refusal = error;
  }
  const waitedMs = Date.now() - begin;
  // Refused: nothing was finalised, and other sessions go on working.
  const stillWorks = (await m.C_GenerateRandomAsync(second, 4)).length;
  const finalizeCalls = control.stats().calls.C_Finalize ?? 0;

  m.C_Finalize({ drainTimeoutMs: 100, abandonCalls: true });
  const afterAbandon = { initialized: m.initialized, inFlight: m.callsInFlight, abandoned: m.callsAbandoned };
  const capWhileStuck = engineInfo().maxThreads;
  m.C_Initialize();
  const randomCalls = control.stats().calls.C_GenerateRandom ?? 0;
  control.unset('hang.C_GenerateRandom.count');
  const [hungOutcome, queuedOutcome] = await Promise.allSettled([hung, queued]);

  expect(inFlight).toBe(1);
  expect(isNativeError(refusal, 'Error')).toBe(true); // ours, not the module's: no CKR_ name
  expect(refusal).not.toBeInstanceOf(Pkcs11Error);
  expect(refusal).toMatchObject({ code: 'ERR_PKCS11_CALLS_IN_FLIGHT', function: 'C_Finalize', callsInFlight: 1 });
  expect((refusal as Error).message).toContain('1 call(s) still inside the module after 200 ms');
  expect(waitedMs).toBeGreaterThanOrEqual(190);
  expect(waitedMs).toBeLessThan(5000); // bounded: not until the hung call returns
  expect(stillWorks).toBe(4);
  expect(control.stats().calls.C_Finalize ?? 0).toBe(finalizeCalls + 1); // only the forced one reached the module
  expect(afterAbandon).toEqual({ initialized: false, inFlight: 0, abandoned: 1 });
  // The stuck thread was replaced (the cap rose by one), and once back it retired (the cap fell).
  expect(capWhileStuck).toBe(capBefore + 1);
  const afterReturn = engineInfo();
  expect(afterReturn.maxThreads).toBe(capBefore);
  expect(afterReturn.threads).toBeLessThanOrEqual(capBefore);
  // The hung call came back (its session died with the old initialisation) and left the count.
  expect(hungOutcome.status).toBe('rejected');
  expect(m.callsAbandoned).toBe(0);
  // The call queued behind it belonged to the old initialisation: refused, never sent.
  expect(queuedOutcome.status).toBe('rejected');
  expect((queuedOutcome as PromiseRejectedResult).reason).toMatchObject({ name: 'CKR_CRYPTOKI_NOT_INITIALIZED' });
  expect(control.stats().calls.C_GenerateRandom ?? 0).toBe(randomCalls);
});

test('C_Finalize options are checked: a TypeError names the option, and nothing is finalised', () => {
  expectTypeError(thrownBy(() => m.C_Finalize({ drainTimeoutMs: -1 })), ulongArgMessage('C_Finalize', 'options.drainTimeoutMs').replace(/ \(a number.*$/, ''));
  expectTypeError(thrownBy(() => m.C_Finalize({ abandonCalls: 'yes' as unknown as boolean })), "C_Finalize: argument 'options.abandonCalls' must be a boolean");
  expectTypeError(thrownBy(() => m.C_Finalize(42 as unknown as object)), /^C_Finalize: argument 'options' must be/);
  expect(m.initialized).toBe(true);
});

// In a worker_thread, for an engine of its own that has run one call at a time (one thread,
// idle). The main thread arms the hang between the worker's 'ready' and its calls.
const everyThreadHangsScript = `
const { parentPort, workerData: w } = require('worker_threads');
const lib = require(w.lib);
(async () => {
  const m = new lib.PKCS11();
  m.load(w.shim);
  m.C_Initialize();
  const slot = m.C_GetSlotList(true).find((id) => m.C_GetTokenInfo(id).label === w.label);
  await m.C_GenerateRandomAsync(m.C_OpenSession(slot, lib.CKF_RW_SESSION), 8);
  const { callLimit, maxThreads, threads } = lib.engineInfo();
  const sessions = Array.from({ length: callLimit + 1 }, () => m.C_OpenSession(slot, lib.CKF_RW_SESSION));
  parentPort.postMessage({ callLimit, maxThreads, threads });
  await new Promise((resolve) => parentPort.once('message', resolve));
  const calls = sessions.map((session) => m.C_GenerateRandomAsync(session, 8));
  let settled = 0;
  calls.forEach((call) => call.then(() => settled++));
  const begin = Date.now();
  while (settled === 0 && Date.now() - begin < 2000) await new Promise((resolve) => setTimeout(resolve, 5));
  parentPort.postMessage({ settledWithin2s: settled });
  await new Promise((resolve) => parentPort.once('message', resolve));
  await Promise.all(calls);
  m.close();
  parentPort.postMessage({ done: true });
})().catch((error) => parentPort.postMessage({ error: String((error && error.stack) || error) }));
`;

test('as many calls hang as may run at once, with one more queued: a thread that starts for it runs it', async () => {
  const worker = new Worker(everyThreadHangsScript, {
    eval: true,
    workerData: { lib: path.resolve(__dirname, '..', 'dist', 'lib', 'index.js'), shim: shimPath, label: token.label },
  });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      worker.once('message', (message) => (message.error ? reject(new Error(message.error)) : resolve(message)));
      worker.once('error', reject);
    });
  try {
    const engine = (await next()) as { callLimit: number; maxThreads: number; threads: number };
    // Where the engine cannot tell computing from waiting (not Linux) every thread may run: the
    // limit is the cap, and no call waits behind hung ones while a thread is left.
    const limited = engine.callLimit < engine.maxThreads;
    const hangsBefore = control.stats().faults.hang;
    // Every call the limit lets run hangs; the engine has room for a thread beyond the limit.
    if (limited) control.set({ 'hang.C_GenerateRandom.count': engine.callLimit });
    worker.postMessage('go');
    const { settledWithin2s } = await next();
    const hangs = control.stats().faults.hang - hangsBefore;
    control.unset('hang.C_GenerateRandom.count');
    worker.postMessage('release');
    await next();
    expect({ threadsBefore: engine.threads, hangs, settledWithin2s }).toEqual({
      threadsBefore: 1,
      hangs: limited ? engine.callLimit : 0,
      settledWithin2s: limited ? 1 : expect.any(Number),
    });
    if (!limited) expect(process.platform).not.toBe('linux');
  } finally {
    await worker.terminate();
  }
});
