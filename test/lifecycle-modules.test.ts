/**
 * Lifecycle: different PKCS#11 modules loaded at once in one process.
 *
 * - SoftHSM2 directly, and the fault shim (test/support/shim.ts) in front of the same SoftHSM2:
 *   two paths, so two Library entries in the binding. Both sign concurrently (the shim's
 *   statistics prove its calls went through it), a fault injected in the shim fails only the
 *   shim's calls, and closing one leaves the other working.
 * - SoftHSM2 with OpenSC's and p11-kit's modules (no hardware needed for C_GetInfo and the slot
 *   list) loaded, initialised and closed while SoftHSM2 signs. A module that is not installed
 *   is skipped by name.
 */
import { createHash, createPublicKey, KeyObject, verify as verifySignature } from 'crypto';
import * as fs from 'fs';

import { binding } from '../lib/binding';
import { Pkcs11Error } from '../lib/errors';
import * as C from '../lib/generated/constants';
import { ecPublicKeyToSpki } from '../lib/keys/spki';
import type { NativePKCS11 } from '../lib/native/pkcs11';
import type { Handle } from '../lib/native/types';
import { applyShimEnv, buildShim, ShimControl } from './support/shim';
import { createTestToken, TestToken } from './support/softhsm';

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const message = Buffer.from('two modules at once');
const digest = createHash('sha256').update(message).digest();
const PER_MODULE = 1_000;

jest.setTimeout(60_000);

interface Opened {
  p11: NativePKCS11;
  session: Handle;
}

function open(modulePath: string, label: string, pin: string): Opened {
  const p11 = new binding.PKCS11();
  p11.load(modulePath);
  p11.C_Initialize();
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label === label)!;
  const session = p11.C_OpenSession(slot, C.CKF_RW_SESSION | C.CKF_SERIAL_SESSION);
  try {
    p11.C_Login(session, C.CKU_USER, pin);
  } catch (error) {
    if (!Pkcs11Error.is(error, 'CKR_USER_ALREADY_LOGGED_IN')) throw error;
  }
  return { p11, session };
}

function keyOf(o: Opened): { privateKey: Handle; key: KeyObject } {
  const find = (cls: number) => o.p11.findObjectsSync(o.session, [{ type: C.CKA_LABEL, value: 'two-modules' }, { type: C.CKA_CLASS, value: cls }]);
  const [privateKey] = find(C.CKO_PRIVATE_KEY);
  const [point] = o.p11.C_GetAttributeValue(o.session, find(C.CKO_PUBLIC_KEY)[0], [C.CKA_EC_POINT]);
  return { privateKey, key: createPublicKey({ key: ecPublicKeyToSpki(P256, point.value as Buffer), format: 'der', type: 'spki' }) };
}

const valid = (key: KeyObject, signature: Buffer): boolean =>
  verifySignature('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature);

describe('SoftHSM2 and the fault shim in front of it: two Library entries', () => {
  let token: TestToken;
  let shimPath: string;
  let control: ShimControl;
  beforeAll(() => {
    shimPath = buildShim();
    token = createTestToken({ label: 'two-modules' });
    const setup = open(token.modulePath, token.label, token.userPin);
    setup.p11.C_GenerateKeyPair(
      setup.session,
      C.CKM_EC_KEY_PAIR_GEN,
      [{ type: C.CKA_TOKEN, value: true }, { type: C.CKA_LABEL, value: 'two-modules' }, { type: C.CKA_EC_PARAMS, value: P256 }, { type: C.CKA_VERIFY, value: true }],
      [{ type: C.CKA_TOKEN, value: true }, { type: C.CKA_LABEL, value: 'two-modules' }, { type: C.CKA_SIGN, value: true }],
    );
    setup.p11.close();
  });
  beforeEach(() => {
    control = new ShimControl();
    applyShimEnv(control, token.modulePath);
  });
  afterEach(() => control.cleanup());
  afterAll(() => token?.cleanup());

  test(`both sign ${PER_MODULE} times concurrently; closing the shim leaves SoftHSM2 working`, async () => {
    const direct = open(token.modulePath, token.label, token.userPin);
    const shim = open(shimPath, token.label, token.userPin);
    try {
      expect(direct.p11.libraryPath).toBe(token.modulePath);
      expect(shim.p11.libraryPath).toBe(shimPath);
      expect(direct.p11.C_GetInfo().manufacturerID).toMatch(/SoftHSM/);
      expect(shim.p11.C_GetInfo().manufacturerID).toMatch(/SoftHSM/); // forwarded
      const a = keyOf(direct);
      const b = keyOf(shim);
      const [viaDirect, viaShim] = await Promise.all([
        Promise.all(Array.from({ length: PER_MODULE }, () => direct.p11.sign(direct.session, C.CKM_ECDSA, a.privateKey, digest))),
        Promise.all(Array.from({ length: PER_MODULE }, () => shim.p11.sign(shim.session, C.CKM_ECDSA, b.privateKey, digest))),
      ]);
      expect(viaDirect.filter((s) => valid(a.key, s))).toHaveLength(PER_MODULE);
      expect(viaShim.filter((s) => valid(b.key, s))).toHaveLength(PER_MODULE);
      // The shim's own counters: its calls really went through the second module.
      control.set({ 'stats.always': 1 });
      shim.p11.C_GetInfo();
      expect(control.stats().calls.C_Sign).toBeGreaterThanOrEqual(PER_MODULE);

      expect(shim.p11.close()).toEqual({ drained: true });
      const after = await Promise.all(Array.from({ length: 50 }, () => direct.p11.sign(direct.session, C.CKM_ECDSA, a.privateKey, digest)));
      expect(after.filter((s) => valid(a.key, s))).toHaveLength(50);
    } finally {
      shim.p11.close();
      direct.p11.close();
    }
  });

  test('a fault injected in the shim fails only calls made through the shim', async () => {
    const direct = open(token.modulePath, token.label, token.userPin);
    const shim = open(shimPath, token.label, token.userPin);
    try {
      const a = keyOf(direct);
      const b = keyOf(shim);
      // On C_SignInit: a failed C_Sign would leave the operation active in SoftHSM2 (CKR_OPERATION_ACTIVE next).
      control.set({ 'fail.C_SignInit': 'CKR_DEVICE_ERROR' });
      const [viaDirect, viaShim] = await Promise.all([
        Promise.allSettled(Array.from({ length: 200 }, () => direct.p11.sign(direct.session, C.CKM_ECDSA, a.privateKey, digest))),
        Promise.allSettled(Array.from({ length: 200 }, () => shim.p11.sign(shim.session, C.CKM_ECDSA, b.privateKey, digest))),
      ]);
      expect(viaDirect.filter((r) => r.status === 'fulfilled' && valid(a.key, r.value))).toHaveLength(200);
      expect(viaShim.filter((r) => r.status === 'rejected' && Pkcs11Error.is(r.reason, 'CKR_DEVICE_ERROR'))).toHaveLength(200);
    } finally {
      shim.p11.close();
      direct.p11.close();
    }
  });
});

describe('SoftHSM2 with OpenSC and p11-kit modules at once', () => {
  const OTHERS = [
    '/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so',
    '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so',
    '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so',
    '/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so',
  ];
  let token: TestToken;
  beforeAll(() => {
    token = createTestToken({ label: 'many-modules' });
    const setup = open(token.modulePath, token.label, token.userPin);
    setup.p11.C_GenerateKeyPair(
      setup.session,
      C.CKM_EC_KEY_PAIR_GEN,
      [{ type: C.CKA_TOKEN, value: true }, { type: C.CKA_LABEL, value: 'two-modules' }, { type: C.CKA_EC_PARAMS, value: P256 }, { type: C.CKA_VERIFY, value: true }],
      [{ type: C.CKA_TOKEN, value: true }, { type: C.CKA_LABEL, value: 'two-modules' }, { type: C.CKA_SIGN, value: true }],
    );
    setup.p11.close();
  });
  afterAll(() => token?.cleanup());

  for (const other of OTHERS) {
    (fs.existsSync(other) ? test : test.skip)(`${other.split('/').pop()}: C_GetInfo and the slot list while SoftHSM2 signs; both close cleanly`, async () => {
      const softhsm = open(token.modulePath, token.label, token.userPin);
      const { privateKey, key } = keyOf(softhsm);
      const signing = Promise.all(Array.from({ length: 500 }, () => softhsm.p11.sign(softhsm.session, C.CKM_ECDSA, privateKey, digest)));
      const p11 = new binding.PKCS11();
      try {
        p11.load(other);
        p11.C_Initialize();
        const info = p11.C_GetInfo();
        expect(info.manufacturerID).not.toMatch(/SoftHSM/);
        expect(info.cryptokiVersion.major).toBeGreaterThanOrEqual(2);
        for (const slot of p11.C_GetSlotList(false)) expect(typeof p11.C_GetSlotInfo(slot).slotDescription).toBe('string');
        expect(p11.C_GetFunctionList().version.major).toBeGreaterThanOrEqual(2);
        // Its C_Finalize must not take SoftHSM2 down with it.
        expect(p11.close()).toEqual({ drained: true });
        const signatures = await signing;
        expect(signatures.filter((s) => valid(key, s))).toHaveLength(500);
        expect(softhsm.p11.C_GetInfo().manufacturerID).toMatch(/SoftHSM/);
      } finally {
        p11.close();
        softhsm.p11.close();
      }
    });
  }
});
