/**
 * The pool's staging of signTo() calls (lib/pool/sign-batch.ts): calls made in one turn of the
 * event loop reach the binding in one signToBatch() once more than two are outstanding, a
 * session's calls keep their order whether staged or not, and a batch the binding refuses still
 * answers every request. Against the real binding and SoftHSM2; the binding's methods are only
 * wrapped to count the calls, which they still make.
 */
import * as crypto from 'crypto';

import { signTo, ticketsOutstanding } from '../lib/pool/sign-sink';
import type { SignSinkClient } from '../lib/pool/sign-sink';
import { binding } from '../lib/binding';
import {
  bytes,
  C,
  generateEcKeyPair,
  GeneratedPair,
  isNativeError,
  NativePKCS11,
  openTestModule,
  TestModule,
} from './support/binding-helpers';
import type { Handle } from './support/binding-helpers';

interface Outcome {
  id: number;
  signature?: Buffer;
  error?: unknown;
}

const outcomes: Outcome[] = [];
let waiter: { count: number; resolve: () => void } | undefined;
const client: SignSinkClient<number> = {
  signed(id, signature) {
    outcomes.push({ id, signature });
    wake();
  },
  signFailed(id, error) {
    outcomes.push({ id, error });
    wake();
  },
};
function wake(): void {
  if (waiter !== undefined && outcomes.length >= waiter.count) {
    waiter.resolve();
    waiter = undefined;
  }
}
function settled(count: number): Promise<Outcome[]> {
  return new Promise<void>((resolve, reject) => {
    if (outcomes.length >= count) return resolve();
    const timer = setTimeout(() => reject(new Error(`only ${outcomes.length} of ${count} outcomes arrived`)), 10_000);
    waiter = { count, resolve: () => (clearTimeout(timer), resolve()) };
  }).then(() => outcomes.slice());
}

/** Counts the binding's calls on this instance (they still run: the methods are the binding's own). */
function countCalls(p11: NativePKCS11): { log: string[]; restore: () => void } {
  const log: string[] = [];
  const target = p11 as unknown as Record<string, (...args: unknown[]) => unknown>;
  const batch = target.signToBatch;
  const one = target.signTo;
  target.signToBatch = function (this: unknown, ...args: unknown[]) {
    log.push(`batch ${args[0] as number}`);
    return batch.apply(this, args);
  };
  target.signTo = function (this: unknown, ...args: unknown[]) {
    log.push('one');
    return one.apply(this, args);
  };
  return {
    log,
    restore: () => {
      delete target.signToBatch;
      delete target.signTo;
    },
  };
}

const sha256 = (data: Buffer): Buffer => crypto.createHash('sha256').update(data).digest();
const valid = (pair: GeneratedPair, message: Buffer, signature: Buffer | undefined): boolean =>
  signature !== undefined && crypto.verify('sha256', message, { key: pair.publicKeyObject, dsaEncoding: 'ieee-p1363' }, signature);

let tm: TestModule;
let ec: GeneratedPair;
let sessions: Handle[];

/**
 * Two calls that go to the binding alone (with two or fewer outstanding nothing is staged), and
 * stay outstanding until this turn ends, so that the calls after them are staged. Ids 100, 101.
 */
function twoOutstanding(): void {
  const digest = sha256(Buffer.from('outstanding'));
  for (const id of [100, 101]) signTo(tm.p11, tm.session, C.CKM_ECDSA, ec.privateKey, digest, client, id);
}

beforeAll(() => {
  tm = openTestModule();
  ec = generateEcKeyPair(tm.p11, tm.session, 'P-256');
  sessions = [tm.session, tm.p11.C_OpenSession(tm.slot, C.CKF_SERIAL_SESSION)];
});

beforeEach(() => {
  outcomes.length = 0;
});

afterEach(() => {
  expect(ticketsOutstanding()).toBe(0);
});

afterAll(() => {
  tm?.close();
});

test('calls made in one turn reach the binding together (all but the first two), each signed over its own data', async () => {
  const calls = countCalls(tm.p11);
  try {
    const messages = Array.from({ length: 300 }, (_, i) => bytes(10 + (i % 50), i + 1));
    messages.forEach((message, i) => signTo(tm.p11, sessions[i % 2], C.CKM_ECDSA, ec.privateKey, sha256(message), client, i));
    // The first two alone; a full batch goes at once; the rest waits for the microtask.
    expect(calls.log).toEqual(['one', 'one', 'batch 256']);
    const got = await settled(messages.length);
    expect(calls.log).toEqual(['one', 'one', 'batch 256', 'batch 42']);
    expect(got.map((o) => o.id).sort((a, b) => a - b)).toEqual(messages.map((_, i) => i));
    expect(got.filter((o) => o.error !== undefined || !valid(ec, messages[o.id], o.signature))).toEqual([]);
  } finally {
    calls.restore();
  }
});

test('inputs too large to stage, or not in a Uint8Array, go alone, after what is staged', async () => {
  const calls = countCalls(tm.p11);
  try {
    const message = bytes(64, 9);
    const digest = sha256(message);
    const large = bytes(5000, 3); // CKM_ECDSA signs what it is given: 5000 bytes go alone
    twoOutstanding();
    signTo(tm.p11, tm.session, C.CKM_ECDSA, ec.privateKey, digest, client, 0);
    signTo(tm.p11, tm.session, C.CKM_ECDSA, ec.privateKey, large, client, 1);
    signTo(tm.p11, tm.session, C.CKM_ECDSA, ec.privateKey, digest.buffer.slice(digest.byteOffset, digest.byteOffset + 32) as ArrayBuffer, client, 2);
    signTo(tm.p11, tm.session, { mechanism: C.CKM_ECDSA }, ec.privateKey, digest, client, 3);
    signTo(tm.p11, BigInt(tm.session), C.CKM_ECDSA, ec.privateKey, digest, client, 4);
    signTo(tm.p11, tm.session, C.CKM_ECDSA, ec.privateKey, digest, client, 5);
    expect(calls.log).toEqual(['one', 'one', 'batch 1', 'one', 'one', 'one', 'one']);
    const got = await settled(8);
    expect(calls.log).toEqual(['one', 'one', 'batch 1', 'one', 'one', 'one', 'one', 'batch 1']);
    // One session, so the module ran them in the order they were made.
    expect(got.map((o) => o.id)).toEqual([100, 101, 0, 1, 2, 3, 4, 5]);
    expect(got.map((o) => [o.error, o.signature?.length])).toEqual(got.map(() => [undefined, 64]));
    expect([2, 4, 5, 6, 7].map((i) => valid(ec, message, got[i].signature))).toEqual([true, true, true, true, true]);
  } finally {
    calls.restore();
  }
});

test('a refused argument still throws at once, and only that call is refused', async () => {
  const digest = sha256(Buffer.from('refused'));
  twoOutstanding();
  signTo(tm.p11, tm.session, C.CKM_ECDSA, ec.privateKey, digest, client, 0);
  expect(() => signTo(tm.p11, tm.session, C.CKM_ECDSA, ec.privateKey, 'text' as unknown as Buffer, client, 1)).toThrow(
    /^signTo: argument 'data' must be /,
  );
  const got = await settled(3);
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(outcomes.length).toBe(3);
  expect(got.map((o) => o.id)).toEqual([100, 101, 0]);
  expect(valid(ec, Buffer.from('refused'), got[2].signature)).toBe(true);
});

test('a batch the binding refuses as a whole: each request is tried alone and hears its own error', async () => {
  const unloaded: NativePKCS11 = new binding.PKCS11();
  const calls = countCalls(unloaded);
  try {
    const digest = sha256(Buffer.from('nowhere'));
    twoOutstanding(); // through the loaded module
    for (let id = 0; id < 3; id++) signTo(unloaded, 1, C.CKM_ECDSA, 2, digest, client, id);
    expect(outcomes).toEqual([]); // told later, never by a throw
    const got = (await settled(5)).filter((o) => o.id < 100);
    expect(calls.log).toEqual(['batch 3', 'one', 'one', 'one']);
    expect(got.map((o) => o.id)).toEqual([0, 1, 2]);
    for (const o of got) {
      expect(isNativeError(o.error, 'Error') && o.error.message).toBe('signTo: no PKCS#11 module is loaded (call load(path) first)');
    }
  } finally {
    calls.restore();
  }
});

test('calls for another module send what is staged for the first one first', async () => {
  const other = openTestModule({ login: false });
  const first = countCalls(tm.p11);
  const second = countCalls(other.p11);
  try {
    const digest = sha256(Buffer.from('two modules'));
    twoOutstanding();
    signTo(tm.p11, tm.session, C.CKM_ECDSA, ec.privateKey, digest, client, 0);
    signTo(other.p11, other.session, C.CKM_ECDSA, ec.privateKey, digest, client, 1);
    expect([first.log, second.log]).toEqual([['one', 'one', 'batch 1'], []]);
    const got = await settled(4);
    expect([first.log, second.log]).toEqual([['one', 'one', 'batch 1'], ['batch 1']]);
    expect(got.map((o) => o.id).sort((a, b) => a - b)).toEqual([0, 1, 100, 101]);
  } finally {
    first.restore();
    second.restore();
    other.close();
  }
});
