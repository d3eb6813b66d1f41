/**
 * The completion sink (native/async/completion_sink.h): signTo() answers a ticket through
 * setSignSink's onBatch (records in a slab) or onOne (errors, and signatures the slab cannot
 * hold), instead of through a promise. This file registers its own sink with a small slab, so
 * that slab boundaries are crossed; it does not use SigningPool, which registers lib's own
 * (lib/pool/sign-sink.ts; test/pool.test.ts checks that every ticket it hands out comes back).
 */
import * as crypto from 'crypto';
import * as path from 'path';
import { Worker } from 'worker_threads';

import { binding } from '../lib/binding';
import { applyShimEnv, buildShim, ShimControl } from './support/shim';
import {
  addonPath,
  bytes,
  C,
  expectPkcs11Error,
  expectTypeError,
  generateEcKeyPair,
  generateRsaKeyPair,
  GeneratedPair,
  openTestModule,
  TestModule,
  thrownBy,
  ulongArgMessage,
} from './support/binding-helpers';
import type { Handle } from './support/binding-helpers';

const SLAB_BYTES = 256; // three ECDSA P-256 records (8 + 64 bytes); RSA-2048's 8 + 256 does not fit

interface Answer {
  ticket: number;
  value: unknown;
  failed: boolean;
  via: 'batch' | 'one';
}

const answers: Answer[] = [];
const batchCounts: number[] = [];
const slabsSeen: ArrayBuffer[] = [];
let detachEachSlab = false;
let waiter: { count: number; resolve: () => void } | undefined;

function record(answer: Answer): void {
  answers.push(answer);
  if (waiter !== undefined && answers.length >= waiter.count) {
    waiter.resolve();
    waiter = undefined;
  }
}

function onBatch(slab: ArrayBuffer, count: number): void {
  batchCounts.push(count);
  if (!slabsSeen.includes(slab)) slabsSeen.push(slab);
  const words = new Uint32Array(slab);
  for (let i = 0, at = 0; i < count; i++) {
    const length = words[at / 4 + 1];
    record({ ticket: words[at / 4], value: Buffer.from(new Uint8Array(slab, at + 8, length)), failed: false, via: 'batch' });
    at += 8 + ((length + 3) & ~3);
  }
  if (detachEachSlab) structuredClone(slab, { transfer: [slab] });
}

function onOne(ticket: number, value: unknown, failed: boolean): void {
  record({ ticket, value, failed, via: 'one' });
}

/** Resolves once `count` answers have arrived since the last reset (or rejects after 10 s). */
function answered(count: number): Promise<Answer[]> {
  return new Promise<void>((resolve, reject) => {
    if (answers.length >= count) return resolve();
    const timer = setTimeout(() => reject(new Error(`only ${answers.length} of ${count} answers arrived`)), 10_000);
    waiter = { count, resolve: () => (clearTimeout(timer), resolve()) };
  }).then(() => answers.slice());
}

function reset(): void {
  answers.length = 0;
  batchCounts.length = 0;
  slabsSeen.length = 0;
  detachEachSlab = false;
}

/**
 * Makes the calls `submit` makes answer in one settlement: polling holds their answers back until
 * all `count` have left the module, then one poll settles them.
 */
async function settledTogether(count: number, submit: () => void): Promise<void> {
  binding.startCompletionPolling();
  try {
    submit();
    for (const deadline = Date.now() + 10_000; tm.p11.callsInFlight > 0 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await new Promise((resolve) => setTimeout(resolve, 20)); // from leaving the module to the completion list
    expect(binding.pollCompletions()).toBe(count);
  } finally {
    binding.stopCompletionPolling();
  }
}

/**
 * Tickets 1, 2 and 3 answered in that order, 2 (a key that does not exist) with a Pkcs11Error of
 * sign() through onOne, between the signatures through onBatch.
 */
async function threeInOrderMiddleFailed(): Promise<Answer[]> {
  const got = await answered(3);
  expect(got.map((a) => [a.ticket, a.failed, a.via])).toEqual([
    [1, false, 'batch'],
    [2, true, 'one'],
    [3, false, 'batch'],
  ]);
  expectPkcs11Error(got[1].value, 'CKR_OBJECT_HANDLE_INVALID', 'sign');
  return got;
}

const sha256 = (data: Buffer): Buffer => crypto.createHash('sha256').update(data).digest();
const ecdsaValid = (pair: GeneratedPair, message: Buffer, signature: unknown): boolean =>
  Buffer.isBuffer(signature) && crypto.verify('sha256', message, { key: pair.publicKeyObject, dsaEncoding: 'ieee-p1363' }, signature);

let tm: TestModule;
let ec: GeneratedPair;
let rsa: GeneratedPair;
let sessions: Handle[];

beforeAll(() => {
  tm = openTestModule();
  ec = generateEcKeyPair(tm.p11, tm.session, 'P-256');
  rsa = generateRsaKeyPair(tm.p11, tm.session);
  sessions = [tm.session, ...[1, 2, 3].map(() => tm.p11.C_OpenSession(tm.slot, C.CKF_SERIAL_SESSION))];
  binding.setSignSink(onBatch, onOne, SLAB_BYTES);
});

beforeEach(reset);

afterAll(() => {
  tm?.close();
});

test('every ticket is answered exactly once, with a valid signature, in batches no larger than the slab holds', async () => {
  const messages = Array.from({ length: 120 }, (_, i) => bytes(40, i + 1));
  messages.forEach((message, i) => tm.p11.signTo(sessions[i % sessions.length], C.CKM_ECDSA, ec.privateKey, sha256(message), i));
  const got = await answered(messages.length);
  expect(got.map((a) => a.ticket).sort((a, b) => a - b)).toEqual(messages.map((_, i) => i));
  const invalid = got.filter((a) => a.failed || a.via !== 'batch' || !ecdsaValid(ec, messages[a.ticket], a.value));
  expect(invalid).toEqual([]);
  // 72-byte records in a 256-byte slab: a full slab is handed over before the fourth is written.
  expect(Math.max(...batchCounts)).toBeLessThanOrEqual(3);
  expect(batchCounts.reduce((sum, n) => sum + n, 0)).toBe(messages.length);
  expect(slabsSeen.map((slab) => slab.byteLength)).toEqual([SLAB_BYTES]);
});

test('a signature larger than the slab comes whole through onOne', async () => {
  const message = bytes(100, 7);
  tm.p11.signTo(tm.session, C.CKM_SHA256_RSA_PKCS, rsa.privateKey, message, 4_294_967_295);
  const [answer] = await answered(1);
  expect({ ticket: answer.ticket, failed: answer.failed, via: answer.via }).toEqual({ ticket: 4_294_967_295, failed: false, via: 'one' });
  expect((answer.value as Buffer).length).toBe(256);
  expect(crypto.verify('sha256', message, rsa.publicKeyObject, answer.value as Buffer)).toBe(true);
});

test('a failed call answers its ticket with a Pkcs11Error, after the answers before it on its session', async () => {
  const digest = sha256(Buffer.from('ordered'));
  // Polling holds the three answers back until all have left the module, so that one settlement
  // carries them all: the error must not overtake the signature before it, still in the slab.
  await settledTogether(3, () => {
    tm.p11.signTo(tm.session, C.CKM_ECDSA, ec.privateKey, digest, 1);
    tm.p11.signTo(tm.session, C.CKM_ECDSA, 0x7fff_fff0, digest, 2); // no such key
    tm.p11.signTo(tm.session, C.CKM_ECDSA, ec.privateKey, digest, 3);
  });
  const got = await threeInOrderMiddleFailed();
  expect(ecdsaValid(ec, Buffer.from('ordered'), got[2].value)).toBe(true);
});

test('a slab detached by JavaScript is replaced, never written to', async () => {
  detachEachSlab = true;
  const messages = Array.from({ length: 6 }, (_, i) => bytes(16, 100 + i));
  for (const [i, message] of messages.entries()) {
    tm.p11.signTo(tm.session, C.CKM_ECDSA, ec.privateKey, sha256(message), i);
    await answered(i + 1); // one batch per call, each detached after it was read
  }
  expect(answers.map((a) => [a.ticket, a.via, ecdsaValid(ec, messages[a.ticket], a.value)])).toEqual(messages.map((_, i) => [i, 'batch', true]));
  expect(slabsSeen.length).toBe(messages.length);
  expect(slabsSeen.every((slab) => slab.byteLength === 0)).toBe(true); // all detached by onBatch
});

test('wrong arguments: TypeErrors naming the argument, and no answer', async () => {
  const digest = sha256(Buffer.from('x'));
  const signTo = (...args: unknown[]) => () => (tm.p11.signTo as (...a: unknown[]) => void)(...args);
  for (const ticket of [-1, 1.5, 'one', undefined]) {
    expectTypeError(thrownBy(signTo(tm.session, C.CKM_ECDSA, ec.privateKey, digest, ticket)), ulongArgMessage('signTo', 'ticket'));
  }
  expectTypeError(
    thrownBy(signTo(tm.session, C.CKM_ECDSA, ec.privateKey, digest, 2 ** 32)),
    "signTo: argument 'ticket' must be an integer from 0 to 4294967295",
  );
  expectTypeError(thrownBy(signTo('s', C.CKM_ECDSA, ec.privateKey, digest, 0)), ulongArgMessage('signTo', 'session'));
  expectTypeError(thrownBy(signTo(tm.session, C.CKM_ECDSA, ec.privateKey, 'text', 0)), /^signTo: argument 'data' must be /);
  const setSignSink = (...args: unknown[]) => () => (binding.setSignSink as (...a: unknown[]) => void)(...args);
  expectTypeError(thrownBy(setSignSink(1, onOne, 4096)), "setSignSink: argument 'onBatch' must be a function");
  expectTypeError(thrownBy(setSignSink(onBatch, {}, 4096)), "setSignSink: argument 'onOne' must be a function");
  expectTypeError(thrownBy(setSignSink(onBatch, onOne, 255)), "setSignSink: argument 'slabBytes' must be an integer from 256 to 16777216");
  // A call refused up front was never queued: nothing answers it.
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(answers).toEqual([]);
});

test('with no sink registered (a fresh worker thread), signTo throws instead of losing the answer', async () => {
  const code = `
    const { parentPort, workerData: w } = require('worker_threads');
    const binding = require(w.addon);
    const p11 = new binding.PKCS11();
    p11.load(w.modulePath);
    p11.C_Initialize();
    let outcome;
    try {
      p11.signTo(1, w.mechanism, 1, Buffer.alloc(32), 0);
      outcome = 'returned';
    } catch (error) {
      outcome = error.constructor.name + ': ' + error.message;
    }
    p11.C_Finalize();
    parentPort.postMessage(outcome);
  `;
  const worker = new Worker(code, { eval: true, workerData: { addon: addonPath(), modulePath: tm.token.modulePath, mechanism: C.CKM_ECDSA } });
  const outcome = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  expect(outcome).toBe('Error: signTo: no completion sink is registered (setSignSink)');
});

test('a worker thread that ends while its signTo call is in the module: the call returns later, and nothing breaks', async () => {
  // The engine outlives the worker's environment while a thread is in the module; the sink's
  // references must be gone before that thread drops the engine (Engine::Shutdown releases them).
  const control = new ShimControl();
  try {
    control.set({ 'delay.C_Sign': 300 });
    applyShimEnv(control);
    const code = `
      const { parentPort, workerData: w } = require('worker_threads');
      const kit = require(w.kit);
      let answered = false;
      kit.loadBinding().setSignSink(() => (answered = true), () => (answered = true), 4096);
      const { p11, slot } = kit.openToken(w.shimPath, w.label);
      const session = kit.openSession(p11, slot, w.pin); // SoftHSM2 is shared: already logged in is fine
      const pair = kit.ecKeyPair(p11, session);
      p11.signTo(session, kit.C.CKM_ECDSA, pair.privateKey, Buffer.alloc(32, 1), 9);
      parentPort.postMessage(answered ? 'answered too early' : 'submitted');
    `;
    const worker = new Worker(code, {
      eval: true,
      workerData: { kit: path.join(__dirname, 'support', 'child-kit.js'), shimPath: buildShim(), label: tm.token.label, pin: tm.token.userPin },
    });
    const message = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(message).toBe('submitted');
    await worker.terminate(); // the call sleeps 300 ms in the shim before it reaches SoftHSM2
    await new Promise((resolve) => setTimeout(resolve, 600));
    // Still here, and this thread's own sink still works.
    const digest = sha256(Buffer.from('after the worker'));
    tm.p11.signTo(tm.session, C.CKM_ECDSA, ec.privateKey, digest, 5);
    const [answer] = await answered(1);
    expect([answer.ticket, ecdsaValid(ec, Buffer.from('after the worker'), answer.value)]).toEqual([5, true]);
  } finally {
    control.cleanup();
  }
});

describe('signToBatch: many signTo calls in one', () => {
  const FIELDS = 6;
  /** fields and data for [session, mechanism, key, ticket, bytes] requests, data packed back to back. */
  function pack(requests: [Handle, number, Handle, number, Buffer][]): [Float64Array, Uint8Array] {
    const fields = new Float64Array(requests.length * FIELDS);
    const data = new Uint8Array(requests.reduce((n, r) => n + r[4].length, 0));
    let at = 0;
    requests.forEach(([session, mechanism, key, ticket, input], i) => {
      fields.set([Number(session), mechanism, Number(key), ticket, at, input.length], i * FIELDS);
      data.set(input, at);
      at += input.length;
    });
    return [fields, data];
  }
  const signToBatch = (...args: unknown[]) => () => (tm.p11.signToBatch as (...a: unknown[]) => void)(...args);

  test('each request is signed over its own data and answered under its ticket; count limits what is read', async () => {
    const messages = Array.from({ length: 40 }, (_, i) => bytes(30 + i, 200 + i));
    const [fields, data] = pack(messages.map((m, i) => [sessions[i % sessions.length], C.CKM_ECDSA, ec.privateKey, 1000 + i, sha256(m)]));
    tm.p11.signToBatch(36, fields, data); // the last four are not part of the batch
    const got = await answered(36);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answers.length).toBe(36);
    expect(got.map((a) => a.ticket).sort((a, b) => a - b)).toEqual(messages.slice(0, 36).map((_, i) => 1000 + i));
    expect(got.filter((a) => a.failed || !ecdsaValid(ec, messages[a.ticket - 1000], a.value))).toEqual([]);
  });

  test("a session's requests run in the order of the batch; a failed one answers with a Pkcs11Error of sign", async () => {
    const digest = sha256(Buffer.from('batch order'));
    const [fields, data] = pack([
      [tm.session, C.CKM_ECDSA, ec.privateKey, 1, digest],
      [tm.session, C.CKM_ECDSA, 0x7fff_fff0, 2, digest], // no such key
      [tm.session, C.CKM_ECDSA, ec.privateKey, 3, digest],
    ]);
    await settledTogether(3, () => tm.p11.signToBatch(3, fields, data)); // as in the signTo test above
    const got = await threeInOrderMiddleFailed();
    expect(ecdsaValid(ec, Buffer.from('batch order'), got[2].value)).toBe(true);
  });

  test('a bad field is a TypeError naming it, and then no request of the batch was submitted', async () => {
    const digest = sha256(Buffer.from('refused'));
    const good: [Handle, number, Handle, number, Buffer] = [tm.session, C.CKM_ECDSA, ec.privateKey, 7, digest];
    const cases: [number, number, string][] = [
      [0, -1, "signToBatch: argument 'fields[6]' must be a session handle (a non-negative integer)"],
      [1, 1.5, "signToBatch: argument 'fields[7]' must be a mechanism type (a non-negative integer)"],
      [2, NaN, "signToBatch: argument 'fields[8]' must be a key handle (a non-negative integer)"],
      [3, 2 ** 32, "signToBatch: argument 'fields[9]' must be a ticket, an integer from 0 to 4294967295"],
      [4, 65, "signToBatch: argument 'fields[10]' must be an offset within 'data'"],
      [5, 33, "signToBatch: argument 'fields[11]' must be a length that stays within 'data'"],
    ];
    for (const [field, value, message] of cases) {
      const [fields, data] = pack([good, [tm.session, C.CKM_ECDSA, ec.privateKey, 8, digest]]);
      fields[FIELDS + field] = value;
      expectTypeError(thrownBy(signToBatch(2, fields, data)), message);
    }
    const [fields, data] = pack([good]);
    expectTypeError(thrownBy(signToBatch(2, fields, data)), "signToBatch: argument 'count' must be at most the number of requests in 'fields' (6 numbers each)");
    expectTypeError(thrownBy(signToBatch(-1, fields, data)), ulongArgMessage('signToBatch', 'count'));
    expectTypeError(thrownBy(signToBatch(1, Array.from(fields), data)), "signToBatch: argument 'fields' must be a Float64Array");
    expectTypeError(thrownBy(signToBatch(1, fields, Buffer.from(data).toString('hex'))), "signToBatch: argument 'data' must be a Uint8Array");
    const detached = new Uint8Array(data);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expectTypeError(thrownBy(signToBatch(1, fields, detached)), "signToBatch: argument 'data' must be a Uint8Array that is not detached");
    // Ticket 7 (valid in every refused batch) was never queued: a later call on its session
    // answers, and 7 does not.
    tm.p11.signTo(tm.session, C.CKM_ECDSA, ec.privateKey, digest, 9);
    await answered(1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answers.map((a) => a.ticket)).toEqual([9]);
  });

  test('an empty batch submits nothing; a module not loaded refuses the batch', async () => {
    const [fields, data] = pack([[tm.session, C.CKM_ECDSA, ec.privateKey, 11, sha256(Buffer.from('none'))]]);
    tm.p11.signToBatch(0, fields, data);
    expect(tm.p11.callsInFlight).toBe(0);
    const unloaded = new binding.PKCS11();
    expect(String(thrownBy(() => unloaded.signToBatch(1, fields, data)))).toBe("Error: signToBatch: no PKCS#11 module is loaded (call load(path) first)");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answers).toEqual([]);
  });
});
