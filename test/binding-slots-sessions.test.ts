/**
 * Slots, tokens, mechanisms, token and PIN initialisation, login state and sessions through the
 * raw binding, on a fresh SoftHSM2 token (plus tokens this file initialises in SoftHSM2's free
 * slot). The file's module is opened without logging in, so login state is under test control.
 */
import { spawnSync } from 'child_process';
import * as crypto from 'crypto';

import {
  C,
  Handle,
  addonPath,
  expectPkcs11Error,
  expectRejectsPkcs11,
  expectThrowsPkcs11,
  expectTypeError,
  generateEcKeyPair,
  openTestModule,
  TestModule,
  thrownBy,
} from './support/binding-helpers';

const tm: TestModule = openTestModule({ login: false });
const { p11, token } = tm;
afterAll(() => tm.close());

const has = (flags: number | bigint, flag: number): boolean => (BigInt(flags) & BigInt(flag)) === BigInt(flag);
const UNAVAILABLE = 2n ** 64n - 1n; // CK_UNAVAILABLE_INFORMATION on LP64
/** Slots whose token is present but not initialised (SoftHSM2 always keeps one). */
const freeSlots = (): Handle[] =>
  p11.C_GetSlotList(true).filter((slot) => !has(p11.C_GetTokenInfo(slot).flags, C.CKF_TOKEN_INITIALIZED));

/** Logs the application out if it is logged in (login state is shared by all sessions of a token). */
function loggedOut(session: Handle): Handle {
  try {
    p11.C_Logout(session);
  } catch (error) {
    expectPkcs11Error(error, 'CKR_USER_NOT_LOGGED_IN', 'C_Logout');
  }
  return session;
}

describe('slots and tokens', () => {
  test('C_GetSlotList: the token slot is present; tokenPresent=true is a subset of all slots', () => {
    const all = p11.C_GetSlotList(false);
    const present = p11.C_GetSlotList(true);
    expect(p11.C_GetSlotList()).toEqual(all);
    expect(present).toContain(tm.slot);
    for (const slot of present) expect(all).toContain(slot);
    for (const slot of all) {
      expect(typeof slot === 'number' || typeof slot === 'bigint').toBe(true);
      expect(has(p11.C_GetSlotInfo(slot).flags, C.CKF_TOKEN_PRESENT)).toBe(present.includes(slot));
    }
    // SoftHSM2: the initialised token plus its always-free slot.
    expect(freeSlots().length).toBeGreaterThanOrEqual(1);
  });

  test('C_GetSlotInfo / C_GetTokenInfo of the fresh token', () => {
    const slotInfo = p11.C_GetSlotInfo(tm.slot);
    expect(Object.keys(slotInfo).sort()).toEqual(['firmwareVersion', 'flags', 'hardwareVersion', 'manufacturerID', 'slotDescription']);
    expect(slotInfo.manufacturerID).toBe('SoftHSM project');
    // Blank padding is removed.
    expect(slotInfo.slotDescription).toBe(slotInfo.slotDescription.trimEnd());
    expect(slotInfo.slotDescription.length).toBeGreaterThan(0);
    expect(slotInfo.hardwareVersion).toEqual({ major: expect.any(Number), minor: expect.any(Number) });

    const info = p11.C_GetTokenInfo(tm.slot);
    expect(info.label).toBe(token.label);
    expect(info.model).toBe('SoftHSM v2');
    expect(info.serialNumber).toMatch(/^[0-9a-f]{16}$/);
    for (const flag of [C.CKF_TOKEN_INITIALIZED, C.CKF_USER_PIN_INITIALIZED, C.CKF_LOGIN_REQUIRED, C.CKF_RNG]) {
      expect(has(info.flags, flag)).toBe(true);
    }
    expect(Number(info.minPinLen)).toBeLessThanOrEqual(token.userPin.length);
    expect(Number(info.maxPinLen)).toBeGreaterThanOrEqual(token.userPin.length);
    // CK_EFFECTIVELY_INFINITE (0) stays a number; CK_UNAVAILABLE_INFORMATION (~0) is a bigint.
    expect(info.maxSessionCount).toBe(0);
    expect(info.sessionCount).toBe(UNAVAILABLE);
    expect(info.totalPublicMemory).toBe(UNAVAILABLE);
  });

  test('C_GetMechanismList / C_GetMechanismInfo: CKM_ECDSA with sane key sizes; unknown → CKR_MECHANISM_INVALID', () => {
    const list = p11.C_GetMechanismList(tm.slot);
    expect(list.length).toBeGreaterThan(10);
    expect(new Set(list).size).toBe(list.length);
    expect(list).toContain(C.CKM_ECDSA);
    const ecdsa = p11.C_GetMechanismInfo(tm.slot, C.CKM_ECDSA);
    expect(Number(ecdsa.minKeySize)).toBeLessThanOrEqual(256);
    expect(Number(ecdsa.maxKeySize)).toBeGreaterThanOrEqual(384);
    expect(has(ecdsa.flags, C.CKF_SIGN)).toBe(true);
    expect(has(ecdsa.flags, C.CKF_VERIFY)).toBe(true);
    expect(has(ecdsa.flags, C.CKF_DECRYPT)).toBe(false);
    // Every listed mechanism has info.
    for (const mechanism of list) expect(typeof p11.C_GetMechanismInfo(tm.slot, mechanism).flags).toBe('number');
    expectThrowsPkcs11(() => p11.C_GetMechanismInfo(tm.slot, 0x7ffffff0), 'CKR_MECHANISM_INVALID', 'C_GetMechanismInfo');
    expectThrowsPkcs11(() => p11.C_GetMechanismList(0x7ffffff0), 'CKR_SLOT_ID_INVALID', 'C_GetMechanismList');
  });

  test('C_WaitForSlotEvent: CKF_DONT_BLOCK → null (SoftHSM2 answers CKR_NO_EVENT); blocking → CKR_FUNCTION_NOT_SUPPORTED', async () => {
    expect(p11.C_WaitForSlotEvent(C.CKF_DONT_BLOCK)).toBeNull();
    await expect(p11.C_WaitForSlotEventAsync(C.CKF_DONT_BLOCK)).resolves.toBeNull();
    // SoftHSM2 does not implement waiting; the promise form runs it on an engine thread.
    await expectRejectsPkcs11(p11.C_WaitForSlotEventAsync(0), 'CKR_FUNCTION_NOT_SUPPORTED', 'C_WaitForSlotEvent');
    expectTypeError(thrownBy(() => p11.C_WaitForSlotEvent(-1)), "C_WaitForSlotEvent: argument 'flags' must be a non-negative integer (a number up to 2^53-1, or a bigint up to the platform's CK_ULONG)");
  });
});

describe('token and PIN initialisation (in SoftHSM2 free slots)', () => {
  /** Initialises a token in a free slot (SoftHSM2 then offers another free slot). */
  function initFreeToken(label: string, soPin: string): Handle {
    const [slot] = freeSlots();
    expect(slot).toBeDefined();
    p11.C_InitToken(slot, soPin, label);
    return slot;
  }

  test('C_InitToken (sync, then async on the next free slot) initialises a token with the label', async () => {
    const [slot] = freeSlots();
    expect(slot).toBeDefined();
    expect(has(p11.C_GetTokenInfo(slot).flags, C.CKF_TOKEN_INITIALIZED)).toBe(false);
    p11.C_InitToken(slot, 'second-so-pin', 'second token ✓');
    const info = p11.C_GetTokenInfo(slot);
    expect(info.label).toBe('second token ✓');
    expect(has(info.flags, C.CKF_TOKEN_INITIALIZED)).toBe(true);
    expect(has(info.flags, C.CKF_USER_PIN_INITIALIZED)).toBe(false);

    // SoftHSM2 offers a new free slot once the previous one is taken.
    const [next] = freeSlots();
    expect(next).toBeDefined();
    expect(next).not.toEqual(slot);
    await expect(p11.C_InitTokenAsync(next, Buffer.from('third-so-pin'), 'third token')).resolves.toBeUndefined();
    expect(p11.C_GetTokenInfo(next).label).toBe('third token');
    expect(has(p11.C_GetTokenInfo(next).flags, C.CKF_TOKEN_INITIALIZED)).toBe(true);

    // Re-initialising needs the token's SO PIN, and no open session.
    expectThrowsPkcs11(() => p11.C_InitToken(next, 'not-the-so-pin', 'third token'), 'CKR_PIN_INCORRECT', 'C_InitToken');
    const open = p11.C_OpenSession(next);
    await expectRejectsPkcs11(p11.C_InitTokenAsync(next, 'third-so-pin', 'again'), 'CKR_SESSION_EXISTS', 'C_InitToken');
    p11.C_CloseSession(open);
    expectTypeError(
      thrownBy(() => p11.C_InitToken(next, 'third-so-pin', 'x'.repeat(33))),
      "C_InitToken: argument 'label' must be at most 32 bytes of UTF-8",
    );
    expect(p11.C_GetTokenInfo(next).label).toBe('third token');
  });

  test('SO login, C_InitPIN, user login, C_SetPIN (old → new), login with the new PIN only', async () => {
    const slot = initFreeToken('pin token', 'pin-token-so');
    const session = p11.C_OpenSession(slot, C.CKF_RW_SESSION);
    expectThrowsPkcs11(() => p11.C_Login(session, C.CKU_SO, 'wrong-so-pin'), 'CKR_PIN_INCORRECT', 'C_Login');
    p11.C_Login(session, C.CKU_SO, 'pin-token-so');
    expect(p11.C_GetSessionInfo(session).state).toBe(C.CKS_RW_SO_FUNCTIONS);
    p11.C_InitPIN(session, 'first-user-pin');
    expect(has(p11.C_GetTokenInfo(slot).flags, C.CKF_USER_PIN_INITIALIZED)).toBe(true);
    await p11.C_InitPINAsync(session, Buffer.from('second-user-pin'));
    p11.C_Logout(session);

    expectThrowsPkcs11(() => p11.C_Login(session, C.CKU_USER, 'first-user-pin'), 'CKR_PIN_INCORRECT', 'C_Login');
    p11.C_Login(session, C.CKU_USER, 'second-user-pin');
    expect(p11.C_GetSessionInfo(session).state).toBe(C.CKS_RW_USER_FUNCTIONS);
    expectThrowsPkcs11(() => p11.C_SetPIN(session, 'not-the-old-pin', 'third-user-pin'), 'CKR_PIN_INCORRECT', 'C_SetPIN');
    p11.C_SetPIN(session, 'second-user-pin', 'third-user-pin');
    await p11.C_SetPINAsync(session, 'third-user-pin', Buffer.from('fourth-user-pin'));
    await p11.C_LogoutAsync(session);

    for (const old of ['second-user-pin', 'third-user-pin']) {
      expectThrowsPkcs11(() => p11.C_Login(session, C.CKU_USER, old), 'CKR_PIN_INCORRECT', 'C_Login');
    }
    await p11.C_LoginAsync(session, C.CKU_USER, 'fourth-user-pin');
    expect(p11.C_GetSessionInfo(session).state).toBe(C.CKS_RW_USER_FUNCTIONS);
    p11.C_Logout(session);
    p11.C_CloseSession(session);
  });

  test('C_CloseAllSessions closes every session of the slot and ends its login', () => {
    const slot = initFreeToken('close-all token', 'close-all-so');
    const so = p11.C_OpenSession(slot, C.CKF_RW_SESSION);
    p11.C_Login(so, C.CKU_SO, 'close-all-so');
    p11.C_InitPIN(so, 'close-all-user');
    p11.C_Logout(so);
    p11.C_CloseSession(so);

    const sessions = [p11.C_OpenSession(slot, C.CKF_RW_SESSION), p11.C_OpenSession(slot), p11.C_OpenSession(slot)];
    p11.C_Login(sessions[0], C.CKU_USER, 'close-all-user');
    expect(p11.C_GetSessionInfo(sessions[1]).state).toBe(C.CKS_RO_USER_FUNCTIONS);
    const other = p11.C_OpenSession(tm.slot);
    p11.C_CloseAllSessions(slot);
    for (const session of sessions) {
      expectThrowsPkcs11(() => p11.C_GetSessionInfo(session), 'CKR_SESSION_HANDLE_INVALID', 'C_GetSessionInfo');
    }
    // Other slots' sessions are untouched.
    expect(p11.C_GetSessionInfo(other).slotID).toEqual(tm.slot);
    p11.C_CloseSession(other);
    const fresh = p11.C_OpenSession(slot);
    expect(p11.C_GetSessionInfo(fresh).state).toBe(C.CKS_RO_PUBLIC_SESSION);
    p11.C_CloseSession(fresh);
    expectThrowsPkcs11(() => p11.C_CloseAllSessions(0x7ffffff0), 'CKR_SLOT_ID_INVALID', 'C_CloseAllSessions');
  });
});

describe('login and sessions on the test token', () => {
  test('a wrong PIN: CKR_PIN_INCORRECT, the same from C_Login and C_LoginAsync', async () => {
    const session = loggedOut(p11.C_OpenSession(tm.slot, C.CKF_RW_SESSION));
    const sync = expectThrowsPkcs11(() => p11.C_Login(session, C.CKU_USER, 'not-the-pin'), 'CKR_PIN_INCORRECT', 'C_Login');
    const async = await expectRejectsPkcs11(p11.C_LoginAsync(session, C.CKU_USER, 'not-the-pin'), 'CKR_PIN_INCORRECT', 'C_Login');
    expect([async.name, async.code, async.function, async.message]).toEqual([sync.name, sync.code, sync.function, sync.message]);
    expect(p11.C_GetSessionInfo(session).state).toBe(C.CKS_RW_PUBLIC_SESSION);
    p11.C_CloseSession(session);
  });

  test('session info and state transitions: public → user → public → SO', async () => {
    const rw = loggedOut(p11.C_OpenSession(tm.slot, C.CKF_RW_SESSION));
    const ro = await p11.C_OpenSessionAsync(tm.slot);
    const rwInfo = p11.C_GetSessionInfo(rw);
    expect(rwInfo).toEqual({ slotID: tm.slot, state: C.CKS_RW_PUBLIC_SESSION, flags: C.CKF_RW_SESSION | C.CKF_SERIAL_SESSION, deviceError: 0 });
    // CKF_SERIAL_SESSION is always added.
    expect(p11.C_GetSessionInfo(ro)).toEqual({ slotID: tm.slot, state: C.CKS_RO_PUBLIC_SESSION, flags: C.CKF_SERIAL_SESSION, deviceError: 0 });

    p11.C_Login(rw, C.CKU_USER, token.userPin);
    expect(p11.C_GetSessionInfo(rw).state).toBe(C.CKS_RW_USER_FUNCTIONS);
    expect(p11.C_GetSessionInfo(ro).state).toBe(C.CKS_RO_USER_FUNCTIONS);
    expectThrowsPkcs11(() => p11.C_Login(ro, C.CKU_USER, token.userPin), 'CKR_USER_ALREADY_LOGGED_IN', 'C_Login');
    // An SO cannot log in while a read-only session exists (SoftHSM2 checks that first) ...
    expectThrowsPkcs11(() => p11.C_Login(rw, C.CKU_SO, token.soPin), 'CKR_SESSION_READ_ONLY_EXISTS', 'C_Login');
    const ro2 = p11.C_OpenSession(tm.slot);
    await p11.C_CloseSessionAsync(ro);
    p11.C_Logout(ro2); // logging out one session logs the whole application out
    expect(p11.C_GetSessionInfo(rw).state).toBe(C.CKS_RW_PUBLIC_SESSION);
    // SoftHSM2 answers a logout without a login with CKR_OK (the standard allows CKR_USER_NOT_LOGGED_IN).
    expect(p11.C_Logout(rw)).toBeUndefined();
    expect(p11.C_GetSessionInfo(rw).state).toBe(C.CKS_RW_PUBLIC_SESSION);
    p11.C_CloseSession(ro2);
    p11.C_Login(rw, C.CKU_USER, token.userPin);
    // ... nor while the user is logged in.
    expectThrowsPkcs11(() => p11.C_Login(rw, C.CKU_SO, token.soPin), 'CKR_USER_ANOTHER_ALREADY_LOGGED_IN', 'C_Login');
    p11.C_Logout(rw);
    p11.C_Login(rw, C.CKU_SO, token.soPin);
    expect(p11.C_GetSessionInfo(rw).state).toBe(C.CKS_RW_SO_FUNCTIONS);
    expectThrowsPkcs11(() => p11.C_OpenSession(tm.slot), 'CKR_SESSION_READ_WRITE_SO_EXISTS', 'C_OpenSession');
    expectThrowsPkcs11(() => p11.C_Login(rw, 99, 'x'), 'CKR_USER_TYPE_INVALID', 'C_Login');
    p11.C_Logout(rw);
    p11.C_CloseSession(rw);
  });

  test('a closed session: CKR_SESSION_HANDLE_INVALID from sync and async calls', async () => {
    const session = p11.C_OpenSession(tm.slot);
    p11.C_CloseSession(session);
    expectThrowsPkcs11(() => p11.C_GetSessionInfo(session), 'CKR_SESSION_HANDLE_INVALID', 'C_GetSessionInfo');
    expectThrowsPkcs11(() => p11.C_CloseSession(session), 'CKR_SESSION_HANDLE_INVALID', 'C_CloseSession');
    await expectRejectsPkcs11(p11.C_CloseSessionAsync(session), 'CKR_SESSION_HANDLE_INVALID', 'C_CloseSession');
    await expectRejectsPkcs11(p11.C_LoginAsync(session, C.CKU_USER, token.userPin), 'CKR_SESSION_HANDLE_INVALID', 'C_Login');
    await expectRejectsPkcs11(p11.digest(session, C.CKM_SHA256, Buffer.from('x')), 'CKR_SESSION_HANDLE_INVALID', 'digest');
    expectThrowsPkcs11(() => p11.C_OpenSession(0x7ffffff0), 'CKR_SLOT_ID_INVALID', 'C_OpenSession');
  });

  test('C_GetOperationState / C_SetOperationState around a multi-part digest: SoftHSM2 answers CKR_FUNCTION_NOT_SUPPORTED and the digest carries on', () => {
    const session = p11.C_OpenSession(tm.slot);
    p11.C_DigestInit(session, C.CKM_SHA256);
    p11.C_DigestUpdate(session, Buffer.from('ab'));
    expectThrowsPkcs11(() => p11.C_GetOperationState(session), 'CKR_FUNCTION_NOT_SUPPORTED', 'C_GetOperationState');
    expectThrowsPkcs11(() => p11.C_SetOperationState(session, Buffer.from('state')), 'CKR_FUNCTION_NOT_SUPPORTED', 'C_SetOperationState');
    p11.C_DigestUpdate(session, Buffer.from('c'));
    expect(p11.C_DigestFinal(session)).toEqual(crypto.createHash('sha256').update('abc').digest());
    expectTypeError(
      thrownBy(() => p11.C_SetOperationState(session, 'state' as unknown as Buffer)),
      "C_SetOperationState: argument 'state' must be a Buffer, Uint8Array or ArrayBuffer",
    );
    p11.C_CloseSession(session);
  });

  test('the legacy parallel functions: CKR_FUNCTION_NOT_PARALLEL', () => {
    const session = p11.C_OpenSession(tm.slot);
    expectThrowsPkcs11(() => p11.C_GetFunctionStatus(session), 'CKR_FUNCTION_NOT_PARALLEL', 'C_GetFunctionStatus');
    expectThrowsPkcs11(() => p11.C_CancelFunction(session), 'CKR_FUNCTION_NOT_PARALLEL', 'C_CancelFunction');
    p11.C_CloseSession(session);
  });
});

describe('concurrent async calls', () => {
  test('one-hop signs on 200 distinct sessions at once: all valid', async () => {
    const rw = loggedOut(p11.C_OpenSession(tm.slot, C.CKF_RW_SESSION));
    p11.C_Login(rw, C.CKU_USER, token.userPin);
    const pair = generateEcKeyPair(p11, rw, 'P-256');
    const sessions = await Promise.all(Array.from({ length: 200 }, () => p11.C_OpenSessionAsync(tm.slot)));
    const messages = sessions.map((_, i) => Buffer.from(`message ${i}`));
    const signatures = await Promise.all(
      sessions.map((s, i) => p11.sign(s, C.CKM_ECDSA, pair.privateKey, crypto.createHash('sha256').update(messages[i]).digest())),
    );
    signatures.forEach((signature, i) =>
      expect(crypto.verify('sha256', messages[i], { key: pair.publicKeyObject, dsaEncoding: 'ieee-p1363' }, signature)).toBe(true),
    );
    await Promise.all(sessions.map((s) => p11.C_CloseSessionAsync(s)));
    p11.C_Logout(rw);
    p11.C_CloseSession(rw);
  });

  // PKCS#11 sessions hold one active operation and modules need not lock them (SoftHSM2 corrupts
  // its heap: SIGSEGV in C_Sign), so the engine must run the calls of one session one at a time.
  // JS code has no threads of its own to coordinate. Run in a child process because a crash
  // takes the process down.
  test('300 one-hop signs on one session at once: all succeed, no crash', () => {
    const child = spawnSync(
      process.execPath,
      [
        '-e',
        `
        const addon = require(${JSON.stringify(addonPath())});
        const p = new addon.PKCS11();
        p.load(${JSON.stringify(token.modulePath)});
        p.C_Initialize();
        const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label === ${JSON.stringify(token.label)});
        const session = p.C_OpenSession(slot, ${C.CKF_RW_SESSION});
        p.C_Login(session, ${C.CKU_USER}, ${JSON.stringify(token.userPin)});
        const { privateKey } = p.C_GenerateKeyPair(session, ${C.CKM_EC_KEY_PAIR_GEN},
          [{ type: ${C.CKA_TOKEN}, value: false }, { type: ${C.CKA_EC_PARAMS}, value: Buffer.from('06082a8648ce3d030107', 'hex') }],
          [{ type: ${C.CKA_TOKEN}, value: false }, { type: ${C.CKA_SIGN}, value: true }]);
        const calls = Array.from({ length: 300 }, (_, i) => p.sign(session, ${C.CKM_ECDSA}, privateKey, Buffer.alloc(32, i & 255)));
        Promise.allSettled(calls).then((results) => {
          const summary = {};
          for (const r of results) {
            const key = r.status === 'fulfilled' ? 'signature of ' + r.value.length : r.reason.name;
            summary[key] = (summary[key] || 0) + 1;
          }
          process.stdout.write(JSON.stringify(summary));
          p.close();
        });
        `,
      ],
      { env: { ...process.env, SOFTHSM2_CONF: token.conf }, encoding: 'utf8', timeout: 30_000 },
    );
    expect({ status: child.status, signal: child.signal, stdout: child.stdout }).toEqual({
      status: 0,
      signal: null,
      stdout: JSON.stringify({ 'signature of 64': 300 }),
    });
  });
});
