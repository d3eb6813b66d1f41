/**
 * Property tests over every public function of the raw binding (the native PKCS11 class).
 *
 * Every name on PKCS11.prototype (so a function added later is covered without touching this
 * file; the accessors and the constructor too) is called with argument lists drawn from a
 * generator of hostile values: wrong types, negative/fractional/huge numbers, NaN, ±Infinity,
 * -0, 2^53, bigints outside CK_ULONG, empty and 1–4 MiB buffers, detached ArrayBuffers, objects
 * whose getters throw, Proxies that throw on every trap, Symbols, junk arrays, templates with
 * junk entries, mechanisms with junk parameters, arrays that change while they are read — mixed
 * with real values (the session, slot, key handles, PINs) so calls also get past the first
 * argument check. `this` is the live module most of the time, otherwise a closed, a finalised,
 * a never-loaded PKCS11 object, or no PKCS11 object at all.
 *
 * The property: every call returns, or throws / rejects with a TypeError, a Pkcs11Error, the
 * error a hostile getter/proxy threw, or one of the binding's documented plain Errors about the
 * module not being loaded — never anything else, never a hang, and the process never dies.
 *
 * The properties run in child processes (batches of functions) against a real SoftHSM2 token,
 * so a crash is caught and reported with the function, the seed and the input that killed it;
 * the batch then resumes after that function. Reproduce with PROPS_SEED=<seed> (and
 * PROPS_ONLY=<function> to run a single function). PROPS_RUNS sets the inputs per function.
 * Results go to test-results/props-summary.json.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { binding } from '../lib/binding';
import * as C from '../lib/generated/constants';
import { addEmptySlotToken, createTestToken, TestToken } from './support/softhsm';

const ROOT = path.resolve(__dirname, '..');
const RUNS = Number(process.env.PROPS_RUNS ?? 400);
/** A fixed seed by default (reproducible runs); PROPS_SEED=random explores, PROPS_SEED=<n> replays. */
const BASE_SEED = process.env.PROPS_SEED === 'random' ? (Date.now() ^ (process.pid << 8)) >>> 0 : Number(process.env.PROPS_SEED ?? 20240601);
/** PROPS_SWEEP=0 turns off the deterministic sweep (e.g. to reproduce a property failure alone). */
const SWEEP = process.env.PROPS_SWEEP !== '0';
const BATCHES = 4;
const PARALLEL = 2;
/**
 * A batch child that writes no progress line (one per input) for this long is killed and
 * reported as hung. The budget is per input, not per batch: a whole batch took 23-32 s under
 * AddressSanitizer beside other suites, and a 40 s budget for the batch once killed a child that
 * was still moving (at input 1097 of its last function).
 */
const STALL_TIMEOUT_MS = 30_000;
/** How often the parent looks at a child's progress file. */
const STALL_CHECK_MS = 1_000;

/** Constants the child needs (it is plain JS and does not load lib/). */
const CONSTANTS = {
  CKF_RW_SESSION: C.CKF_RW_SESSION,
  CKF_SERIAL_SESSION: C.CKF_SERIAL_SESSION,
  CKF_DONT_BLOCK: C.CKF_DONT_BLOCK,
  CKU_USER: C.CKU_USER,
  CKU_SO: C.CKU_SO,
  CKS_RW_USER_FUNCTIONS: C.CKS_RW_USER_FUNCTIONS,
  CKS_RW_SO_FUNCTIONS: C.CKS_RW_SO_FUNCTIONS,
  CKA_CLASS: C.CKA_CLASS,
  CKA_TOKEN: C.CKA_TOKEN,
  CKA_LABEL: C.CKA_LABEL,
  CKA_VALUE: C.CKA_VALUE,
  CKA_KEY_TYPE: C.CKA_KEY_TYPE,
  CKA_ID: C.CKA_ID,
  CKA_SIGN: C.CKA_SIGN,
  CKA_VERIFY: C.CKA_VERIFY,
  CKA_ENCRYPT: C.CKA_ENCRYPT,
  CKA_DECRYPT: C.CKA_DECRYPT,
  CKA_WRAP: C.CKA_WRAP,
  CKA_UNWRAP: C.CKA_UNWRAP,
  CKA_DERIVE: C.CKA_DERIVE,
  CKA_EXTRACTABLE: C.CKA_EXTRACTABLE,
  CKA_SENSITIVE: C.CKA_SENSITIVE,
  CKA_START_DATE: C.CKA_START_DATE,
  CKA_END_DATE: C.CKA_END_DATE,
  CKA_VALUE_LEN: C.CKA_VALUE_LEN,
  CKA_EC_PARAMS: C.CKA_EC_PARAMS,
  CKA_EC_POINT: C.CKA_EC_POINT,
  CKA_WRAP_TEMPLATE: C.CKA_WRAP_TEMPLATE,
  CKA_UNWRAP_TEMPLATE: C.CKA_UNWRAP_TEMPLATE,
  CKA_DERIVE_TEMPLATE: C.CKA_DERIVE_TEMPLATE,
  CKA_ALLOWED_MECHANISMS: C.CKA_ALLOWED_MECHANISMS,
  CKA_MODULUS_BITS: C.CKA_MODULUS_BITS,
  CKM_RSA_PKCS_KEY_PAIR_GEN: C.CKM_RSA_PKCS_KEY_PAIR_GEN,
  CKM_RSA_X9_31_KEY_PAIR_GEN: C.CKM_RSA_X9_31_KEY_PAIR_GEN,
  CKM_DSA_KEY_PAIR_GEN: C.CKM_DSA_KEY_PAIR_GEN,
  CKM_DH_PKCS_KEY_PAIR_GEN: C.CKM_DH_PKCS_KEY_PAIR_GEN,
  CKM_DSA_PARAMETER_GEN: C.CKM_DSA_PARAMETER_GEN,
  CKM_DH_PKCS_PARAMETER_GEN: C.CKM_DH_PKCS_PARAMETER_GEN,
  CKM_RSA_PKCS: C.CKM_RSA_PKCS,
  CKM_RSA_PKCS_PSS: C.CKM_RSA_PKCS_PSS,
  CKM_RSA_PKCS_OAEP: C.CKM_RSA_PKCS_OAEP,
  CKM_SHA256: C.CKM_SHA256,
  CKM_SHA256_HMAC: C.CKM_SHA256_HMAC,
  CKM_EC_KEY_PAIR_GEN: C.CKM_EC_KEY_PAIR_GEN,
  CKM_ECDSA: C.CKM_ECDSA,
  CKM_ECDSA_SHA256: C.CKM_ECDSA_SHA256,
  CKM_ECDH1_DERIVE: C.CKM_ECDH1_DERIVE,
  CKM_EDDSA: C.CKM_EDDSA,
  CKM_AES_KEY_GEN: C.CKM_AES_KEY_GEN,
  CKM_AES_CBC: C.CKM_AES_CBC,
  CKM_AES_CBC_PAD: C.CKM_AES_CBC_PAD,
  CKM_AES_CTR: C.CKM_AES_CTR,
  CKM_AES_GCM: C.CKM_AES_GCM,
  CKM_AES_KEY_WRAP: C.CKM_AES_KEY_WRAP,
  CKM_AES_KEY_WRAP_PAD: C.CKM_AES_KEY_WRAP_PAD,
  CKM_GENERIC_SECRET_KEY_GEN: C.CKM_GENERIC_SECRET_KEY_GEN,
};

/**
 * The child: plain JS run by `node`, loading the addon exactly as lib/binding.ts does
 * (node-gyp-build from the package root, so PKCS11_NAPI_PREBUILD and the ASan build of
 * scripts/sanitize.sh apply here too). Template literals are avoided inside it.
 */
const CHILD_SOURCE = String.raw`
'use strict';
const fs = require('fs');
const path = require('path');
const util = require('util');
const cfg = JSON.parse(process.env.PROPS_CONFIG);
const K = cfg.constants;
const fc = require(path.join(cfg.root, 'node_modules', 'fast-check'));
const binding = require(path.join(cfg.root, 'node_modules', 'node-gyp-build'))(cfg.root);

// The same shape as lib/errors.ts's Pkcs11Error: the addon fills in name, code and function.
class Pkcs11Error extends Error {}
binding.setErrorClass(Pkcs11Error);
const PKCS11 = binding.PKCS11;
const proto = PKCS11.prototype;

/** What a hostile getter or proxy trap throws: the binding must pass it through unchanged. */
class HostileError extends Error {
  constructor(where) { super('hostile ' + where); this.hostile = true; }
}

const progressFd = fs.openSync(cfg.progressFile, 'a');
function progress(line) { fs.writeSync(progressFd, line.replace(/\n/g, ' ') + '\n'); }

// ------------------------------------------------------------------ the live fixture
const ctx = { p11: null, slot: null, throwSlot: null, session: null, throwSession: null, priv: null, pub: null, aes: null, hmac: null };
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

function slotByLabel(p11, label) {
  const found = p11.C_GetSlotList(true).filter((s) => p11.C_GetTokenInfo(s).label === label);
  if (found.length !== 1) throw new Error('expected one token labelled ' + label + ', found ' + found.length);
  return found[0];
}

function tryCall(f) { try { return f(); } catch (e) { return undefined; } }

function sessionState(session) {
  if (session === null) return -1;
  const info = tryCall(() => ctx.p11.C_GetSessionInfo(session));
  return info === undefined ? -1 : Number(info.state);
}

function makeKeys() {
  const p11 = ctx.p11;
  const s = ctx.session;
  const pair = p11.C_GenerateKeyPair(s, K.CKM_EC_KEY_PAIR_GEN,
    [{ type: K.CKA_TOKEN, value: false }, { type: K.CKA_EC_PARAMS, value: P256 }, { type: K.CKA_VERIFY, value: true }, { type: K.CKA_LABEL, value: 'props-ec' }],
    [{ type: K.CKA_TOKEN, value: false }, { type: K.CKA_SIGN, value: true }, { type: K.CKA_DERIVE, value: true }, { type: K.CKA_LABEL, value: 'props-ec' }]);
  ctx.pub = pair.publicKey;
  ctx.priv = pair.privateKey;
  ctx.aes = p11.C_GenerateKey(s, K.CKM_AES_KEY_GEN, [
    { type: K.CKA_TOKEN, value: false }, { type: K.CKA_VALUE_LEN, value: 32 }, { type: K.CKA_ENCRYPT, value: true },
    { type: K.CKA_DECRYPT, value: true }, { type: K.CKA_WRAP, value: true }, { type: K.CKA_UNWRAP, value: true },
    { type: K.CKA_EXTRACTABLE, value: true }, { type: K.CKA_SENSITIVE, value: false }]);
  ctx.hmac = p11.C_GenerateKey(s, K.CKM_GENERIC_SECRET_KEY_GEN, [
    { type: K.CKA_TOKEN, value: false }, { type: K.CKA_VALUE_LEN, value: 32 }, { type: K.CKA_SIGN, value: true },
    { type: K.CKA_VERIFY, value: true }, { type: K.CKA_EXTRACTABLE, value: true }, { type: K.CKA_SENSITIVE, value: false }]);
}

function keysAlive() {
  for (const key of [ctx.priv, ctx.pub, ctx.aes, ctx.hmac]) {
    if (key === null || tryCall(() => ctx.p11.C_GetAttributeValue(ctx.session, key, [K.CKA_CLASS])) === undefined) return false;
  }
  return true;
}

/** Puts the fixture back: module loaded and initialised, logged-in sessions, live keys. */
function heal(fresh) {
  if (ctx.p11 === null) ctx.p11 = new PKCS11();
  const p11 = ctx.p11;
  if (p11.libraryPath === null) p11.load(cfg.modulePath);
  if (!p11.initialized) { p11.C_Initialize(); ctx.session = null; ctx.throwSession = null; }
  if (ctx.slot === null || fresh) ctx.slot = slotByLabel(p11, cfg.label);
  if (ctx.throwSlot === null || fresh) ctx.throwSlot = slotByLabel(p11, cfg.throwLabel);
  if (fresh) { tryCall(() => p11.C_CloseAllSessions(ctx.slot)); tryCall(() => p11.C_CloseAllSessions(ctx.throwSlot)); ctx.session = null; ctx.throwSession = null; }
  let state = sessionState(ctx.session);
  if (state < 0) { ctx.session = p11.C_OpenSession(ctx.slot, K.CKF_RW_SESSION | K.CKF_SERIAL_SESSION); ctx.priv = null; state = sessionState(ctx.session); }
  if (state === K.CKS_RW_SO_FUNCTIONS) { tryCall(() => p11.C_Logout(ctx.session)); state = sessionState(ctx.session); }
  if (state !== K.CKS_RW_USER_FUNCTIONS) p11.C_Login(ctx.session, K.CKU_USER, cfg.userPin);
  if (!keysAlive()) makeKeys();
  // The throw-away token: an SO session (for C_InitPIN/C_SetPIN); its PINs may change, that is fine.
  let throwState = sessionState(ctx.throwSession);
  if (throwState < 0) { ctx.throwSession = tryCall(() => p11.C_OpenSession(ctx.throwSlot, K.CKF_RW_SESSION | K.CKF_SERIAL_SESSION)) ?? null; throwState = sessionState(ctx.throwSession); }
  if (ctx.throwSession !== null && throwState !== K.CKS_RW_SO_FUNCTIONS) tryCall(() => p11.C_Login(ctx.throwSession, K.CKU_SO, cfg.soPin));
}

// ------------------------------------------------------------------ other "this" values
const others = {};
function makeOthers() {
  const closed = new PKCS11(); closed.load(cfg.modulePath); closed.C_Initialize(); closed.close();
  const finalized = new PKCS11(); finalized.load(cfg.modulePath); finalized.C_Initialize(); finalized.C_Finalize();
  others.closed = closed;
  others.finalized = finalized;
  others.fresh = new PKCS11();
}
function resolveThis(kind) {
  switch (kind) {
    case 'live': return ctx.p11;
    case 'closed': return others.closed;
    case 'finalized': return others.finalized;
    case 'fresh': return others.fresh;
    case 'plainObject': return {};
    case 'undefined': return undefined;
    case 'prototypeObject': return Object.create(proto);
    case 'throwingProxy': return throwingProxy({});
    default: throw new Error('unknown this kind ' + kind);
  }
}

// ------------------------------------------------------------------ hostile values
const GETTER_KEYS = ['type', 'value', 'mechanism', 'parameter', 'flags', 'libraryParameters', 'spinningMutexes', 'deepBind', 'timeoutMs',
  'hashAlg', 'mgf', 'saltLen', 'source', 'sourceData', 'kdf', 'sharedData', 'publicData', 'iv', 'aad', 'tagBits',
  'ivBits', 'counterBits', 'counterBlock', 'phFlag', 'contextData', 'length', '0', '1', 'then', 'valueOf', 'toString'];
function throwingGetters() {
  const o = {};
  for (const k of GETTER_KEYS) Object.defineProperty(o, k, { get() { throw new HostileError('getter ' + k); }, enumerable: true });
  Object.defineProperty(o, Symbol.toPrimitive, { get() { throw new HostileError('getter toPrimitive'); } });
  return o;
}
const TRAPS = ['get', 'set', 'has', 'deleteProperty', 'ownKeys', 'getOwnPropertyDescriptor', 'defineProperty',
  'getPrototypeOf', 'setPrototypeOf', 'isExtensible', 'preventExtensions', 'apply', 'construct'];
function throwingProxy(target) {
  const handler = {};
  for (const trap of TRAPS) handler[trap] = () => { throw new HostileError('proxy ' + trap); };
  return new Proxy(target, handler);
}
function detachedArrayBuffer(size) {
  const ab = new ArrayBuffer(size);
  structuredClone(ab, { transfer: [ab] });
  return ab;
}
/** An array whose first element, when read, appends 'extra' more elements to the array. */
function growingArray(extra, item) {
  const array = [item];
  let grown = false;
  Object.defineProperty(array, 0, { enumerable: true, get() { if (!grown) { grown = true; for (let i = 0; i < extra; i++) array.push(item); } return item; } });
  return array;
}
function shrinkingArray(n, item) {
  const array = new Array(n).fill(item);
  Object.defineProperty(array, 0, { enumerable: true, configurable: true, get() { array.length = 1; return item; } });
  return array;
}
function dateWith(method, value) { const d = new Date(Date.UTC(2024, 0, 2)); d[method] = value; return d; }

const LARGE = [Buffer.alloc(1 << 20, 0x41), Buffer.alloc((5 << 20) / 2, 0x42), Buffer.alloc(4 << 20, 0x43)];
const LONG_STRING = 'x'.repeat(1 << 20);

/** A recipe: builds its value when the input runs (hostile objects are never handed to fast-check). */
function R(label, make) {
  return { label, make, toString() { return label; }, [fc.toStringMethod]() { return label; } };
}
const K_ = (label, value) => R(label, () => value);
const show = (v) => util.inspect(v, { depth: 2, maxArrayLength: 8, maxStringLength: 40, breakLength: Infinity });

const scalarRecipes = [
  K_('undefined', undefined), K_('null', null), K_('true', true), K_('false', false),
  K_('0', 0), K_('-0', -0), K_('1', 1), K_('-1', -1), K_('0.5', 0.5), K_('-1.5', -1.5), K_('NaN', NaN),
  K_('Infinity', Infinity), K_('-Infinity', -Infinity), K_('2**53', 2 ** 53), K_('2**53-1', 2 ** 53 - 1),
  K_('2**64', 2 ** 64), K_('2**32', 2 ** 32), K_('2**32-1', 2 ** 32 - 1), K_('MAX_VALUE', Number.MAX_VALUE),
  K_('MIN_VALUE', Number.MIN_VALUE), K_('0n', 0n), K_('1n', 1n), K_('-1n', -1n), K_('2n**64n', 2n ** 64n),
  K_('2n**64n-1n', 2n ** 64n - 1n), K_('2n**63n', 2n ** 63n), K_('2n**1024n', 2n ** 1024n), K_('-(2n**64n)', -(2n ** 64n)),
  K_("''", ''), K_("'x'", 'x'), K_("'\\0'", '\0'), K_('lone surrogate', '\uD800'), K_('1 MiB string', LONG_STRING),
  K_('5000-char string', 'p'.repeat(5000)), K_("'pkcs11:'", 'pkcs11:token=x'),
  R('Symbol()', () => Symbol('junk')), K_('Symbol.iterator', Symbol.iterator),
  R('function', () => function junk() {}), R('class', () => class Junk {}), R('arrow that throws', () => () => { throw new HostileError('called'); }),
];
const bytesRecipes = [
  R('Buffer(0)', () => Buffer.alloc(0)), R('Buffer(1)', () => Buffer.from([1])), R('Buffer(16)', () => Buffer.alloc(16, 7)),
  R('Buffer(32)', () => Buffer.alloc(32, 9)), R('Buffer(64)', () => Buffer.alloc(64, 3)), R('Buffer(100)', () => Buffer.alloc(100, 5)),
  R('P-256 OID', () => Buffer.from(P256)), R('Uint8Array(8)', () => new Uint8Array(8)), R('Uint8ClampedArray(8)', () => new Uint8ClampedArray(8)),
  R('Uint16Array(8)', () => new Uint16Array(8)), R('Float64Array(2)', () => new Float64Array(2)), R('BigUint64Array(2)', () => new BigUint64Array(2)),
  R('DataView(8)', () => new DataView(new ArrayBuffer(8))), R('ArrayBuffer(16)', () => new ArrayBuffer(16)),
  R('ArrayBuffer(0)', () => new ArrayBuffer(0)), R('SharedArrayBuffer(16)', () => new SharedArrayBuffer(16)),
  R('detached ArrayBuffer', () => detachedArrayBuffer(16)), R('Uint8Array on detached buffer', () => { const ab = new ArrayBuffer(8); const view = new Uint8Array(ab); structuredClone(ab, { transfer: [ab] }); return view; }),
  R('Buffer view at offset 3', () => Buffer.alloc(40, 1).subarray(3, 19)), R('Uint8Array on SharedArrayBuffer', () => new Uint8Array(new SharedArrayBuffer(16))),
  R('1 MiB Buffer', () => LARGE[0]), R('2.5 MiB Buffer', () => LARGE[1]), R('4 MiB Buffer', () => LARGE[2]),
  R('resizable ArrayBuffer', () => new ArrayBuffer(8, { maxByteLength: 64 })),
];
const objectRecipes = [
  R('{}', () => ({})), R('[]', () => []), R('[1,2]', () => [1, 2]), R('Object.create(null)', () => Object.create(null)),
  R('Date', () => new Date()), R('Invalid Date', () => new Date(NaN)), R('Map', () => new Map()), R('Promise', () => Promise.resolve(1)),
  R('RegExp', () => /x/), R('Error', () => new Error('x')), R('throwing getters', throwingGetters),
  R('throwing Proxy({})', () => throwingProxy({})), R('throwing Proxy([])', () => throwingProxy([])),
  R('throwing Proxy(function)', () => throwingProxy(function () {})), R('throwing Proxy(Buffer)', () => throwingProxy(Buffer.alloc(4))),
  R('array with a throwing index getter', () => { const a = [1, 2]; Object.defineProperty(a, 0, { get() { throw new HostileError('index 0'); } }); return a; }),
  R('sparse array(5)', () => new Array(5)), R('frozen object', () => Object.freeze({ type: 1, value: true })),
  R('object with a throwing valueOf', () => ({ valueOf() { throw new HostileError('valueOf'); }, toString() { throw new HostileError('toString'); } })),
  R('array growing by 5000 on read', () => growingArray(5000, 0)), R('array growing by 200 on read', () => growingArray(200, { type: 0 })),
  R('array shrinking to 1 on read', () => shrinkingArray(50, 0)),
];

// ------------------------------------------------------------------ real values
const refRecipes = [
  R('session', () => ctx.session), R('BigInt(session)', () => BigInt(ctx.session)), R('slot', () => ctx.slot),
  R('throwaway slot', () => ctx.throwSlot), R('throwaway session', () => ctx.throwSession),
  R('EC private key', () => ctx.priv), R('EC public key', () => ctx.pub), R('AES key', () => ctx.aes), R('HMAC key', () => ctx.hmac),
  R('user PIN', () => cfg.userPin), R('user PIN bytes', () => Buffer.from(cfg.userPin)), R('SO PIN', () => cfg.soPin),
  R('module path', () => cfg.modulePath), R('CKF_RW|SERIAL', () => K.CKF_RW_SESSION | K.CKF_SERIAL_SESSION), R('CKU_USER', () => K.CKU_USER),
  R('CKF_DONT_BLOCK', () => K.CKF_DONT_BLOCK),
];

const smallUlong = fc.oneof(fc.nat({ max: 0x1100 }), fc.constantFrom(2 ** 32 - 1, 2 ** 53 - 1, 0x80000000, 0x80000001)).map((n) => K_(String(n), n));
const randomNumber = fc.oneof(fc.integer({ min: -1e6, max: 1e12 }), fc.double()).map((n) => K_(show(n), n));
const randomBigInt = fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map((n) => K_(n + 'n', n));
const randomString = fc.string({ maxLength: 40, unit: 'binary' }).map((s) => K_(show(s), s));
const randomBytes = fc.uint8Array({ maxLength: 96 }).map((a) => R('Uint8Array[' + a.length + ']', () => Buffer.from(a)));
const anything = fc.anything({ maxDepth: 2, withBigInt: true, withDate: true, withTypedArray: true, withNullPrototype: true, withSparseArray: true })
  .map((v) => R('anything ' + show(v), () => v));

const leaf = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...scalarRecipes) },
  { weight: 4, arbitrary: fc.constantFrom(...bytesRecipes) },
  { weight: 4, arbitrary: fc.constantFrom(...objectRecipes) },
  { weight: 3, arbitrary: smallUlong },
  { weight: 1, arbitrary: randomNumber },
  { weight: 1, arbitrary: randomBigInt },
  { weight: 1, arbitrary: randomString },
  { weight: 1, arbitrary: randomBytes },
  { weight: 1, arbitrary: anything },
);

const ATTRIBUTE_TYPES = [K.CKA_CLASS, K.CKA_TOKEN, K.CKA_LABEL, K.CKA_VALUE, K.CKA_KEY_TYPE, K.CKA_ID, K.CKA_SIGN, K.CKA_VERIFY,
  K.CKA_ENCRYPT, K.CKA_DECRYPT, K.CKA_START_DATE, K.CKA_END_DATE, K.CKA_VALUE_LEN, K.CKA_EC_PARAMS, K.CKA_EC_POINT,
  K.CKA_WRAP_TEMPLATE, K.CKA_UNWRAP_TEMPLATE, K.CKA_DERIVE_TEMPLATE, K.CKA_ALLOWED_MECHANISMS, 0x80000001];
const attributeType = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...ATTRIBUTE_TYPES).map((t) => K_('0x' + t.toString(16), t)) },
  { weight: 1, arbitrary: fc.constantFrom(K_('2n**64n-1n', 2n ** 64n - 1n), K_('0x80000001n', 0x80000001n)) },
  { weight: 2, arbitrary: leaf },
);
const attributeValue = (inner) => fc.oneof(
  { weight: 5, arbitrary: leaf },
  { weight: 2, arbitrary: fc.constantFrom(
      K_('true', true), K_('false', false), K_("'20240102'", '20240102'), K_("'2024-1-2'", '2024-1-2'),
      R('Date 2024', () => new Date(Date.UTC(2024, 0, 2))), R('Date year 10000', () => new Date(Date.UTC(10000, 0, 1))),
      R('Date year -1', () => new Date(Date.UTC(-1, 0, 1))),
      R('Date whose getUTCFullYear throws', () => dateWith('getUTCFullYear', () => { throw new HostileError('date getter'); })),
      R('Date whose getUTCMonth is 5', () => dateWith('getUTCMonth', 5)),
      R('Date whose getUTCDate returns a string', () => dateWith('getUTCDate', () => 'x')),
      R('Date whose getUTCFullYear returns a bigint', () => dateWith('getUTCFullYear', () => 2024n)),
      R('[1, 2n, 3]', () => [1, 2n, 3]), R('[-1]', () => [-1]), R('[junk getter]', () => { const a = [1]; Object.defineProperty(a, 0, { get() { throw new HostileError('mech list'); } }); return a; })) },
  ...(inner ? [{ weight: 1, arbitrary: inner }] : []),
);
const attribute = (inner) => fc.oneof(
  { weight: 6, arbitrary: fc.record({ type: attributeType, value: attributeValue(inner) }, { requiredKeys: ['type'] })
      .map((r) => R('{type:' + r.type.label + (r.value ? ',value:' + r.value.label : '') + '}', () => (r.value ? { type: r.type.make(), value: r.value.make() } : { type: r.type.make() }))) },
  { weight: 1, arbitrary: leaf },
);
const templateOf = (inner) => fc.array(attribute(inner), { maxLength: 5 })
  .map((items) => R('[' + items.map((i) => i.label).join(', ') + ']', () => items.map((i) => i.make())));
const innerTemplate = templateOf(undefined);
const template = fc.oneof(
  { weight: 8, arbitrary: templateOf(templateOf(innerTemplate)) },
  { weight: 1, arbitrary: fc.constantFrom(
      R('1025-attribute template', () => Array.from({ length: 1025 }, () => ({ type: K.CKA_TOKEN, value: false }))),
      R('template of 5000 types growing on read', () => growingArray(5000, { type: K.CKA_LABEL, value: 'x' })),
      R('template shrinking on read', () => shrinkingArray(20, { type: K.CKA_TOKEN, value: false })),
      R('valid EC public template', () => [{ type: K.CKA_TOKEN, value: false }, { type: K.CKA_EC_PARAMS, value: P256 }]),
      R('valid AES template', () => [{ type: K.CKA_TOKEN, value: false }, { type: K.CKA_VALUE_LEN, value: 16 }, { type: K.CKA_ENCRYPT, value: true }]),
      R('wrap template nested twice', () => [{ type: K.CKA_WRAP_TEMPLATE, value: [{ type: K.CKA_UNWRAP_TEMPLATE, value: [] }] }])) },
);

const MECHANISMS = [K.CKM_ECDSA, K.CKM_ECDSA_SHA256, K.CKM_SHA256, K.CKM_SHA256_HMAC, K.CKM_RSA_PKCS, K.CKM_RSA_PKCS_PSS,
  K.CKM_RSA_PKCS_OAEP, K.CKM_ECDH1_DERIVE, K.CKM_EDDSA, K.CKM_AES_KEY_GEN, K.CKM_AES_CBC, K.CKM_AES_CBC_PAD, K.CKM_AES_CTR,
  K.CKM_AES_GCM, K.CKM_AES_KEY_WRAP, K.CKM_AES_KEY_WRAP_PAD, K.CKM_EC_KEY_PAIR_GEN, K.CKM_GENERIC_SECRET_KEY_GEN, 0x80000123];
const mechanismType = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...MECHANISMS).map((m) => K_('0x' + m.toString(16), m)) },
  { weight: 1, arbitrary: leaf },
);
const PARAMETER_FIELDS = ['hashAlg', 'mgf', 'saltLen', 'source', 'sourceData', 'kdf', 'sharedData', 'publicData', 'iv', 'aad',
  'tagBits', 'ivBits', 'counterBits', 'counterBlock', 'phFlag', 'contextData'];
const fieldValue = fc.oneof(
  { weight: 3, arbitrary: leaf },
  { weight: 2, arbitrary: fc.constantFrom(K_('0x250', K.CKM_SHA256), K_('2', 2), K_('32', 32), K_('96', 96), K_('128', 128), K_('true', true),
      R('16 bytes', () => Buffer.alloc(16, 1)), R('12 bytes', () => Buffer.alloc(12, 2)), R('65-byte point', () => Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]))) },
);
const structuredParameter = fc.dictionary(fc.constantFrom(...PARAMETER_FIELDS), fieldValue, { maxKeys: 6 })
  .map((fields) => R('{' + Object.entries(fields).map(([k, v]) => k + ':' + v.label).join(',') + '}', () => {
    const out = {};
    for (const [k, v] of Object.entries(fields)) out[k] = v.make();
    return out;
  }));
const mechanism = fc.oneof(
  { weight: 3, arbitrary: mechanismType },
  { weight: 5, arbitrary: fc.record({ mechanism: mechanismType, parameter: fc.oneof(leaf, structuredParameter, structuredParameter) }, { requiredKeys: ['mechanism'] })
      .map((r) => R('{mechanism:' + r.mechanism.label + (r.parameter ? ',parameter:' + r.parameter.label : '') + '}', () => (r.parameter ? { mechanism: r.mechanism.make(), parameter: r.parameter.make() } : { mechanism: r.mechanism.make() }))) },
  { weight: 1, arbitrary: fc.constantFrom(
      R('mechanism with a throwing parameter getter', () => ({ mechanism: K.CKM_AES_GCM, get parameter() { throw new HostileError('parameter'); } })),
      R('mechanism whose parameter changes between reads', () => { let n = 0; return { mechanism: K.CKM_AES_GCM, get parameter() { n++; return n === 1 ? Buffer.alloc(12) : { iv: n > 2 ? undefined : Buffer.alloc(12) }; } }; }),
      R('GCM parameter whose iv changes between reads', () => { let n = 0; return { mechanism: K.CKM_AES_GCM, parameter: { get iv() { n++; return n === 1 ? Buffer.alloc(12) : 5; }, get aad() { n++; return n % 2 ? undefined : Buffer.alloc(3); } } }; }),
      R('Proxy mechanism', () => throwingProxy({ mechanism: K.CKM_ECDSA }))) },
);

const argument = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...refRecipes) },
  { weight: 3, arbitrary: mechanism },
  { weight: 3, arbitrary: template },
  { weight: 6, arbitrary: leaf },
);
const firstArgument = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...refRecipes.slice(0, 5)) },
  { weight: 3, arbitrary: leaf },
  { weight: 1, arbitrary: argument },
);
const hostileList = fc.tuple(fc.boolean(), firstArgument, fc.array(argument, { maxLength: 5 }))
  .map(([none, first, rest]) => (none && rest.length === 0 ? [] : [first, ...rest]));
// Mostly well-typed values, so that calls get past the first argument checks into the module,
// with one position replaced by a hostile value.
const plausible = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...refRecipes) },
  { weight: 3, arbitrary: fc.constantFrom(
      K_('CKM_ECDSA', K.CKM_ECDSA), K_('CKM_SHA256', K.CKM_SHA256), K_('CKM_SHA256_HMAC', K.CKM_SHA256_HMAC), K_('CKM_AES_KEY_WRAP_PAD', K.CKM_AES_KEY_WRAP_PAD),
      R('AES-GCM(iv 12)', () => ({ mechanism: K.CKM_AES_GCM, parameter: { iv: Buffer.alloc(12, 1), aad: Buffer.alloc(4), tagBits: 128 } })),
      R('AES-CBC-PAD(iv 16)', () => ({ mechanism: K.CKM_AES_CBC_PAD, parameter: Buffer.alloc(16, 2) })),
      R('AES-CTR', () => ({ mechanism: K.CKM_AES_CTR, parameter: { counterBits: 32, counterBlock: Buffer.alloc(16) } })),
      R('ECDH1(65-byte point)', () => ({ mechanism: K.CKM_ECDH1_DERIVE, parameter: { publicData: Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]) } })),
      R('EC keygen', () => K.CKM_EC_KEY_PAIR_GEN), R('AES keygen', () => K.CKM_AES_KEY_GEN)) },
  { weight: 3, arbitrary: fc.constantFrom(
      R('[]', () => []), R('[CKA_TOKEN false]', () => [{ type: K.CKA_TOKEN, value: false }]),
      R('EC public template', () => [{ type: K.CKA_TOKEN, value: false }, { type: K.CKA_EC_PARAMS, value: P256 }, { type: K.CKA_VERIFY, value: true }]),
      R('AES template', () => [{ type: K.CKA_TOKEN, value: false }, { type: K.CKA_VALUE_LEN, value: 16 }, { type: K.CKA_ENCRYPT, value: true }, { type: K.CKA_CLASS, value: 4 }, { type: K.CKA_KEY_TYPE, value: 0x1f }]),
      R('[CKA_CLASS, CKA_LABEL, CKA_VALUE]', () => [K.CKA_CLASS, K.CKA_LABEL, { type: K.CKA_VALUE }]),
      R('[CKA_WRAP_TEMPLATE, CKA_ALLOWED_MECHANISMS, CKA_START_DATE]', () => [K.CKA_WRAP_TEMPLATE, K.CKA_ALLOWED_MECHANISMS, K.CKA_START_DATE])) },
  { weight: 3, arbitrary: fc.constantFrom(...bytesRecipes.slice(0, 9)) },
  { weight: 2, arbitrary: fc.constantFrom(K_('0', 0), K_('1', 1), K_('16', 16), K_('32', 32), K_('true', true), K_('false', false), K_('undefined', undefined)) },
);
const plausibleList = fc.tuple(fc.array(plausible, { minLength: 1, maxLength: 6 }), fc.nat(), leaf, fc.boolean())
  .map(([list, at, bad, spoil]) => { if (spoil) list[at % list.length] = bad; return list; });
const argumentList = fc.oneof({ weight: 2, arbitrary: hostileList }, { weight: 3, arbitrary: plausibleList });
const thisKind = fc.constantFrom('live', 'live', 'live', 'live', 'live', 'live', 'live', 'live', 'live', 'live', 'live',
  'closed', 'finalized', 'fresh', 'plainObject', 'undefined', 'prototypeObject', 'throwingProxy');

// ------------------------------------------------------------------ the property
const PLAIN_ERRORS_ALLOWED = [
  /^[A-Za-z_]+: no PKCS#11 module is loaded/,
  /^Cannot load PKCS#11 module '/,
  /^load: a module is already loaded; call close\(\) first$/,
];
/** Functions whose calls may kill the session, the keys, the login or the module: heal after each. */
const DESTRUCTIVE = new Set(['close', 'load', 'C_Initialize', 'C_Finalize', 'C_CloseSession', 'C_CloseSessionAsync', 'C_CloseAllSessions',
  'C_Logout', 'C_LogoutAsync', 'C_Login', 'C_LoginAsync', 'C_DestroyObject', 'C_DestroyObjectAsync', 'C_SetAttributeValue',
  'C_SetAttributeValueAsync', 'C_InitToken', 'C_InitTokenAsync', 'C_InitPIN', 'C_InitPINAsync', 'C_SetPIN', 'C_SetPINAsync']);
/** Key generation with these mechanisms could be asked for 16,384-bit keys: slow, not hostile. */
const SLOW_KEYGEN = new Set([K.CKM_RSA_PKCS_KEY_PAIR_GEN, K.CKM_RSA_X9_31_KEY_PAIR_GEN, K.CKM_DSA_KEY_PAIR_GEN,
  K.CKM_DH_PKCS_KEY_PAIR_GEN, K.CKM_DSA_PARAMETER_GEN, K.CKM_DH_PKCS_PARAMETER_GEN]);

function kindOf(error) {
  if (error instanceof Pkcs11Error) return 'Pkcs11Error';
  if (error instanceof TypeError) return 'TypeError';
  if (error instanceof HostileError) return 'hostile';
  if (error instanceof Error && Object.getPrototypeOf(error) === Error.prototype && PLAIN_ERRORS_ALLOWED.some((re) => re.test(error.message))) return 'Error(not loaded)';
  return undefined;
}
function describeError(error) {
  if (error instanceof Error) return (error.constructor && error.constructor.name) + ': ' + error.message;
  return 'non-error ' + show(error);
}
function sameHandle(a, b) {
  try { return (typeof a === 'number' || typeof a === 'bigint') && b !== null && BigInt(a) === BigInt(b); } catch (e) { return false; }
}
function isMainTokenSession(value) {
  if (typeof value !== 'number' && typeof value !== 'bigint') return false;
  const info = tryCall(() => ctx.p11.C_GetSessionInfo(value));
  return info !== undefined && sameHandle(info.slotID, ctx.slot);
}
function mechanismTypeOf(m) {
  try { return typeof m === 'number' || typeof m === 'bigint' ? Number(m) : m && typeof m === 'object' && !util.types.isProxy(m) ? Number(Object.getOwnPropertyDescriptor(m, 'mechanism')?.value) : undefined; } catch (e) { return undefined; }
}

/**
 * Keeps the harness's own fixture alive without making any value less hostile: the real token
 * is never re-initialised and its PINs never changed (those calls go to the throw-away token),
 * key generation never asks for huge RSA/DSA/DH keys, and C_WaitForSlotEventAsync never
 * waits without CKF_DONT_BLOCK. Returns a reason to skip the input, or undefined.
 */
function guard(name, self, args) {
  // Every PKCS11 object of this process shares the module (and SoftHSM2's sessions).
  if (![ctx.p11, others.closed, others.finalized, others.fresh].includes(self)) return undefined;
  if (/^C_InitToken/.test(name) && sameHandle(args[0], ctx.slot)) args[0] = ctx.throwSlot;
  if (/^C_(InitPIN|SetPIN)/.test(name) && isMainTokenSession(args[0])) args[0] = ctx.throwSession;
  if (/^C_GenerateKey/.test(name) && SLOW_KEYGEN.has(mechanismTypeOf(args[1]))) args[1] = K.CKM_EC_KEY_PAIR_GEN;
  // C_WaitForSlotEventAsync without CKF_DONT_BLOCK may legitimately wait forever for a slot
  // event (on modules that support it), holding a worker thread: skipped, and only that.
  if (name === 'C_WaitForSlotEventAsync') {
    const flags = args[0];
    const valid = (typeof flags === 'number' && Number.isSafeInteger(flags) && flags >= 0) || (typeof flags === 'bigint' && flags >= 0n && flags < 2n ** 64n);
    if ((args.length === 0 || flags === undefined || flags === null || valid) && !(valid && (BigInt(flags) & BigInt(K.CKF_DONT_BLOCK)))) return 'wait without CKF_DONT_BLOCK';
  }
  return undefined;
}

// signTo answers through the completion sink, not a promise: each call the binding accepts is
// turned back into a promise that its answer settles, so a lost answer shows up as a hang and an
// error is judged like any other. Answers for one ticket number are taken first come, first served.
const signToWaiters = new Map();
function signToAnswered(ticket, value, failed) {
  const waiting = signToWaiters.get(ticket);
  const waiter = waiting && waiting.shift();
  if (waiting && waiting.length === 0) signToWaiters.delete(ticket);
  if (waiter) (failed ? waiter.reject(value) : waiter.resolve(value));
}
const { sinkRecords } = require(path.join(cfg.root, 'test', 'support', 'child-kit.js'));
binding.setSignSink((slab, count) => {
  for (const [ticket, signature] of sinkRecords(slab, count)) signToAnswered(ticket, signature, false);
}, signToAnswered, 4096);

function invoke(name, self, args) {
  if (name === 'constructor') return self === ctx.p11 ? Reflect.construct(PKCS11, args) : PKCS11.apply(self, args);
  const descriptor = Object.getOwnPropertyDescriptor(proto, name);
  if (descriptor.get) return descriptor.get.call(self);
  const value = descriptor.value.apply(self, args);
  if (name !== 'signTo') return value;
  const ticket = Number(args[4]); // accepted, so an integer (a number or a BigInt)
  return new Promise((resolve, reject) => {
    if (!signToWaiters.has(ticket)) signToWaiters.set(ticket, []);
    signToWaiters.get(ticket).push({ resolve, reject });
  });
}

function withTimeout(promise, ms) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(Object.assign(new Error('HANG: the promise did not settle within ' + ms + ' ms'), { hang: true })), ms); }),
  ]).finally(() => clearTimeout(timer));
}

// Deterministic sweep: every structurally hostile value in every argument position of a few
// well-typed argument lists, so the nastiest shapes reach every function whatever the seed.
const SWEEP_BASES = [
  [R('session', () => ctx.session), R('EC public key', () => ctx.pub), R('[CKA_CLASS, CKA_LABEL]', () => [K.CKA_CLASS, K.CKA_LABEL]), R('Buffer(32)', () => Buffer.alloc(32, 9)), R('Buffer(64)', () => Buffer.alloc(64, 3))],
  [R('session', () => ctx.session), K_('CKM_ECDSA', K.CKM_ECDSA), R('EC private key', () => ctx.priv), R('Buffer(32)', () => Buffer.alloc(32, 9)), R('Buffer(64)', () => Buffer.alloc(64, 3))],
  [R('session', () => ctx.session), R('[CKA_TOKEN false]', () => [{ type: K.CKA_TOKEN, value: false }]), R('AES key', () => ctx.aes), R('[CKA_TOKEN false]', () => [{ type: K.CKA_TOKEN, value: false }]), R('[]', () => [])],
];
const SWEEP_VALUES = [
  ...objectRecipes,
  ...bytesRecipes.filter((r) => /detached|Shared|4 MiB|Uint16|DataView|resizable/.test(r.label)),
  ...scalarRecipes.filter((r) => /^(Symbol\(\)|NaN|-1|-0|0\.5|2\*\*53|2n\*\*64n|-1n|1 MiB string|lone surrogate|arrow that throws|undefined|null)$/.test(r.label)),
  R('1025-attribute template', () => Array.from({ length: 1025 }, () => ({ type: K.CKA_TOKEN, value: false }))),
  R('template of 5000 types growing on read', () => growingArray(5000, { type: K.CKA_LABEL, value: 'x' })),
  R('[{type: CKA_START_DATE, value: Date whose getUTCMonth is 5}]', () => [{ type: K.CKA_START_DATE, value: dateWith('getUTCMonth', 5) }]),
  R('[{type: CKA_END_DATE, value: Date whose getUTCDate returns a string}]', () => [{ type: K.CKA_END_DATE, value: dateWith('getUTCDate', () => 'x') }]),
  R('[{type: CKA_START_DATE, value: Date whose getUTCFullYear throws}]', () => [{ type: K.CKA_START_DATE, value: dateWith('getUTCFullYear', () => { throw new HostileError('date getter'); }) }]),
  R('[{type: CKA_ALLOWED_MECHANISMS, value: array growing on read}]', () => [{ type: K.CKA_ALLOWED_MECHANISMS, value: growingArray(100, K.CKM_ECDSA) }]),
  R('mechanism with a throwing parameter getter', () => ({ mechanism: K.CKM_AES_GCM, get parameter() { throw new HostileError('parameter'); } })),
  R('mechanism whose parameter changes between reads', () => { let n = 0; return { mechanism: K.CKM_AES_GCM, get parameter() { n++; return n === 1 ? Buffer.alloc(12) : { iv: n > 2 ? undefined : Buffer.alloc(12) }; } }; }),
  R('GCM parameter with a detached iv', () => ({ mechanism: K.CKM_AES_GCM, parameter: { iv: detachedArrayBuffer(12) } })),
  R('CTR parameter with a 15-byte block', () => ({ mechanism: K.CKM_AES_CTR, parameter: { counterBits: 2n ** 64n, counterBlock: Buffer.alloc(15) } })),
];

async function main() {
  const result = { functions: [], inputs: 0, skipped: 0, outcomes: {}, violations: [] };
  heal(true);
  for (const name of cfg.names) {
    const index = cfg.allNames.indexOf(name);
    const seed = (cfg.seed + index) >>> 0;
    progress('FUNCTION ' + name + ' seed=' + seed);
    heal(true);
    makeOthers();
    const tally = { inputs: 0, skipped: 0, sweep: 0 };
    let run = 0;
    let failure;
    const found = [];
    /** Keeps up to 5 distinct failures per function (by message), so one bug does not hide another. */
    const note = (f) => { if (f && found.length < 5 && !found.some((x) => x.error === f.error)) found.push(f); };

    /** One input; false when it broke the property (the failure is recorded). */
    async function runInput(kind, recipes, phase) {
      run++;
      const self = resolveThis(kind);
      const args = recipes.map((r) => r.make());
      const skip = guard(name, self, args);
      if (skip !== undefined) { tally.skipped++; result.skipped++; return true; }
      tally.inputs++;
      result.inputs++;
      if (phase === 'sweep') tally.sweep++;
      const label = name + ' this=' + kind + ' args=(' + recipes.map((r) => r.label).join(' | ') + ')';
      progress('INPUT ' + run + ' ' + phase + ' ' + label.slice(0, 2000));
      let outcome;
      try {
        const value = invoke(name, self, args);
        if (value instanceof Promise) await withTimeout(value, 15000);
        outcome = 'returned';
      } catch (error) {
        outcome = kindOf(error);
        if (outcome === undefined) {
          failure = { function: name, seed, phase, input: label, error: describeError(error), stack: error && error.stack ? String(error.stack).split('\n').slice(0, 6).join('\n') : undefined };
          return false;
        }
      } finally {
        if (DESTRUCTIVE.has(name) || kind !== 'live' || name === 'constructor') heal(false);
      }
      tally[outcome] = (tally[outcome] || 0) + 1;
      result.outcomes[outcome] = (result.outcomes[outcome] || 0) + 1;
      return true;
    }

    if (cfg.sweep) {
      for (const base of SWEEP_BASES) {
        for (let position = 0; position < base.length; position++) {
          for (const value of SWEEP_VALUES) {
            const recipes = base.slice();
            recipes[position] = value;
            failure = undefined;
            if (!(await runInput('live', recipes, 'sweep'))) note(failure);
          }
        }
      }
    }
    failure = undefined;
    const property = fc.asyncProperty(thisKind, argumentList, (kind, recipes) => runInput(kind, recipes, 'property'));
    const details = await fc.check(property, { seed, numRuns: cfg.runs, endOnFailure: true });
    if (details.failed) note(failure || { function: name, seed, error: String(details.errorInstance || details.error) });
    result.violations.push(...found);
    result.functions.push(name);
    // Per function, so the results of a batch survive a crash later in it.
    progress('DONE ' + JSON.stringify({ name, tally, violations: found }));
  }
  try { ctx.p11.close(); } catch (e) { /* the property may have left it closed */ }
  process.stdout.write('RESULT ' + JSON.stringify({ functions: result.functions.length, inputs: result.inputs }) + '\n');
  // A hung promise keeps the loop alive; it is already reported as a violation.
  if (result.violations.some((v) => /^Error: HANG/.test(v.error))) process.exit(0);
}

main().catch((error) => { process.stdout.write('FATAL ' + JSON.stringify(describeError(error) + '\n' + (error && error.stack)) + '\n'); process.exitCode = 3; });
`;

interface FunctionResult {
  name: string;
  tally: Record<string, number>;
  violations: Array<Record<string, unknown>>;
}

interface Crash {
  function: string;
  seed: string;
  lastInput: string;
  exitCode: number | null;
  signal: string | null;
  hung: boolean;
  stderrTail: string;
}

interface BatchOutcome {
  results: FunctionResult[];
  crashes: Crash[];
  fatal: string[];
}

function runChild(
  script: string,
  config: Record<string, unknown>,
  conf: string,
  progressFile: string,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string; hung: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, SOFTHSM2_CONF: conf, PROPS_CONFIG: JSON.stringify({ ...config, progressFile }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let hung = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
    });
    let seenBytes = 0;
    let movedAt = Date.now();
    const watchdog = setInterval(() => {
      const bytes = fs.existsSync(progressFile) ? fs.statSync(progressFile).size : 0;
      if (bytes !== seenBytes) {
        seenBytes = bytes;
        movedAt = Date.now();
      } else if (Date.now() - movedAt > STALL_TIMEOUT_MS) {
        hung = true;
        child.kill('SIGKILL');
      }
    }, STALL_CHECK_MS);
    child.on('close', (code, signal) => {
      clearInterval(watchdog);
      resolve({ code, signal, stdout, stderr, hung });
    });
  });
}

/** Runs one batch of functions; after a crash or hang, resumes after the function that died. */
async function runBatch(
  script: string,
  names: string[],
  allNames: string[],
  token: TestToken,
  throwaway: TestToken,
  dir: string,
  batch: number,
): Promise<BatchOutcome> {
  const outcome: BatchOutcome = { results: [], crashes: [], fatal: [] };
  let remaining = names;
  for (let attempt = 0; remaining.length > 0 && attempt < names.length; attempt++) {
    const progressFile = path.join(dir, `progress-${batch}-${attempt}.txt`);
    const config = {
      root: ROOT,
      modulePath: token.modulePath,
      label: token.label,
      throwLabel: throwaway.label,
      userPin: token.userPin,
      soPin: token.soPin,
      names: remaining,
      allNames,
      runs: RUNS,
      sweep: SWEEP,
      seed: BASE_SEED,
      constants: CONSTANTS,
    };
    const run = await runChild(script, config, token.conf, progressFile);
    const resultLine = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    const fatalLine = run.stdout.split('\n').find((l) => l.startsWith('FATAL '));
    if (fatalLine) outcome.fatal.push(JSON.parse(fatalLine.slice(6)) as string);
    const lines = fs.existsSync(progressFile) ? fs.readFileSync(progressFile, 'utf8').trim().split('\n') : [];
    for (const line of lines) if (line.startsWith('DONE ')) outcome.results.push(JSON.parse(line.slice(5)) as FunctionResult);
    if (resultLine && run.code === 0 && run.signal === null) break;
    if (resultLine) {
      // Every function ran, but the process did not exit cleanly afterwards.
      outcome.crashes.push({ function: '(after the last function: exit)', seed: String(BASE_SEED), lastInput: '', exitCode: run.code, signal: run.signal, hung: run.hung, stderrTail: run.stderr.slice(-3000) });
      break;
    }
    // The child died (or hung): find where, record it, and carry on after that function.
    const lastFunction = [...lines].reverse().find((l) => l.startsWith('FUNCTION ')) ?? 'FUNCTION (none)';
    const [, fn, seed] = /^FUNCTION (\S+) seed=(\S+)/.exec(lastFunction) ?? [undefined, '(none)', '?'];
    outcome.crashes.push({
      function: fn,
      seed,
      lastInput: lines[lines.length - 1] ?? '',
      exitCode: run.code,
      signal: run.signal,
      hung: run.hung,
      stderrTail: run.stderr.slice(-3000),
    });
    if (fatalLine) break;
    const at = remaining.indexOf(fn);
    remaining = at < 0 ? [] : remaining.slice(at + 1);
  }
  return outcome;
}

// Hangs are caught per input by the stall watchdog; this only bounds a slow (sanitizer) run.
jest.setTimeout(300_000);

describe('raw binding: every prototype function under hostile arguments', () => {
  const tokens: TestToken[] = [];
  let dir: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pkcs11-napi-props-'));
  });
  afterAll(() => {
    for (const t of tokens.reverse()) t.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('PKCS11.prototype lists every PKCS#11 v2.40 function (≥ 130 names)', () => {
    const names = Object.getOwnPropertyNames(binding.PKCS11.prototype);
    expect(names.length).toBeGreaterThanOrEqual(130);
    for (const fn of ['C_Initialize', 'C_SignAsync', 'C_GetAttributeValueAsync', 'C_WaitForSlotEventAsync', 'close', 'sign', 'findObjects']) {
      expect(names).toContain(fn);
    }
  });

  test(`each function, ${RUNS} hostile inputs: returns, or throws a TypeError / Pkcs11Error / the hostile error; no crash or hang`, async () => {
    const allNames = Object.getOwnPropertyNames(binding.PKCS11.prototype);
    const only = process.env.PROPS_ONLY?.split(',').filter(Boolean);
    const names = only ? allNames.filter((n) => only.includes(n)) : allNames;
    expect(names.length).toBeGreaterThan(0);
    const script = path.join(dir, 'props-child.js');
    fs.writeFileSync(script, CHILD_SOURCE);

    const batches: string[][] = Array.from({ length: Math.min(BATCHES, names.length) }, () => []);
    names.forEach((name, i) => batches[i % batches.length].push(name));
    const fixtures = batches.map((_, b) => {
      const token = createTestToken({ label: `props-${b}` });
      tokens.push(token);
      const throwaway = addEmptySlotToken(token, `props-${b}-throwaway`);
      return { token, throwaway };
    });

    const outcomes: BatchOutcome[] = [];
    const queue = batches.map((batch, b) => () => runBatch(script, batch, allNames, fixtures[b].token, fixtures[b].throwaway, dir, b));
    const workers = Array.from({ length: PARALLEL }, async () => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) outcomes.push(await next());
    });
    await Promise.all(workers);

    const results = outcomes.flatMap((o) => o.results);
    const crashes = outcomes.flatMap((o) => o.crashes);
    const fatal = outcomes.flatMap((o) => o.fatal);
    const violations = results.flatMap((r) => r.violations);
    const covered = new Set(results.map((r) => r.name));
    const outcomesByKind: Record<string, number> = {};
    const perFunction: Record<string, Record<string, number>> = {};
    for (const r of results) {
      perFunction[r.name] = r.tally;
      for (const [k, v] of Object.entries(r.tally)) if (!['inputs', 'skipped', 'sweep'].includes(k)) outcomesByKind[k] = (outcomesByKind[k] ?? 0) + v;
    }
    // A crashed function's inputs up to the crash count as tried.
    const crashedInputs = crashes.reduce((n, c) => n + Number(/^INPUT (\d+)/.exec(c.lastInput)?.[1] ?? 0), 0);
    const sweepInputs = results.reduce((n, r) => n + (r.tally.sweep ?? 0), 0);
    const summary = {
      seed: BASE_SEED,
      runsPerFunction: RUNS,
      functionCount: names.length,
      functionsCompleted: covered.size,
      inputsTried: results.reduce((n, r) => n + r.tally.inputs, 0) + crashedInputs,
      inputsSkipped: results.reduce((n, r) => n + r.tally.skipped, 0),
      sweepInputs,
      crashes: crashes.filter((c) => !c.hung).length,
      hangs: crashes.filter((c) => c.hung).length,
      violations: violations.length,
      outcomes: outcomesByKind,
      crashDetails: crashes,
      violationDetails: violations,
      fatal,
      perFunction,
    };
    fs.mkdirSync(path.join(ROOT, 'test-results'), { recursive: true });
    fs.writeFileSync(path.join(ROOT, 'test-results', 'props-summary.json'), JSON.stringify(summary, null, 2) + '\n');

    const reproduce = `(reproduce: PROPS_SEED=${BASE_SEED} PROPS_ONLY=<function> npx jest test/props-binding.test.ts)`;
    expect({ fatal, reproduce }).toEqual({ fatal: [], reproduce });
    expect({ crashes, reproduce }).toEqual({ crashes: [], reproduce });
    expect({ violations, reproduce }).toEqual({ violations: [], reproduce });
    expect([...covered, ...crashes.map((c) => c.function)].sort()).toEqual([...names].sort());
    // Nearly every generated input must really have run (guard() skips only a sliver).
    expect(summary.inputsTried - sweepInputs).toBeGreaterThanOrEqual(names.length * RUNS * 0.9);
    // The property is not vacuous: calls succeeded, failed in the module, and failed type checks.
    expect(outcomesByKind.returned).toBeGreaterThan(0);
    expect(outcomesByKind.Pkcs11Error).toBeGreaterThan(0);
    expect(outcomesByKind.TypeError).toBeGreaterThan(0);
    expect(outcomesByKind.hostile).toBeGreaterThan(0);
  });
});

/**
 * The shapes the properties above found, pinned down one by one (each fails on its own, with
 * the exact input, when the binding mishandles it).
 */
describe('hostile shapes the properties found, one by one', () => {
  let dir: string;
  let token: TestToken;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pkcs11-napi-props1-'));
    token = createTestToken({ label: 'props-one-by-one' });
  });
  afterAll(() => {
    token?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `body` (plain JS; `p11`, `session`, `pub` and `report(value)` in scope) in a child process. */
  function inChild(body: string): { code: number | null; signal: string | null; report: unknown; stderr: string } {
    const script = path.join(dir, `one-${Math.random().toString(36).slice(2)}.js`);
    fs.writeFileSync(
      script,
      [
        "'use strict';",
        `const binding = require(${JSON.stringify(path.join(ROOT, 'node_modules', 'node-gyp-build'))})(${JSON.stringify(ROOT)});`,
        'class Pkcs11Error extends Error {}',
        'binding.setErrorClass(Pkcs11Error);',
        'const p11 = new binding.PKCS11();',
        `p11.load(${JSON.stringify(token.modulePath)});`,
        'p11.C_Initialize();',
        `const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label === ${JSON.stringify(token.label)});`,
        `const session = p11.C_OpenSession(slot, ${C.CKF_RW_SESSION | C.CKF_SERIAL_SESSION});`,
        `p11.C_Login(session, ${C.CKU_USER}, ${JSON.stringify(token.userPin)});`,
        `const pub = p11.C_CreateObject(session, [{ type: ${C.CKA_CLASS}, value: ${C.CKO_DATA} }, { type: ${C.CKA_TOKEN}, value: false }, { type: ${C.CKA_LABEL}, value: 'x' }]);`,
        "const report = (value) => process.stdout.write('REPORT ' + JSON.stringify(value) + '\\n');",
        'const describe = (e) => ({ kind: e instanceof Pkcs11Error ? "Pkcs11Error" : e.constructor.name, message: e.message });',
        body,
        // Closed when the body's async work is done, not before it.
        "process.on('beforeExit', () => { if (p11.libraryPath !== null) p11.close(); });",
      ].join('\n'),
    );
    const { spawnSync } = require('child_process') as typeof import('child_process');
    const run = spawnSync(process.execPath, [script], { env: { ...process.env, SOFTHSM2_CONF: token.conf }, encoding: 'utf8', timeout: 30_000 });
    const line = (run.stdout ?? '').split('\n').filter((l) => l.startsWith('REPORT ')).pop(); // the last report
    return { code: run.status, signal: run.signal, report: line ? JSON.parse(line.slice(7)) : undefined, stderr: (run.stderr ?? '').slice(-2000) };
  }

  // native/marshal/attributes.cc AttributeQuery::Parse sizes entries_ from array.Length() once,
  // then loops `i < array.Length()` re-reading the length: an element getter that appends to
  // the array makes it write past the end of entries_ (heap corruption: SIGABRT/SIGSEGV, or an
  // ASan heap-buffer-overflow), and the 1,024-type limit is bypassed.
  for (const fn of ['C_GetAttributeValue', 'C_GetAttributeValueAsync']) {
    test(`${fn}: a types array that grows while the binding reads it is refused or read, never written past`, () => {
      const run = inChild(`
        const types = [${C.CKA_CLASS}];
        let grown = false;
        Object.defineProperty(types, 0, { enumerable: true, get() { if (!grown) { grown = true; for (let i = 0; i < 5000; i++) types.push(${C.CKA_LABEL}); } return ${C.CKA_CLASS}; } });
        (async () => {
          try { const r = await p11.${fn}(session, pub, types); report({ returned: r.length }); }
          catch (e) { report(describe(e)); }
          // Use the heap a little, so corruption shows up in this process rather than never.
          for (let i = 0; i < 200; i++) p11.C_GetAttributeValue(session, pub, [${C.CKA_CLASS}, ${C.CKA_LABEL}]);
          report('alive');
        })();
      `);
      expect({ code: run.code, signal: run.signal, stderr: run.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
      expect(run.report).toBe('alive');
    });
  }

  // native/marshal/attributes.cc DateFromJs calls date.getUTCFullYear/getUTCMonth/getUTCDate
  // through .As<Napi::Function>() without checking: a Date whose own property shadows one of
  // them with a non-function makes napi_call_function fail, which surfaces as a plain
  // Error('Invalid argument') that names neither the function nor the argument.
  test('a CKA_START_DATE Date whose getUTCMonth is not a function is converted from its time value, not its methods', () => {
    const run = inChild(`
      const date = new Date(Date.UTC(2024, 0, 2));
      date.getUTCMonth = 5;
      try { p11.C_CreateObject(session, [{ type: ${C.CKA_CLASS}, value: ${C.CKO_DATA} }, { type: ${C.CKA_START_DATE}, value: date }]); report({ returned: true }); }
      catch (e) { report(describe(e)); }
    `);
    expect(run.code).toBe(0);
    // The binding reads the calendar day from the time value (attributes.cc DateFromJs), so the
    // replaced method is never called and the template reaches the module, which refuses a
    // start date on a data object.
    expect(run.report).toEqual({ kind: 'Pkcs11Error', message: 'C_CreateObject failed: CKR_ATTRIBUTE_TYPE_INVALID (0x00000012)' });
  });
});
