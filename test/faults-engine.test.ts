/**
 * The addon's worker threads (native/async/engine.cc) under a hung module call: a call submitted
 * while another hangs must get a thread of its own (the engine may start at least 8), never wait
 * behind the hung one. The hang comes from the fault shim in front of SoftHSM2.
 */
import { CKF_RW_SESSION, CKU_USER, engineInfo, PKCS11, Pkcs11Error } from '../lib';
import type { Handle } from '../lib';
import { expectTypeError, isNativeError, thrownBy, ulongArgMessage } from './support/binding-helpers';
import { ShimControl, applyShimEnv, buildShim } from './support/shim';
import { TestToken, createTestToken } from './support/softhsm';

let token: TestToken;
let control: ShimControl;
let m: PKCS11;
let sessions: Handle[];

beforeAll(() => {
  const shimPath = buildShim();
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
  // Four calls on four sessions at once: the first hangs in the module, the others must run.
  const [hung, ...others] = sessions.map((session) => m.C_GenerateRandomAsync(session, 8));
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    Promise.all(others).then((results) => results.map((bytes) => bytes.length)),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still waiting after 2 s'), 2000))),
  ]);
  clearTimeout(timer);
  const stats = control.stats();
  control.unset('hang.C_GenerateRandom.count');
  await Promise.all([hung, ...others]);
  expect({ outcome, enteredTheModule: (stats.calls.C_GenerateRandom ?? 0) - before, hangs: stats.faults.hang }).toEqual({
    outcome: [8, 8, 8],
    enteredTheModule: 4,
    hangs: 1,
  });
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
