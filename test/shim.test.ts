/**
 * The fault-injecting PKCS#11 module (test/shim/), exercised through the binding against a
 * real SoftHSM2 token. Each test loads the shim with a fresh control file, so its counters start
 * at zero; the module is closed (finalised) after every test.
 */
import { spawn } from 'child_process';
import * as crypto from 'crypto';

import {
  CKA_CLASS,
  CKA_EC_PARAMS,
  CKA_EC_POINT,
  CKA_SIGN,
  CKA_VERIFY,
  CKF_OS_LOCKING_OK,
  CKF_RW_SESSION,
  CKR_ARGUMENTS_BAD,
  CKR_MUTEX_BAD,
  CKR_MUTEX_NOT_LOCKED,
  CKR_OK,
  CKM_EC_KEY_PAIR_GEN,
  CKM_ECDSA,
  CKM_SHA256,
  CKO_PRIVATE_KEY,
  CKU_USER,
  PKCS11,
  Pkcs11Error,
} from '../lib';
import type { Handle } from '../lib';
import { ShimControl, ShimStats, applyShimEnv, buildShim } from './support/shim';
import { TestToken, createTestToken } from './support/softhsm';

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const TWO_POW_53 = 2n ** 53n;
const BIG_OFFSET = '0x7000000000000000';

let shimPath: string;
let token: TestToken;

interface Loaded {
  m: PKCS11;
  control: ShimControl;
}
const loaded: Loaded[] = [];

beforeAll(() => {
  shimPath = buildShim();
  token = createTestToken({ label: 'shim-test' });
});

afterEach(() => {
  for (const { m, control } of loaded.splice(0)) {
    try {
      m.close();
    } catch {
      // a test may have closed it already
    }
    control.cleanup();
  }
});

afterAll(() => token?.cleanup());

/** Loads the shim with a fresh control file holding `values`, and (by default) initialises it. */
function start(values: Record<string, string | number> = {}, initialize = true): Loaded {
  const control = new ShimControl();
  control.set(values);
  applyShimEnv(control);
  const m = new PKCS11();
  const entry = { m, control };
  loaded.push(entry);
  m.load(shimPath);
  if (initialize) m.C_Initialize();
  return entry;
}

function tokenSlot(m: PKCS11): Handle {
  for (const slot of m.C_GetSlotList(true)) {
    if (m.C_GetTokenInfo(slot).label === token.label) return slot;
  }
  throw new Error(`token '${token.label}' not found behind the shim`);
}

function userSession(m: PKCS11, slot: Handle = tokenSlot(m)): Handle {
  const session = m.C_OpenSession(slot, CKF_RW_SESSION);
  try {
    m.C_Login(session, CKU_USER, token.userPin);
  } catch (err) {
    if (!Pkcs11Error.is(err, 'CKR_USER_ALREADY_LOGGED_IN')) throw err;
  }
  return session;
}

function ecKeyPair(m: PKCS11, session: Handle): { publicKey: Handle; privateKey: Handle } {
  return m.C_GenerateKeyPair(
    session,
    CKM_EC_KEY_PAIR_GEN,
    [
      { type: CKA_EC_PARAMS, value: P256 },
      { type: CKA_VERIFY, value: true },
    ],
    [{ type: CKA_SIGN, value: true }],
  );
}

/** The Pkcs11Error `fn` throws (fails the test when it throws nothing or something else). */
function errorOf(fn: () => unknown): Pkcs11Error {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(Pkcs11Error);
    return err as Pkcs11Error;
  }
  throw new Error('expected a Pkcs11Error, but the call succeeded');
}

function settledState(promise: Promise<unknown>): Promise<'pending' | 'settled'> {
  const marker = Symbol('pending');
  return Promise.race([promise.then(() => 'settled' as const, () => 'settled' as const), Promise.resolve(marker)]).then(
    (value) => (value === marker ? 'pending' : 'settled'),
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('fault shim: forwarding', () => {
  test('forwards to SoftHSM2: login and C_GenerateRandom work, calls are counted', () => {
    const { m, control } = start();
    expect(m.C_GetInfo().manufacturerID).toMatch(/SoftHSM/);
    expect(m.C_GetFunctionList()).toEqual({ version: { major: 2, minor: 40 }, entryPoint: 'C_GetFunctionList' });
    const session = userSession(m);
    const random = m.C_GenerateRandom(session, 32);
    expect(random.length).toBe(32);
    m.C_CloseSession(session);

    const stats = control.stats();
    expect(stats.pid).toBe(process.pid);
    expect(stats.servedVia).toBe('C_GetFunctionList');
    expect(stats.targetInitialized).toBe(true);
    expect(stats.calls).toMatchObject({ C_Initialize: 1, C_Login: 1, C_GenerateRandom: 1, C_CloseSession: 1 });
    // The binding asks for C_GetInterface first and falls back when it fails.
    expect(stats.calls.C_GetInterface).toBe(1);
    expect(stats.calls.C_GetFunctionList).toBe(1);
    expect(stats.faults.total).toBe(0);
    expect(stats.controlWarnings).toEqual([]);
  });

  test('control lines it does not understand show up as warnings', () => {
    const { m, control } = start({ 'fail.C_Bogus': 'CKR_DEVICE_ERROR', nonsense: 1, 'fail.C_Login': 'CKR_NOPE' });
    m.C_CloseSession(m.C_OpenSession(tokenSlot(m)));
    expect(control.stats().controlWarnings.sort()).toEqual([
      'fail.C_Bogus: unknown function name',
      'fail.C_Login: not a CKR_ name or number',
      'nonsense: unknown key',
    ]);
  });
});

describe('fault shim: fail.<fn>', () => {
  test('fail.C_Login returns the CKR given (by name or number) without forwarding', () => {
    const { m, control } = start({ 'fail.C_Login': 'CKR_PIN_LOCKED' });
    const session = m.C_OpenSession(tokenSlot(m), CKF_RW_SESSION);

    const locked = errorOf(() => m.C_Login(session, CKU_USER, token.userPin));
    expect(locked.name).toBe('CKR_PIN_LOCKED');
    expect(locked.code).toBe(0xa4);
    expect(locked.function).toBe('C_Login');

    control.set({ 'fail.C_Login': '0xA0' });
    const incorrect = errorOf(() => m.C_Login(session, CKU_USER, token.userPin));
    expect(incorrect.name).toBe('CKR_PIN_INCORRECT');

    control.unset('fail.C_Login');
    m.C_Login(session, CKU_USER, token.userPin);
    expect(m.C_GetSessionInfo(session).state).toBe(3); // CKS_RW_USER_FUNCTIONS: the real login happened
    m.C_CloseSession(session); // statistics are written on session close (and on faults)

    const stats = control.stats();
    expect(stats.calls.C_Login).toBe(3);
    expect(stats.faults).toMatchObject({ total: 2, fail: 2 });
    expect(stats.faultsByFunction).toEqual({ C_Login: 2 });
  });

  test('fail.<fn>.after=N and .count=K fail calls N+1 … N+K only', async () => {
    const { m, control } = start({
      'fail.C_GenerateRandom': 'CKR_DEVICE_ERROR',
      'fail.C_GenerateRandom.after': 2,
      'fail.C_GenerateRandom.count': 2,
    });
    const session = userSession(m);
    const outcomes: string[] = [];
    for (let i = 0; i < 6; i++) {
      try {
        // Alternate sync and async entry points: both go through the same module call.
        const bytes = i % 2 === 0 ? m.C_GenerateRandom(session, 8) : await m.C_GenerateRandomAsync(session, 8);
        outcomes.push(`ok:${bytes.length}`);
      } catch (err) {
        outcomes.push((err as Pkcs11Error).name);
      }
    }
    expect(outcomes).toEqual(['ok:8', 'ok:8', 'CKR_DEVICE_ERROR', 'CKR_DEVICE_ERROR', 'ok:8', 'ok:8']);
    expect(control.stats().faultsByFunction).toEqual({ C_GenerateRandom: 2 });

    // Changing the rule restarts its window: after=1 counts successes from now on.
    control.set({ 'fail.C_GenerateRandom.after': 1, 'fail.C_GenerateRandom.count': 1 });
    expect(m.C_GenerateRandom(session, 4).length).toBe(4);
    expect(errorOf(() => m.C_GenerateRandom(session, 4)).name).toBe('CKR_DEVICE_ERROR');
    expect(m.C_GenerateRandom(session, 4).length).toBe(4);
  });

  test('fail.<fn>.forward=1: the call reaches the target, its answer is replaced (a failed C_Sign ends the operation)', () => {
    const { m, control } = start({ 'stats.always': 1 });
    const session = userSession(m);
    const { publicKey, privateKey } = ecKeyPair(m, session);
    const data = crypto.createHash('sha256').update('forward').digest();

    // Without .forward the target never sees the C_Sign: its signing operation stays active.
    control.set({ 'fail.C_Sign': 'CKR_DEVICE_ERROR', 'fail.C_Sign.count': 1 });
    expect(errorOf(() => m.signSync(session, CKM_ECDSA, privateKey, data)).name).toBe('CKR_DEVICE_ERROR');
    expect(errorOf(() => m.signSync(session, CKM_ECDSA, privateKey, data)).name).toBe('CKR_OPERATION_ACTIVE');

    // With .forward the target signs, the caller is told CKR_DEVICE_ERROR, and the operation is
    // over, as the standard says of a failed C_Sign: the next one starts cleanly.
    const second = m.C_OpenSession(tokenSlot(m), CKF_RW_SESSION);
    control.set({ 'fail.C_Sign': 'CKR_DEVICE_ERROR', 'fail.C_Sign.count': 1, 'fail.C_Sign.forward': 1 });
    const before = control.stats();
    expect(errorOf(() => m.signSync(second, CKM_ECDSA, privateKey, data)).name).toBe('CKR_DEVICE_ERROR');
    const signature = m.signSync(second, CKM_ECDSA, privateKey, data);
    expect(m.verifySync(second, CKM_ECDSA, publicKey, data, signature)).toBe(true);
    const stats = control.stats();
    expect(stats.calls.C_Sign - before.calls.C_Sign).toBe(2);
    expect(stats.calls.C_SignInit - before.calls.C_SignInit).toBe(2);
    expect(stats.faultsByFunction.C_Sign).toBe(2);

    // .after counts only calls answered CKR_OK: a forwarded fault is not one.
    control.set({ 'fail.C_Sign': 'CKR_GENERAL_ERROR', 'fail.C_Sign.after': 1, 'fail.C_Sign.count': 1 });
    const outcomes = [0, 1, 2].map(() => {
      try {
        return `ok:${m.signSync(second, CKM_ECDSA, privateKey, data).length}`;
      } catch (err) {
        return (err as Pkcs11Error).name;
      }
    });
    expect(outcomes).toEqual(['ok:64', 'CKR_GENERAL_ERROR', 'ok:64']);
    expect(control.stats().controlWarnings).toEqual([]);
  });

  test('fail.C_Initialize: the error surfaces and a second C_Initialize succeeds', () => {
    const { m, control } = start({ 'fail.C_Initialize': 'CKR_DEVICE_ERROR', 'fail.C_Initialize.count': 1 }, false);
    const error = errorOf(() => m.C_Initialize());
    expect(error.name).toBe('CKR_DEVICE_ERROR');
    expect(error.function).toBe('C_Initialize');
    expect(m.initialized).toBe(false);
    m.C_Initialize();
    expect(m.initialized).toBe(true);
    userSession(m);
    expect(control.stats().calls.C_Initialize).toBe(2);
  });
});

describe('fault shim: handles.offset', () => {
  test('slot IDs, session and object handles above 2^53 come back as bigint and work', async () => {
    const { m, control } = start({ 'handles.offset': BIG_OFFSET });
    const slot = tokenSlot(m);
    expect(typeof slot).toBe('bigint');
    expect(slot as bigint).toBeGreaterThan(TWO_POW_53);
    expect(m.C_GetSlotInfo(slot).slotDescription).toMatch(/SoftHSM/);
    expect(m.C_GetMechanismList(slot)).toContain(CKM_ECDSA);

    const session = userSession(m, slot);
    expect(typeof session).toBe('bigint');
    expect(session as bigint).toBeGreaterThan(TWO_POW_53);
    expect(m.C_GetSessionInfo(session).slotID).toBe(slot);

    const { publicKey, privateKey } = ecKeyPair(m, session);
    for (const key of [publicKey, privateKey]) {
      expect(typeof key).toBe('bigint');
      expect(key as bigint).toBeGreaterThan(TWO_POW_53);
    }
    const data = Buffer.alloc(32, 1);
    const signature = m.signSync(session, CKM_ECDSA, privateKey, data);
    expect(signature.length).toBe(64);
    expect(m.verifySync(session, CKM_ECDSA, publicKey, data, signature)).toBe(true);
    expect((await m.sign(session, CKM_ECDSA, privateKey, data)).length).toBe(64);

    const [point] = m.C_GetAttributeValue(session, publicKey, [CKA_EC_POINT]);
    expect(Buffer.isBuffer(point.value)).toBe(true);
    const found = m.findObjectsSync(session, [{ type: CKA_CLASS, value: CKO_PRIVATE_KEY }]);
    expect(found).toContain(privateKey);

    m.C_CloseAllSessions(slot);
    const stats = control.stats();
    expect(stats.handleOffset).toBe(BIG_OFFSET);
    expect(stats.openSessions).toBe(0);
    expect(stats.calls.C_CloseAllSessions).toBe(1);
  });
});

describe('fault shim: lie.buffer', () => {
  test('the first output call of an operation claims "too small"; the retry gets exact lengths', async () => {
    const { m, control } = start({ 'lie.buffer': 1 });
    const session = userSession(m);
    const { publicKey, privateKey } = ecKeyPair(m, session);
    const data = Buffer.alloc(32, 7);

    const signature = m.signSync(session, CKM_ECDSA, privateKey, data);
    expect(signature.length).toBe(64);
    expect(m.verifySync(session, CKM_ECDSA, publicKey, data, signature)).toBe(true);

    m.C_SignInit(session, CKM_ECDSA, privateKey);
    expect(m.C_Sign(session, data).length).toBe(64);
    expect((await m.sign(session, CKM_ECDSA, privateKey, data)).length).toBe(64);

    const [params] = m.C_GetAttributeValue(session, publicKey, [CKA_EC_PARAMS]);
    expect(params.value).toEqual(P256);

    const digest = m.digestSync(session, CKM_SHA256, Buffer.from('abc'));
    expect(digest).toEqual(crypto.createHash('sha256').update('abc').digest());

    m.C_CloseSession(session);
    const stats = control.stats();
    expect(stats.faultsByFunction).toMatchObject({ C_Sign: 3, C_GetAttributeValue: 1, C_Digest: 1 });
    expect(stats.faults.lieBuffer).toBe(stats.faults.total);
  });
});

describe('fault shim: statistics', () => {
  test('open sessions: opened minus closed one by one, per slot and by C_Finalize', () => {
    const { m, control } = start();
    const slot = tokenSlot(m);
    const sessions = [0, 1, 2].map(() => m.C_OpenSession(slot));
    m.C_CloseSession(sessions[0]);
    expect(control.stats()).toMatchObject({ openSessions: 2, sessionsOpened: 3, sessionsClosed: 1 });

    m.C_CloseAllSessions(slot);
    expect(control.stats()).toMatchObject({ openSessions: 0, sessionsOpened: 3, sessionsClosed: 3 });

    m.C_OpenSession(slot);
    m.C_OpenSession(slot);
    expect(control.stats().openSessions).toBe(2);
    m.C_Finalize();
    const stats = control.stats();
    expect(stats).toMatchObject({ openSessions: 0, sessionsOpened: 5, sessionsClosed: 5, targetInitialized: false });
    expect(stats.calls).toMatchObject({ C_OpenSession: 5, C_CloseSession: 1, C_CloseAllSessions: 1, C_Finalize: 1 });
  });
});

describe('fault shim: C_Initialize faults', () => {
  test('initialize.cantlock: the binding retries without CKF_OS_LOCKING_OK and serialises calls', async () => {
    const { m, control } = start({ 'initialize.cantlock': 1 });
    expect(m.initialized).toBe(true);
    const session = userSession(m);
    const results = await Promise.all(Array.from({ length: 8 }, () => m.C_GenerateRandomAsync(session, 16)));
    expect(results.map((r) => r.length)).toEqual(Array(8).fill(16));

    const stats = control.stats();
    // First with the binding's mutex functions, then with the module's own locks, then neither.
    expect(stats.faults.cantLock).toBe(2);
    expect(stats.calls.C_Initialize).toBe(3);
    expect(stats.initializeFlags).toEqual([CKF_OS_LOCKING_OK, CKF_OS_LOCKING_OK, 0]);
    expect(stats.initializeMutexes).toEqual([true, false, false]);
    expect(m.locking).toEqual({ serialized: true, spinningMutexes: false, spinningMutexesLive: expect.any(Number) });
  });

  test('initialize.refusemutexes: a module that refuses our mutex functions keeps its own locks, not serialised', async () => {
    const { m, control } = start({ 'initialize.refusemutexes': 1 });
    expect(m.locking).toMatchObject({ serialized: false, spinningMutexes: false });
    const session = userSession(m);
    const results = await Promise.all(Array.from({ length: 8 }, () => m.C_GenerateRandomAsync(session, 16)));
    expect(results.map((r) => r.length)).toEqual(Array(8).fill(16));

    const stats = control.stats();
    expect(stats.faults.cantLock).toBe(1);
    expect(stats.initializeFlags).toEqual([CKF_OS_LOCKING_OK, CKF_OS_LOCKING_OK]);
    expect(stats.initializeMutexes).toEqual([true, false]);
  });

  test('initialize.exercisemutexes: the binding\'s mutex functions answer as PKCS#11 says and exclude each other', () => {
    const { m, control } = start({ 'initialize.exercisemutexes': 1 });
    expect(m.locking).toMatchObject({ serialized: false, spinningMutexes: true });
    const stats = control.stats();
    expect(stats.initializeMutexes).toEqual([true]);
    expect(stats.mutexCheck).toEqual({
      createNull: CKR_ARGUMENTS_BAD,
      lockNull: CKR_MUTEX_BAD,
      unlockNull: CKR_MUTEX_BAD,
      destroyNull: CKR_MUTEX_BAD,
      create: CKR_OK,
      unlockUnlocked: CKR_MUTEX_NOT_LOCKED,
      lock: CKR_OK,
      unlock: CKR_OK,
      unlockAgain: CKR_MUTEX_NOT_LOCKED,
      threads: 2,
      // 2 × 200,000 increments, each a separate read and write under the lock: any overlap loses some.
      counter: 400000,
      counterExpected: 400000,
      counterError: CKR_OK,
      destroy: CKR_OK,
    });
  });

  test('spinningMutexes: false: C_Initialize passes no mutex functions, so the module uses its own locks', () => {
    const control = new ShimControl();
    applyShimEnv(control);
    const m = new PKCS11();
    loaded.push({ m, control });
    m.load(shimPath);
    m.C_Initialize({ spinningMutexes: false });
    expect(m.locking).toMatchObject({ serialized: false, spinningMutexes: false });
    expect(control.stats().initializeMutexes).toEqual([false]);
    m.C_Finalize();
    // Without CKF_OS_LOCKING_OK the binding promises single-threaded use: no mutex functions either.
    m.C_Initialize({ flags: 0 });
    expect(m.locking).toMatchObject({ serialized: true, spinningMutexes: false });
    expect(control.stats().initializeMutexes).toEqual([false, false]);
  });

  test('initialize.already: C_Initialize succeeds as a shared initialisation', () => {
    const { m, control } = start({ 'initialize.already': 1 });
    expect(m.initialized).toBe(true);
    const session = userSession(m);
    expect(m.C_GenerateRandom(session, 8).length).toBe(8);
    const stats = control.stats();
    expect(stats.faults.alreadyInitialized).toBe(1);
    expect(stats.targetInitialized).toBe(true);
    // The session stays open: the binding does not finalise a module it was told someone else
    // initialised, so close() leaves the target initialised (the next test checks the cleanup).
  });

  test('after an initialize.already lie, the next C_Initialize starts the target afresh', () => {
    const { m, control } = start();
    const session = userSession(m);
    expect(m.C_GenerateRandom(session, 8).length).toBe(8);
    const stats = control.stats();
    // The session left open by the previous test was closed by the shim's own C_Finalize.
    expect(stats).toMatchObject({ openSessions: 1, sessionsOpened: 1, sessionsClosed: 1, targetInitialized: true });
    expect(stats.calls.C_Initialize).toBe(1);
  });
});

describe('fault shim: C_GetInterface', () => {
  test('interface=1: the binding takes the function list from C_GetInterface', () => {
    const { m, control } = start({ interface: 1 });
    expect(m.C_GetFunctionList()).toEqual({ version: { major: 2, minor: 40 }, entryPoint: 'C_GetInterface' });
    m.C_CloseSession(userSession(m));
    const stats = control.stats();
    expect(stats.servedVia).toBe('C_GetInterface');
    expect(stats.calls.C_GetInterface).toBe(1);
    expect(stats.calls.C_GetFunctionList).toBeUndefined();
  });
});

describe('fault shim: delay, hang, down', () => {
  test('delay.<fn>: an async call takes at least the delay and does not block the JS thread', async () => {
    const { m, control } = start({ 'delay.C_GenerateRandom': 300 });
    const session = userSession(m);
    const begin = Date.now();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 20);
    try {
      const bytes = await m.C_GenerateRandomAsync(session, 16);
      expect(bytes.length).toBe(16);
    } finally {
      clearInterval(timer);
    }
    expect(Date.now() - begin).toBeGreaterThanOrEqual(280);
    // About 15 on a quiet machine; a call that blocked the JS thread would leave 0 or 1. (Five
    // was the bound, which a busy machine delaying each timer by 40 ms could miss.)
    expect(ticks).toBeGreaterThanOrEqual(2);
    expect(control.stats().faults.delay).toBe(1);
  });

  test('delay.all applies to every function', () => {
    const { m } = start({ 'delay.all': 50 });
    const begin = Date.now();
    m.C_GetInfo();
    expect(Date.now() - begin).toBeGreaterThanOrEqual(45);
  });

  test('hang.<fn>: an async call stays pending until the control file releases it', async () => {
    const { m, control } = start({ 'hang.C_GenerateRandom': 1, 'hang.max': 20000 });
    const session = userSession(m);
    const pending = m.C_GenerateRandomAsync(session, 16);
    await control.waitForStats((s: ShimStats) => s.faults.hang === 1);
    await sleep(100);
    expect(await settledState(pending)).toBe('pending');
    // Other calls still go through while one hangs (in another session: the binding runs the
    // calls of one session one at a time, so a call of the hung session would wait for it).
    const other = m.C_OpenSession(tokenSlot(m), CKF_RW_SESSION);
    expect(m.C_GetSessionInfo(other).slotID).toBe(tokenSlot(m));

    control.set({ 'hang.C_GenerateRandom': 0 });
    const bytes = await pending;
    expect(bytes.length).toBe(16);
  });

  test('hang.<fn>.count=K: only the next K calls hang, the others go through meanwhile', async () => {
    const { m, control } = start({ 'hang.C_GenerateRandom.count': 2, 'hang.max': 20000, 'stats.always': 1 });
    const session = userSession(m);
    const slot = tokenSlot(m);
    const other = m.C_OpenSession(slot, CKF_RW_SESSION);
    const third = m.C_OpenSession(slot, CKF_RW_SESSION);
    // One after the other: each call is inside the module before the next is submitted.
    const hung = [m.C_GenerateRandomAsync(session, 16)];
    await control.waitForStats((s: ShimStats) => s.faults.hang === 1);
    hung.push(m.C_GenerateRandomAsync(other, 16));
    await control.waitForStats((s: ShimStats) => s.faults.hang === 2);
    // The count is spent: later calls (sync and async) go through while the two still hang, and
    // an unrelated change of the control file does not restart the count.
    control.set({ 'delay.C_GetInfo': 0 });
    expect(m.C_GenerateRandom(third, 8).length).toBe(8);
    const passing = await Promise.all([1, 2, 3].map(() => m.C_GenerateRandomAsync(third, 4)));
    expect(passing.map((bytes) => bytes.length)).toEqual([4, 4, 4]);
    expect(await settledState(hung[0])).toBe('pending');
    expect(await settledState(hung[1])).toBe('pending');
    expect(control.stats().faults.hang).toBe(2);

    control.unset('hang.C_GenerateRandom.count');
    expect((await Promise.all(hung)).map((bytes) => bytes.length)).toEqual([16, 16]);
    // Switching the rule on again restarts its count: one more call hangs, then none.
    control.set({ 'hang.C_GenerateRandom.count': 1 });
    const again = m.C_GenerateRandomAsync(session, 16);
    await control.waitForStats((s: ShimStats) => s.faults.hang === 3);
    expect(m.C_GenerateRandom(other, 8).length).toBe(8);
    expect(await settledState(again)).toBe('pending');
    // hang.<fn>=0 switches the rule off whatever the count says, releasing the hung call.
    control.set({ 'hang.C_GenerateRandom': 0 });
    expect((await again).length).toBe(16);
    const stats = control.stats();
    expect(stats.faults.hang).toBe(3);
    expect(stats.calls.C_GenerateRandom).toBe(8);
    expect(stats.controlWarnings).toEqual([]);
  });

  test('close() waits for a hung call to return before finalising', async () => {
    const { m, control } = start({ 'hang.C_GenerateRandom': 1, 'hang.max': 20000 });
    const session = userSession(m);
    const pending = m.C_GenerateRandomAsync(session, 16);
    await control.waitForStats((s: ShimStats) => s.faults.hang === 1);
    // close() blocks this thread until the call is out of the module, so the release has to
    // come from another process.
    const script = 'sleep 0.3 && printf "generation=0\\n" > "$1.tmp-release" && mv "$1.tmp-release" "$1"';
    const release = spawn('sh', ['-c', script, 'sh', control.controlPath], { stdio: 'ignore' });
    const begin = Date.now();
    m.close();
    const blockedFor = Date.now() - begin;
    expect(blockedFor).toBeGreaterThanOrEqual(250);
    expect((await pending).length).toBe(16);
    await new Promise((resolve) => release.on('exit', resolve));
    const stats = control.stats();
    expect(stats.calls.C_Finalize).toBe(1);
    expect(stats.openSessions).toBe(0);
  });

  test('down=1: every call answers CKR_DEVICE_REMOVED (or down.rv) until it is removed', async () => {
    const { m, control } = start();
    const slot = tokenSlot(m);
    const session = userSession(m, slot);

    control.set({ down: 1 });
    expect(errorOf(() => m.C_GenerateRandom(session, 8)).name).toBe('CKR_DEVICE_REMOVED');
    expect(errorOf(() => m.C_GetSlotList(true)).name).toBe('CKR_DEVICE_REMOVED');
    await expect(m.C_GenerateRandomAsync(session, 8)).rejects.toMatchObject({
      name: 'CKR_DEVICE_REMOVED',
      function: 'C_GenerateRandom',
    });

    control.set({ 'down.rv': 'CKR_TOKEN_NOT_PRESENT' });
    expect(errorOf(() => m.C_GetTokenInfo(slot)).name).toBe('CKR_TOKEN_NOT_PRESENT');

    control.unset('down', 'down.rv');
    expect(m.C_GenerateRandom(session, 8).length).toBe(8);
    expect(control.stats().faults.down).toBe(4);
  });

  test('down=1 still lets C_Finalize through', () => {
    const { m, control } = start();
    m.C_OpenSession(tokenSlot(m));
    control.set({ down: 1 });
    m.C_Finalize();
    expect(control.stats()).toMatchObject({ targetInitialized: false, openSessions: 0 });
  });
});

describe('fault shim: concurrency', () => {
  test('parallel signing through offset handles, lies and delays', async () => {
    const { m, control } = start({ 'handles.offset': BIG_OFFSET, 'lie.buffer': 1, 'delay.all': 2 });
    const slot = tokenSlot(m);
    const first = userSession(m, slot);
    const { publicKey, privateKey } = ecKeyPair(m, first);
    const sessions = [first, ...[1, 2, 3].map(() => m.C_OpenSession(slot, CKF_RW_SESSION))];
    const data = crypto.randomBytes(32);
    // One operation at a time per session (PKCS#11 rule); the four sessions run in parallel.
    const chains = sessions.map(async (session) => {
      const out: Buffer[] = [];
      for (let i = 0; i < 6; i++) out.push(await m.sign(session, CKM_ECDSA, privateKey, data));
      return out;
    });
    const signatures = (await Promise.all(chains)).flat();
    expect(signatures.length).toBe(24);
    for (const signature of signatures) {
      expect(signature.length).toBe(64);
      expect(m.verifySync(first, CKM_ECDSA, publicKey, data, signature)).toBe(true);
    }
    for (const session of sessions) m.C_CloseSession(session);
    const stats = control.stats();
    expect(stats.faults.lieBuffer).toBe(24); // one lie per sign(); its retry went through
    expect(stats.faults.delay).toBe(stats.faults.total - 24);
    expect(stats.openSessions).toBe(0);
  });
});
