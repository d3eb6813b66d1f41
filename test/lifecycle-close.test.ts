/**
 * Lifecycle: closing (or finalising) a module, and closing a signing pool, while thousands of
 * asynchronous requests are in flight, against a real SoftHSM2 token.
 *
 * Module close/C_Finalize: every one of the 5,000 promises settles — resolved with a signature
 * that verifies, or rejected with a Pkcs11Error CKR_CRYPTOKI_NOT_INITIALIZED — the process
 * survives, and the module can be initialised and used again. Pool close: it drains, so every
 * accepted request resolves with a valid signature before close() resolves.
 */
import { createHash, createPublicKey, KeyObject, verify as verifySignature } from 'crypto';

import { binding } from '../lib/binding';
import { Pkcs11Error } from '../lib/errors';
import * as C from '../lib/generated/constants';
import { Mechanisms, Module, PoolClosedError, generateKeyPair, SigningPool } from '../lib';
import type { NativePKCS11 } from '../lib/native/pkcs11';
import type { Handle } from '../lib/native/types';
import { ecPublicKeyToSpki } from '../lib/keys/spki';
import { createTestToken, TestToken } from './support/softhsm';

const IN_FLIGHT = 5_000;
const SESSIONS = 8;
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const message = Buffer.from('lifecycle: close with requests in flight');
const digest = createHash('sha256').update(message).digest();

jest.setTimeout(60_000);

function verifies(key: KeyObject, signature: Buffer): boolean {
  return signature.length === 64 && verifySignature('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature);
}

/** Settles within `ms` or says which promises are still pending. */
async function allSettledWithin<T>(promises: Promise<T>[], ms: number): Promise<PromiseSettledResult<T>[]> {
  let pending = promises.length;
  const tracked = promises.map((p) => p.finally(() => pending--));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${pending} of ${promises.length} promises still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([Promise.allSettled(tracked), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface RawFixture {
  p11: NativePKCS11;
  sessions: Handle[];
  privateKey: Handle;
  publicKey: KeyObject;
}

function openRaw(token: TestToken): RawFixture {
  const p11 = new binding.PKCS11();
  p11.load(token.modulePath);
  p11.C_Initialize();
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label === token.label)!;
  const sessions = Array.from({ length: SESSIONS }, () => p11.C_OpenSession(slot, C.CKF_RW_SESSION | C.CKF_SERIAL_SESSION));
  try {
    p11.C_Login(sessions[0], C.CKU_USER, token.userPin);
  } catch (error) {
    if (!Pkcs11Error.is(error, 'CKR_USER_ALREADY_LOGGED_IN')) throw error;
  }
  const found = p11.findObjectsSync(sessions[0], [{ type: C.CKA_LABEL, value: 'lifecycle-ec' }, { type: C.CKA_CLASS, value: C.CKO_PRIVATE_KEY }]);
  let privateKey: Handle;
  if (found.length === 1) {
    privateKey = found[0];
  } else {
    const pair = p11.C_GenerateKeyPair(
      sessions[0],
      C.CKM_EC_KEY_PAIR_GEN,
      [{ type: C.CKA_TOKEN, value: true }, { type: C.CKA_EC_PARAMS, value: P256 }, { type: C.CKA_VERIFY, value: true }, { type: C.CKA_LABEL, value: 'lifecycle-ec' }],
      [{ type: C.CKA_TOKEN, value: true }, { type: C.CKA_SIGN, value: true }, { type: C.CKA_LABEL, value: 'lifecycle-ec' }],
    );
    privateKey = pair.privateKey;
  }
  const [publicHandle] = p11.findObjectsSync(sessions[0], [{ type: C.CKA_LABEL, value: 'lifecycle-ec' }, { type: C.CKA_CLASS, value: C.CKO_PUBLIC_KEY }]);
  const [point] = p11.C_GetAttributeValue(sessions[0], publicHandle, [C.CKA_EC_POINT]);
  const publicKey = createPublicKey({ key: ecPublicKeyToSpki(P256, point.value as Buffer), format: 'der', type: 'spki' });
  return { p11, sessions, privateKey, publicKey };
}

/** Resolves once `count` of the promises have settled (so some work is done, most still queued). */
function afterSettled(promises: Promise<unknown>[], count: number): Promise<void> {
  let settled = 0;
  return new Promise((resolve) => {
    for (const p of promises) {
      p.then(
        () => ++settled === count && resolve(),
        () => ++settled === count && resolve(),
      );
    }
  });
}

interface Tally {
  resolved: number;
  rejected: number;
  invalidSignatures: number;
  otherFailures: string[];
}

function tally(results: PromiseSettledResult<Buffer>[], key: KeyObject, fn: string): Tally {
  const out: Tally = { resolved: 0, rejected: 0, invalidSignatures: 0, otherFailures: [] };
  for (const r of results) {
    if (r.status === 'fulfilled') {
      out.resolved++;
      if (!verifies(key, r.value)) out.invalidSignatures++;
    } else if (Pkcs11Error.is(r.reason, 'CKR_CRYPTOKI_NOT_INITIALIZED') && (r.reason as Pkcs11Error).function === fn) {
      out.rejected++;
    } else if (out.otherFailures.length < 5) {
      const e = r.reason as Error;
      out.otherFailures.push(`${e?.constructor?.name}: ${e?.message}`);
    }
  }
  return out;
}

describe('closing a module with thousands of requests in flight', () => {
  let token: TestToken;
  beforeAll(() => {
    token = createTestToken({ label: 'lifecycle-close' });
    openRaw(token).p11.close(); // creates the token key once
  });
  afterAll(() => token?.cleanup());

  for (const [how, close] of [
    ['close()', (p11: NativePKCS11) => expect(p11.close()).toEqual({ drained: true })],
    ['close({ timeoutMs: 0 }) (finalised when the last call inside returns)', (p11: NativePKCS11) => p11.close({ timeoutMs: 0 })],
    ['C_Finalize()', (p11: NativePKCS11) => p11.C_Finalize()],
  ] as const) {
    test(`${how}: all ${IN_FLIGHT} signs settle, each verified or CKR_CRYPTOKI_NOT_INITIALIZED; the module works again`, async () => {
      const { p11, sessions, privateKey, publicKey } = openRaw(token);
      const promises = Array.from({ length: IN_FLIGHT }, (_, i) => p11.sign(sessions[i % SESSIONS], C.CKM_ECDSA, privateKey, digest));
      await afterSettled(promises, 200);
      close(p11);
      const results = await allSettledWithin(promises, 30_000);
      const t = tally(results, publicKey, 'sign');
      expect({ ...t, total: t.resolved + t.rejected }).toEqual({ resolved: t.resolved, rejected: t.rejected, invalidSignatures: 0, otherFailures: [], total: IN_FLIGHT });
      // Both outcomes happened: the close really cut into the work.
      expect(t.resolved).toBeGreaterThanOrEqual(200);
      expect(t.rejected).toBeGreaterThan(0);

      // The same object (after C_Finalize) or a new one (after close) initialises and signs again.
      if (how === 'C_Finalize()') {
        expect(p11.initialized).toBe(false);
        p11.close();
      }
      const again = openRaw(token);
      try {
        const signatures = await Promise.all(again.sessions.map((s) => again.p11.sign(s, C.CKM_ECDSA, again.privateKey, digest)));
        for (const signature of signatures) expect(verifies(again.publicKey, signature)).toBe(true);
      } finally {
        again.p11.close();
      }
    });
  }

  test(`typed layer: Module.close() with ${IN_FLIGHT} PrivateKey.sign() calls in flight`, async () => {
    const module = Module.load(token.modulePath);
    const session = await module.findSlot(token.label).openSession();
    await session.login(token.userPin);
    const { privateKey, publicKey } = await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' });
    const key = createPublicKey({ key: await publicKey.spki(), format: 'der', type: 'spki' });
    const promises = Array.from({ length: IN_FLIGHT }, () => privateKey.sign(Mechanisms.ecdsa(), digest));
    await afterSettled(promises, 200);
    module.close();
    const t = tally(await allSettledWithin(promises, 30_000), key, 'sign');
    expect({ ...t, total: t.resolved + t.rejected }).toEqual({ resolved: t.resolved, rejected: t.rejected, invalidSignatures: 0, otherFailures: [], total: IN_FLIGHT });
    expect(t.rejected).toBeGreaterThan(0);
    expect(session.isClosed).toBe(true);
  });
});

describe('closing a signing pool with thousands of requests in flight', () => {
  let token: TestToken;
  let module: Module;
  beforeAll(async () => {
    token = createTestToken({ label: 'lifecycle-pool' });
    module = Module.load(token.modulePath);
    const session = await module.findSlot(token.label).openSession();
    await session.login(token.userPin);
    await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' }, { label: 'pool-key' });
  });
  afterAll(() => {
    module?.close();
    token?.cleanup();
  });

  test(`close() drains: all ${IN_FLIGHT} accepted requests resolve with valid signatures before it resolves`, async () => {
    // Deadlines out of the way (draining is about close(), not them): under AddressSanitizer
    // beside other suites the last of these requests waits several seconds in the queue.
    const pool = await SigningPool.open({ module, token: token.label, key: { label: 'pool-key' }, pin: token.userPin, size: 4, timeoutMs: 120_000 });
    const key = createPublicKey({ key: pool.publicKeySpki, format: 'der', type: 'spki' });
    let settled = 0;
    const promises = Array.from({ length: IN_FLIGHT }, () => pool.sign(digest).finally(() => settled++));
    expect(pool.stats().queued + pool.stats().inFlight).toBeGreaterThan(IN_FLIGHT / 2);
    let settledWhenClosed = -1;
    const closing = pool.close().then(() => {
      settledWhenClosed = settled;
    });
    // Accepted work is not cut off, but nothing new is taken.
    await expect(pool.sign(digest)).rejects.toBeInstanceOf(PoolClosedError);
    const results = await allSettledWithin(promises, 45_000);
    await closing;
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [`${(r.reason as Error)?.name}: ${(r.reason as Error)?.message}`] : []));
    expect(failures.slice(0, 5)).toEqual([]);
    let invalid = 0;
    for (const r of results) if (r.status === 'fulfilled' && !verifies(key, r.value)) invalid++;
    expect(invalid).toBe(0);
    expect(settledWhenClosed).toBe(IN_FLIGHT);
    const stats = pool.stats();
    expect({ done: stats.done, failed: stats.failed, inFlight: stats.inFlight, queued: stats.queued, sessions: stats.sessions }).toEqual({
      done: IN_FLIGHT,
      failed: 0,
      inFlight: 0,
      queued: 0,
      sessions: 0,
    });
  });
});
