/**
 * Property tests over the typed layer's public functions: everything lib/index.ts exports
 * that can be called (plain functions, the Mechanisms builders, static methods, and the
 * methods and accessors of live Module, Slot, Session, key/object and SigningPool instances),
 * found by walking the exports so that a new export is covered (or, for a class this file has
 * no instance of, reported) without editing the list by hand.
 *
 * Each is called with arguments drawn from hostile values mixed with plausible ones (labels,
 * URIs, PINs, templates, key specs, mechanisms, buffers), against a real SoftHSM2 token.
 * The property: every call returns, or throws / rejects with an Error that says what is wrong —
 * a TypeError, one of the library's own errors (Pkcs11Error, Pkcs11UriError, DerError,
 * PoolError…, SessionClosedError, PinSourceError), or the error a hostile getter/proxy threw —
 * never a non-Error, a ReferenceError/SyntaxError/RangeError from inside the library, a Node
 * internal error (ERR_*) leaking out of Buffer/fs, an empty message, or a promise that never
 * settles. TypeErrors that are V8's own ("Cannot read properties of undefined …") are allowed
 * (they are TypeErrors) but counted per function in test-results/props-typed-summary.json.
 *
 * PROPS_TYPED_RUNS sets the inputs per function, PROPS_TYPED_SEED the seed.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { inspect } from 'util';

import fc from 'fast-check';

import * as lib from '../lib';
import {
  Certificate,
  generateKey,
  generateKeyPair,
  Module,
  Pkcs11Object,
  PrivateKey,
  PublicKey,
  SecretKey,
  Session,
  SigningPool,
  Slot,
} from '../lib';
import { addEmptySlotToken, createTestToken, TestToken } from './support/softhsm';

const ROOT = path.resolve(__dirname, '..');
const RUNS = Number(process.env.PROPS_TYPED_RUNS ?? 80);
/** A fixed seed by default (reproducible runs); PROPS_TYPED_SEED=random explores, PROPS_TYPED_SEED=<n> replays. */
const SEED = process.env.PROPS_TYPED_SEED === 'random' ? (Date.now() ^ (process.pid << 6)) >>> 0 : Number(process.env.PROPS_TYPED_SEED ?? 20240602);
const CALL_TIMEOUT_MS = 10_000;
/** The pool's request deadline in this file. */
const POOL_TIMEOUT_MS = 2_000;

jest.setTimeout(120_000);

// ------------------------------------------------------------------------------------------
// Hostile and plausible values (recipes: built fresh for each input, labelled for reports).
// ------------------------------------------------------------------------------------------

class HostileError extends Error {
  readonly hostile = true;
  constructor(where: string) {
    super(`hostile ${where}`);
  }
}

interface Recipe {
  label: string;
  make(): unknown;
}
function R(label: string, make: () => unknown): Recipe {
  return { label, make, toString: () => label, [fc.toStringMethod]: () => label } as Recipe;
}
const V = (label: string, value: unknown): Recipe => R(label, () => value);
const show = (v: unknown): string => inspect(v, { depth: 2, maxArrayLength: 6, maxStringLength: 40, breakLength: Infinity });

function throwingGetters(): object {
  const o = {};
  for (const key of ['algorithm', 'curve', 'modulusBits', 'bits', 'bytes', 'label', 'id', 'token', 'path', 'query', 'vendor', 'module',
    'key', 'pin', 'size', 'maxQueue', 'timeoutMs', 'mechanism', 'parameter', 'type', 'value', 'keyType', 'ecParams', 'ecPoint',
    'tokenPresent', 'readOnly', 'flags', 'libraryParameters', 'spinningMutexes', 'deepBind', 'major', 'minor', 'then', 'length', 'toString', 'valueOf']) {
    Object.defineProperty(o, key, { get: () => { throw new HostileError(`getter ${key}`); }, enumerable: true });
  }
  return o;
}
function throwingProxy(target: object): object {
  const handler: ProxyHandler<object> = {};
  for (const trap of ['get', 'set', 'has', 'deleteProperty', 'ownKeys', 'getOwnPropertyDescriptor', 'defineProperty', 'getPrototypeOf',
    'setPrototypeOf', 'isExtensible', 'preventExtensions', 'apply', 'construct'] as const) {
    (handler as Record<string, unknown>)[trap] = () => { throw new HostileError(`proxy ${trap}`); };
  }
  return new Proxy(target, handler);
}
function detached(size: number): ArrayBuffer {
  const ab = new ArrayBuffer(size);
  structuredClone(ab, { transfer: [ab] });
  return ab;
}
const LARGE = Buffer.alloc(2 << 20, 0x41);

const hostileRecipes: Recipe[] = [
  V('undefined', undefined), V('null', null), V('true', true), V('0', 0), V('-0', -0), V('-1', -1), V('0.5', 0.5), V('NaN', NaN),
  V('Infinity', Infinity), V('2**53', 2 ** 53), V('2**64', 2 ** 64), V('-1n', -1n), V('2n**64n', 2n ** 64n), V('0n', 0n),
  V("''", ''), V("'x'", 'x'), V('lone surrogate', '\uD800'), V('1 MiB string', 'x'.repeat(1 << 20)), R('Symbol()', () => Symbol('junk')),
  R('function', () => function junk() {}), R('{}', () => ({})), R('[]', () => []), R('[junk]', () => [Symbol('s'), null, {}]),
  R('Object.create(null)', () => Object.create(null)), R('Date', () => new Date()), R('Invalid Date', () => new Date(NaN)),
  R('throwing getters', throwingGetters), R('throwing Proxy({})', () => throwingProxy({})), R('throwing Proxy([])', () => throwingProxy([])),
  R('Buffer(0)', () => Buffer.alloc(0)), R('Buffer(3)', () => Buffer.from([1, 2, 3])), R('Uint16Array(4)', () => new Uint16Array(4)),
  R('detached ArrayBuffer', () => detached(16)), R('Uint8Array on a detached buffer', () => { const ab = new ArrayBuffer(8); const v = new Uint8Array(ab); structuredClone(ab, { transfer: [ab] }); return v; }),
  R('2 MiB Buffer', () => LARGE), R('Promise', () => Promise.resolve(1)), R('Map', () => new Map()),
  R('object with a throwing toString', () => ({ toString() { throw new HostileError('toString'); }, valueOf() { throw new HostileError('valueOf'); } })),
  R('{ __proto__ pollution }', () => JSON.parse('{"__proto__": {"x": 1}, "constructor": 5}')),
];

interface Fixture {
  token: TestToken;
  throwaway: TestToken;
  module: Module;
  slot: Slot;
  throwSlot: Slot;
  session: Session;
  throwSession: Session;
  privateKey: PrivateKey;
  publicKey: PublicKey;
  secretKey: SecretKey;
  dataObject: Pkcs11Object;
  certificate: Certificate;
  pool: SigningPool;
  closedModule: Module;
  closedSession: Session;
  certDer: Buffer;
  spki: Buffer;
}
let fx: Fixture;

const plausibleRecipes = (): Recipe[] => [
  R('token label', () => fx.token.label), R('module path', () => fx.token.modulePath), R('user PIN', () => fx.token.userPin),
  R("'pkcs11:' token URI", () => `pkcs11:token=${fx.token.label}`), R("'pkcs11:' key URI", () => `pkcs11:token=${fx.token.label};object=typed-ec;type=private`),
  V("'pkcs11:token=a%ZZ'", 'pkcs11:token=a%ZZ'), V("'pkcs11:id=%00%01?pin-value=1234&pin-source=x'", 'pkcs11:id=%00%01?pin-value=1234&pin-source=x'),
  V("'pkcs11:slot-id=99999999999999999999999'", 'pkcs11:slot-id=99999999999999999999999'), V("'pkcs11:library-version=1.999'", 'pkcs11:library-version=1.999'),
  V("'pkcs11:x-a=1;x-a=2'", 'pkcs11:x-a=1;x-a=2'), V("'pkcs11:?module-path=/nonexistent.so'", 'pkcs11:?module-path=/nonexistent.so'),
  V("'sha256'", 'sha256'), V("'sha1'", 'sha1'), V("'md5'", 'md5'), V("'P-256'", 'P-256'), V("'P-999'", 'P-999'), V("'user'", 'user'), V("'so'", 'so'),
  V("'CERTIFICATE'", 'CERTIFICATE'), V("'PUBLIC KEY'", 'PUBLIC KEY'), V("'env:HOME'", 'env:HOME'), V("'env:NOPE_NOT_SET'", 'env:NOPE_NOT_SET'),
  V("'file:///nonexistent'", 'file:///nonexistent'), V("'|/bin/true'", '|/bin/true'), V("'/etc/hostname'", '/etc/hostname'), V("'/dev/zero'", '/dev/zero'),
  R('PEM public key', () => lib.spkiToPem(fx.spki)), R('SPKI DER', () => Buffer.from(fx.spki)), R('certificate DER', () => Buffer.from(fx.certDer)),
  R('P-256 OID', () => Buffer.from('06082a8648ce3d030107', 'hex')), R('65-byte point', () => Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)])),
  R('64-byte r||s', () => Buffer.alloc(64, 1)), R('DER ECDSA signature', () => Buffer.from('3006020101020101', 'hex')), R('32-byte digest', () => Buffer.alloc(32, 7)),
  V('32', 32), V('16', 16), V('2048', 2048), V('1', 1), V('0x1041 (CKM_ECDSA)', lib.CKM_ECDSA), V('0x250 (CKM_SHA256)', lib.CKM_SHA256),
  R('{ label, token: false }', () => ({ label: 'x', token: false })), R('{ class: "data" }', () => ({ class: 'data', token: false })),
  R('{ class: "bogus" }', () => ({ class: 'bogus' })), R('{ wrapTemplate: { wrapTemplate: {} } }', () => ({ wrapTemplate: { wrapTemplate: {} } })),
  R('{ allowedMechanisms: [-1] }', () => ({ allowedMechanisms: [-1] })), R('{ startDate: Invalid Date }', () => ({ startDate: new Date(NaN) })),
  R('{ nonsense: 1 }', () => ({ nonsense: 1 })), R('[label, id]', () => ['label', 'id']), R("['nope']", () => ['nope']),
  R("{ algorithm: 'ec', curve: 'P-256' }", () => ({ algorithm: 'ec', curve: 'P-256' })), R("{ algorithm: 'ec', curve: 'nope' }", () => ({ algorithm: 'ec', curve: 'nope' })),
  R("{ algorithm: 'rsa', modulusBits: 1024 }", () => ({ algorithm: 'rsa', modulusBits: 1024 })), R("{ algorithm: 'rsa', modulusBits: 2048, publicExponent: 4 }", () => ({ algorithm: 'rsa', modulusBits: 2048, publicExponent: 4 })),
  R("{ algorithm: 'ed25519' }", () => ({ algorithm: 'ed25519' })), R("{ algorithm: 'aes', bits: 100 }", () => ({ algorithm: 'aes', bits: 100 })),
  R("{ algorithm: 'generic', bytes: -1 }", () => ({ algorithm: 'generic', bytes: -1 })), R("{ algorithm: 'generic', bytes: 2**40 }", () => ({ algorithm: 'generic', bytes: 2 ** 40 })),
  R('{ algorithm: symbol }', () => ({ algorithm: Symbol('a') })), R('key options { label, id: junk }', () => ({ label: 'k', id: 'not a buffer', token: false })),
  R('{ keyType: "ec", ecParams, ecPoint }', () => ({ keyType: 'ec', ecParams: Buffer.from('06082a8648ce3d030107', 'hex'), ecPoint: Buffer.alloc(3) })),
  R('pool options', () => ({ module: fx.module, token: fx.token.label, key: { label: 'typed-ec' }, pin: fx.token.userPin, size: 2 })),
  R('pool options, size 0', () => ({ module: fx.module, token: fx.token.label, key: { label: 'typed-ec' }, size: 0 })),
  R('pool options, hostile key', () => ({ module: fx.module, token: fx.token.label, key: throwingGetters() })),
  R('pool options, junk mechanism', () => ({ module: fx.module, token: fx.token.label, key: { label: 'typed-ec' }, mechanism: { mechanism: -1 } })),
  R('pool options, closed module', () => ({ module: fx.closedModule, token: fx.token.label, key: { label: 'typed-ec' } })),
  R('parsed URI', () => lib.parsePkcs11Uri(`pkcs11:token=${fx.token.label};id=%01`)), R('URI-like with junk path', () => ({ path: { token: 5, id: 'x', slotId: -1n, libraryVersion: { major: 256 } }, query: {}, vendor: { path: { 'a;b': 'c' }, query: {} } })),
  R('token info', () => fx.slot.tokenInfo()), R('module info', () => fx.module.info()),
  R('AES-GCM mechanism', () => lib.Mechanisms.aesGcm(Buffer.alloc(12))), R('RSA-PSS mechanism', () => lib.Mechanisms.rsaPss('sha256')),
  R('mechanism with a throwing parameter', () => ({ mechanism: lib.CKM_AES_GCM, get parameter() { throw new HostileError('parameter'); } })),
  R('a Session (wrong kind of object)', () => fx.session), R('the SecretKey (as an object argument)', () => fx.secretKey),
  R('{ timeoutMs: 1 }', () => ({ timeoutMs: 1 })), R('{ tokenPresent: false }', () => ({ tokenPresent: false })), R('{ readOnly: true }', () => ({ readOnly: true })),
  R('{ includePin: true }', () => ({ includePin: true })), R('{ allowUnprefixedVendor: 1 }', () => ({ allowUnprefixedVendor: 1 })),
  R('{ deepBind: "yes" }', () => ({ deepBind: 'yes' })), R('{ flags: -1 }', () => ({ flags: -1 })), R('{ libraryParameters: 5 }', () => ({ libraryParameters: 5 })),
  R('{ spinningMutexes: "yes" }', () => ({ spinningMutexes: 'yes' })),
];

const randomValues = fc.oneof(
  fc.integer({ min: -1e9, max: 1e12 }).map((n) => V(String(n), n)),
  fc.double().map((n) => V(show(n), n)),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map((n) => V(`${n}n`, n)),
  fc.string({ maxLength: 30 }).map((s) => V(show(s), s)),
  fc.string({ maxLength: 30 }).map((s) => V(show(`pkcs11:${s}`), `pkcs11:${s}`)),
  fc.uint8Array({ maxLength: 80 }).map((a) => R(`bytes[${a.length}]`, () => Buffer.from(a))),
  fc.anything({ maxDepth: 2, withBigInt: true, withDate: true, withTypedArray: true, withNullPrototype: true }).map((v) => R(`anything ${show(v)}`, () => v)),
);

function argumentArbitrary(): fc.Arbitrary<Recipe[]> {
  const value = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...hostileRecipes) },
    { weight: 5, arbitrary: fc.constantFrom(...plausibleRecipes()) },
    { weight: 2, arbitrary: randomValues },
  );
  return fc.array(value, { maxLength: 4 });
}

// ------------------------------------------------------------------------------------------
// What counts as a clear failure.
// ------------------------------------------------------------------------------------------

const V8_INTERNAL_TYPE_ERRORS = [
  /^Cannot read propert(y|ies) of (undefined|null)/, /is not a function/, /is not iterable/, /^Cannot convert /, /^Cannot mix BigInt/,
  /^Cannot create property/, /^Cannot destructure/, /is not a constructor/, /^Do not know how to serialize a BigInt/, /^Cannot use 'in' operator/,
  /^Class constructor .* cannot be invoked without 'new'/, /^Function\.prototype\.\w+ called on/, /Symbol/, /^The "[^"]+" argument must be/,
];

function brand(value: unknown): string {
  return Object.prototype.toString.call(value);
}

type Verdict = { ok: true; kind: string; unclearTypeError?: string } | { ok: false; why: string };

function judge(error: unknown): Verdict {
  if (error instanceof HostileError) return { ok: true, kind: 'hostile' };
  if (brand(error) !== '[object Error]') return { ok: false, why: `threw a non-Error: ${show(error)}` };
  const e = error as Error & { code?: unknown };
  const name = e.constructor?.name ?? e.name;
  if (typeof e.message !== 'string' || e.message.trim() === '') return { ok: false, why: `${name} with an empty message` };
  if (e.name === 'TypeError' && name === 'TypeError') {
    // Node's own argument errors (Buffer.from(junk), fs.open(junk)…) name Node's parameter, not ours.
    const unclear = V8_INTERNAL_TYPE_ERRORS.find((re) => re.test(e.message)) ?? (typeof e.code === 'string' && e.code.startsWith('ERR_') ? /ERR_/ : undefined);
    return unclear ? { ok: true, kind: 'TypeError', unclearTypeError: e.message.slice(0, 160) } : { ok: true, kind: 'TypeError' };
  }
  if (typeof e.code === 'string' && e.code.startsWith('ERR_')) return { ok: false, why: `a Node internal ${name} leaked: ${e.code}: ${e.message}` };
  if (['ReferenceError', 'SyntaxError', 'EvalError', 'URIError', 'InternalError'].includes(name)) return { ok: false, why: `${name}: ${e.message}` };
  // The library throws RangeError itself only for DER it refuses to write ("DER: …"); any other
  // RangeError is the engine's (radix, array length, call stack, BigInt conversion…) leaking out.
  if (name === 'RangeError' && !/^DER: /.test(e.message)) return { ok: false, why: `an engine RangeError leaked: ${e.message}` };
  if (/^(Error|RangeError)$/.test(name) && /^(Invalid argument|A \w+ was expected|Error in native callback)$/.test(e.message)) {
    return { ok: false, why: `an N-API status error leaked: ${name}: ${e.message}` };
  }
  return { ok: true, kind: name };
}

function withTimeout<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`HANG: did not settle within ${CALL_TIMEOUT_MS} ms`), { hang: true })), CALL_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ------------------------------------------------------------------------------------------
// The fixture: real objects of every typed-layer class, rebuilt when a call tore one down.
// ------------------------------------------------------------------------------------------

function selfSignedCertificate(dir: string): Buffer {
  const key = path.join(dir, 'cert-key.pem');
  const cert = path.join(dir, 'cert.der');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-outform', 'DER', '-subj', '/CN=props-typed', '-days', '1'], { stdio: 'ignore' });
  return fs.readFileSync(cert);
}

async function openKeys(session: Session): Promise<Pick<Fixture, 'privateKey' | 'publicKey' | 'secretKey' | 'dataObject' | 'certificate'>> {
  const found = async (template: lib.Template) => session.find(template);
  let [privateKey] = (await found({ class: 'privateKey', label: 'typed-ec' })) as PrivateKey[];
  let [publicKey] = (await found({ class: 'publicKey', label: 'typed-ec' })) as PublicKey[];
  if (!privateKey || !publicKey) {
    const pair = await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' }, { label: 'typed-ec', privateTemplate: { derive: true } });
    privateKey = pair.privateKey;
    publicKey = pair.publicKey;
  }
  let [secretKey] = (await found({ class: 'secretKey', label: 'typed-aes' })) as SecretKey[];
  if (!secretKey) {
    secretKey = await generateKey(session, { algorithm: 'aes', bits: 256 }, { label: 'typed-aes', extractable: true, sensitive: false, privateTemplate: { wrap: true, unwrap: true } });
  }
  let [dataObject] = await found({ class: 'data', label: 'typed-data' });
  if (!dataObject) dataObject = await session.createObject({ class: 'data', label: 'typed-data', token: true, value: Buffer.from('data') });
  let [certificate] = (await found({ class: 'certificate', label: 'typed-cert' })) as Certificate[];
  if (!certificate) {
    certificate = (await session.createObject({
      class: 'certificate', certificateType: 'x509', label: 'typed-cert', token: true, value: certDerCache!, subject: Buffer.from('3000', 'hex'),
    })) as Certificate;
  }
  return { privateKey, publicKey, secretKey, dataObject, certificate };
}
let certDerCache: Buffer | undefined;

async function buildFixture(token: TestToken, throwaway: TestToken, certDer: Buffer): Promise<Fixture> {
  certDerCache = certDer;
  const module = Module.load(token.modulePath);
  const slot = module.findSlot(token.label);
  const throwSlot = module.findSlot(throwaway.label);
  const session = await slot.openSession();
  await session.login(token.userPin);
  const throwSession = await throwSlot.openSession();
  await throwSession.login(throwaway.soPin, 'so').catch(() => undefined);
  const keys = await openKeys(session);
  const spki = await keys.publicKey.spki();
  const pool = await SigningPool.open({ module, token: token.label, key: { label: 'typed-ec' }, pin: token.userPin, size: 2, timeoutMs: POOL_TIMEOUT_MS });
  const closedModule = Module.load(token.modulePath);
  const closedSession = await closedModule.findSlot(token.label).openSession();
  closedModule.close();
  return { token, throwaway, module, slot, throwSlot, session, throwSession, ...keys, pool, closedModule, closedSession, certDer, spki };
}

let poolClosed = false;
/** Failures of the library found while repairing the fixture (reported against the call before). */
const healProblems: string[] = [];
const extraPools: SigningPool[] = [];

/** Repairs whatever the last call broke: a closed module or session, a logout, lost keys, a closed pool. */
async function heal(): Promise<void> {
  if (fx.module.isClosed) {
    const rebuilt = await buildFixture(fx.token, fx.throwaway, fx.certDer);
    try {
      fx.pool.close({ timeoutMs: 100 }).catch(() => undefined);
    } catch (error) {
      healProblems.push(`SigningPool.close() on a pool whose Module was closed threw synchronously: ${(error as Error).message}`);
    }
    fx = rebuilt;
    poolClosed = false;
    return;
  }
  let sessionOk = !fx.session.isClosed;
  if (sessionOk) {
    try {
      const state = Number(fx.session.info().state);
      if (state !== lib.CKS_RW_USER_FUNCTIONS) {
        if (state === lib.CKS_RW_SO_FUNCTIONS) await fx.session.logout();
        await fx.session.login(fx.token.userPin);
      }
    } catch {
      sessionOk = false;
    }
  }
  if (!sessionOk) {
    fx.session = await fx.slot.openSession();
    await fx.session.login(fx.token.userPin);
  }
  let keysOk = true;
  for (const key of [fx.privateKey, fx.publicKey, fx.secretKey, fx.dataObject, fx.certificate]) {
    if (key.session !== fx.session) keysOk = false;
    else await key.get(['class']).catch(() => (keysOk = false));
  }
  if (!keysOk) Object.assign(fx, await openKeys(fx.session));
  if (fx.throwSession.isClosed) {
    fx.throwSession = await fx.throwSlot.openSession();
    await fx.throwSession.login(fx.throwaway.soPin, 'so').catch(() => undefined);
  }
  if (poolClosed) {
    fx.pool = await SigningPool.open({ module: fx.module, token: fx.token.label, key: { label: 'typed-ec' }, pin: fx.token.userPin, size: 2, timeoutMs: POOL_TIMEOUT_MS });
    poolClosed = false;
  }
}

/** undefined once the pool has nothing in flight (polled for up to 1 s), else its stats. */
async function poolSettles(pool: SigningPool): Promise<lib.PoolStats | undefined> {
  const deadline = Date.now() + 1000;
  for (;;) {
    const stats = pool.stats();
    if (stats.inFlight === 0 && stats.queued === 0) return undefined;
    if (Date.now() > deadline) return stats;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function replacePool(): Promise<void> {
  fx.pool.close({ timeoutMs: 0 }).catch(() => undefined);
  fx.pool = await SigningPool.open({ module: fx.module, token: fx.token.label, key: { label: 'typed-ec' }, pin: fx.token.userPin, size: 2, timeoutMs: POOL_TIMEOUT_MS });
}

// ------------------------------------------------------------------------------------------
// The targets, found by walking lib/index.ts's exports.
// ------------------------------------------------------------------------------------------

interface Target {
  name: string;
  /** Calls the function with these arguments (this = a fixture object, or a junk one). */
  call(args: unknown[], junkThis: boolean): unknown;
  destructive?: boolean;
}

const isClass = (f: unknown): boolean => typeof f === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(f));

/** Exports left out, each with the reason. */
const EXCLUDED: Record<string, string> = {
  PKCS11: 'the raw binding: test/props-binding.test.ts covers every one of its functions',
  // (TypeScript-private and @internal members are skipped too: see nonPublicMembers().)
  provisionSoftHsmToken: 'creates token directories (relative to the working directory for a junk `parent`) and runs softhsm2-util; not an input-validation surface',
};

/** For each class with instance methods: the live instance, and instances in a "closed" state. */
const INSTANCES: Record<string, { live: () => object; closed?: () => object }> = {
  Module: { live: () => fx.module, closed: () => fx.closedModule },
  Slot: { live: () => fx.slot },
  Session: { live: () => fx.session, closed: () => fx.closedSession },
  Pkcs11Object: { live: () => fx.dataObject },
  PrivateKey: { live: () => fx.privateKey },
  PublicKey: { live: () => fx.publicKey },
  SecretKey: { live: () => fx.secretKey },
  Certificate: { live: () => fx.certificate },
  SigningPool: { live: () => fx.pool },
};
/** Instance methods that tear the fixture down (heal() rebuilds), or that must not hit the real token. */
const DESTRUCTIVE = new Set(['Module.close', 'Module.reinitialize', 'Session.close', 'Session.logout', 'Session.login', 'Session.setPin',
  'Session.initPin', 'Slot.initToken', 'Pkcs11Object.destroy', 'Pkcs11Object.set', 'SigningPool.close']);
/** These run on the throw-away token's slot/session, so the real token's PINs and contents stay. */
const ON_THROWAWAY: Record<string, () => object> = {
  'Slot.initToken': () => fx.throwSlot,
  'Session.setPin': () => fx.throwSession,
  'Session.initPin': () => fx.throwSession,
};

/**
 * `private` and `@internal` members by class, read from lib/'s sources: TypeScript keeps them
 * on the prototype, but they are not API (the compiler stops callers; `@internal` says so).
 */
function nonPublicMembers(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
  for (const file of walk(path.join(ROOT, 'lib'))) {
    let cls: string | undefined;
    let internalNext = false;
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const c = /^export (?:abstract )?class (\w+)/.exec(line);
      if (c) {
        cls = c[1];
        out.set(cls, out.get(cls) ?? new Set());
        continue;
      }
      if (!cls) continue;
      if (/@internal/.test(line)) internalNext = true;
      const m = /^ {2}(private |protected )?(?:static )?(?:async )?(?:get |set )?(\w+)\s*[(<]/.exec(line);
      if (m) {
        if (m[1] || internalNext) out.get(cls)!.add(m[2]);
        internalNext = false;
      }
    }
  }
  return out;
}

function discoverTargets(): { targets: Target[]; uncovered: string[] } {
  const hidden = nonPublicMembers();
  const targets: Target[] = [];
  const uncovered: string[] = [];
  const junk = (): unknown => [{}, null, undefined, Object.create(null), throwingProxy({})][Math.floor(Math.random() * 5)];
  for (const [exportName, value] of Object.entries(lib)) {
    if (exportName in EXCLUDED) continue;
    if (typeof value === 'function' && !isClass(value)) {
      targets.push({ name: exportName, call: (args, junkThis) => (value as (...a: unknown[]) => unknown).apply(junkThis ? junk() : undefined, args) });
      continue;
    }
    if (typeof value === 'object' && value !== null && !Buffer.isBuffer(value)) {
      for (const [member, fn] of Object.entries(value)) {
        if (typeof fn === 'function') targets.push({ name: `${exportName}.${member}`, call: (args) => (fn as (...a: unknown[]) => unknown)(...args) });
      }
      continue;
    }
    if (!isClass(value)) continue;
    const cls = value as (new (...a: unknown[]) => object) & Record<string, unknown>;
    // The constructor itself, with junk arguments (errors and wrappers must not blow up).
    if (!hidden.get(exportName)?.has('constructor')) targets.push({ name: `new ${exportName}`, call: (args) => Reflect.construct(cls, args) });
    for (const key of Object.getOwnPropertyNames(cls)) {
      if (['length', 'name', 'prototype'].includes(key) || typeof cls[key] !== 'function') continue;
      targets.push({ name: `${exportName}.${key}`, call: (args) => (cls[key] as (...a: unknown[]) => unknown).apply(cls, args) });
    }
    // Instance methods and accessors, along the prototype chain up to (not including) Error/Object.
    const methods = new Map<string, PropertyDescriptor>();
    for (let proto = cls.prototype; proto && proto !== Object.prototype && proto !== Error.prototype; proto = Object.getPrototypeOf(proto)) {
      for (const key of Object.getOwnPropertyNames(proto)) {
        if (key !== 'constructor' && !methods.has(key)) methods.set(key, Object.getOwnPropertyDescriptor(proto, key)!);
      }
    }
    if (methods.size === 0) continue;
    const instances = INSTANCES[exportName];
    if (!instances) {
      uncovered.push(`${exportName} (${[...methods.keys()].join(', ')})`);
      continue;
    }
    for (const [key, descriptor] of methods) {
      if (`${exportName}.${key}` in EXCLUDED) continue;
      if ([...hidden.entries()].some(([owner, names]) => names.has(key) && (owner === exportName || owner === ownerName(cls.prototype, key)))) continue;
      // Methods inherited from Pkcs11Object are attributed to it once (destroy/set/get… on a data object).
      const owner = Object.prototype.hasOwnProperty.call(cls.prototype, key) ? exportName : ownerName(cls.prototype, key);
      const name = `${owner}.${key}`;
      if (owner !== exportName && targets.some((t) => t.name === name)) continue;
      const destructive = DESTRUCTIVE.has(name);
      targets.push({
        name,
        destructive,
        call: (args, junkThis) => {
          // Methods of these JS classes are not brand-checked (calling one on a foreign object is
          // not an API misuse worth testing); a closed module or session is.
          const self = junkThis && instances.closed ? instances.closed() : (ON_THROWAWAY[name] ?? instances.live)();
          if (descriptor.get) return descriptor.get.call(self);
          if (name === 'SigningPool.close') poolClosed = true;
          return (descriptor.value as (...a: unknown[]) => unknown).apply(self, args);
        },
      });
    }
  }
  return { targets, uncovered };
}

function ownerName(proto: object, key: string): string {
  for (let p = Object.getPrototypeOf(proto); p; p = Object.getPrototypeOf(p)) {
    if (Object.prototype.hasOwnProperty.call(p, key)) return (p.constructor as { name: string }).name;
  }
  return 'unknown';
}

// ------------------------------------------------------------------------------------------

describe('typed layer: every public function under hostile arguments', () => {
  let token: TestToken;
  let throwaway: TestToken;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pkcs11-napi-typed-'));
    token = createTestToken({ label: 'props-typed' });
    throwaway = addEmptySlotToken(token, 'props-typed-throwaway');
    fx = await buildFixture(token, throwaway, selfSignedCertificate(dir));
  });

  afterAll(async () => {
    await Promise.all([fx?.pool, ...extraPools].map((p) => p?.close({ timeoutMs: 1000 }).catch(() => undefined)));
    fx?.module.close();
    token?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('every callable export is covered (or excluded with a reason)', () => {
    const { targets, uncovered } = discoverTargets();
    expect(uncovered).toEqual([]);
    const names = targets.map((t) => t.name);
    for (const expected of ['toAttributes', 'parsePkcs11Uri', 'Module.load', 'Module.findSlot', 'Session.find', 'Slot.openSession',
      'SigningPool.open', 'SigningPool.sign', 'Mechanisms.rsaPss', 'PrivateKey.sign', 'PublicKey.spki', 'generateKeyPair', 'pemToDer']) {
      expect(names).toContain(expected);
    }
    expect(names.length).toBeGreaterThanOrEqual(80);
  });

  test(`each function, ${RUNS} inputs: returns, or fails with a TypeError or a clear Error; never hangs`, async () => {
    const { targets } = discoverTargets();
    const only = process.env.PROPS_TYPED_ONLY?.split(',');
    const violations: Array<Record<string, unknown>> = [];
    const unclear: Record<string, Record<string, number>> = {};
    const clearErrors: Record<string, Record<string, number>> = {};
    const outcomes: Record<string, number> = {};
    const perFunction: Record<string, number> = {};
    let inputs = 0;
    for (const [index, target] of targets.entries()) {
      if (only && !only.includes(target.name)) continue;
      const seed = (SEED + index) >>> 0;
      let failure: Record<string, unknown> | undefined;
      const property = fc.asyncProperty(argumentArbitrary(), fc.boolean(), fc.nat(9), async (recipes, junkThisCoin, dice) => {
        const junkThis = junkThisCoin && dice === 0; // about one input in twenty
        const args = recipes.map((r) => r.make());
        const label = `${target.name}(${recipes.map((r) => r.label).join(' | ')})${junkThis ? ' this=junk/closed' : ''}`;
        inputs++;
        perFunction[target.name] = (perFunction[target.name] ?? 0) + 1;
        let kind = 'returned';
        try {
          const result = target.call(args, junkThis);
          const settled = result instanceof Promise ? await withTimeout(result) : result;
          // What the call opened is closed again (and must close cleanly).
          if (settled instanceof SigningPool && settled !== fx.pool) extraPools.push(settled);
          if (settled instanceof Module && settled !== fx.module && settled !== fx.closedModule) settled.close();
          if (settled instanceof Session && settled !== fx.session && settled !== fx.throwSession && settled !== fx.closedSession) await withTimeout(settled.close());
        } catch (error) {
          if ((error as { hang?: boolean }).hang) {
            failure = { function: target.name, seed, input: label, error: (error as Error).message };
            return false;
          }
          const verdict = judge(error);
          if (!verdict.ok) {
            failure = { function: target.name, seed, input: label, error: verdict.why, stack: (error as Error)?.stack?.split('\n').slice(0, 5).join('\n') };
            return false;
          }
          kind = verdict.kind;
          if (!['TypeError', 'hostile'].includes(kind)) {
            const bucket = (clearErrors[target.name] ??= {});
            const key = `${kind}: ${(error as Error).message.slice(0, 120)}`;
            if (Object.keys(bucket).length < 8 || key in bucket) bucket[key] = (bucket[key] ?? 0) + 1;
          }
          if (verdict.unclearTypeError) {
            const bucket = (unclear[target.name] ??= {});
            bucket[verdict.unclearTypeError] = (bucket[verdict.unclearTypeError] ?? 0) + 1;
          }
        } finally {
          if (target.destructive || junkThis) await heal();
        }
        if (healProblems.length > 0) {
          failure = { function: target.name, seed, input: label, error: healProblems.splice(0).join('; ') };
          return false;
        }
        // Whatever the call did, the pool must be left with nothing in flight: a request that
        // failed must not keep its session busy.
        if (!poolClosed) {
          const busy = await poolSettles(fx.pool);
          if (busy !== undefined) {
            failure = { function: target.name, seed, input: label, error: `afterwards the signing pool stays busy: ${JSON.stringify(busy)}` };
            await replacePool();
            return false;
          }
        }
        outcomes[kind] = (outcomes[kind] ?? 0) + 1;
        return true;
      });
      const details = await fc.check(property, { seed, numRuns: RUNS, endOnFailure: true });
      if (details.failed) violations.push(failure ?? { function: target.name, seed, error: String(details.errorInstance) });
      await heal();
    }
    // Pools the inputs opened are closed (each must drain).
    await Promise.all(extraPools.splice(0).map((p) => withTimeout(p.close({ timeoutMs: 1000 }))));

    const summary = {
      seed: SEED,
      runsPerFunction: RUNS,
      functionCount: Object.keys(perFunction).length,
      inputsTried: inputs,
      violations: violations.length,
      outcomes,
      violationDetails: violations,
      unclearTypeErrors: unclear,
      otherErrors: clearErrors,
      excluded: EXCLUDED,
    };
    fs.mkdirSync(path.join(ROOT, 'test-results'), { recursive: true });
    fs.writeFileSync(path.join(ROOT, 'test-results', 'props-typed-summary.json'), JSON.stringify(summary, null, 2) + '\n');

    const reproduce = `(reproduce: PROPS_TYPED_SEED=${SEED} PROPS_TYPED_ONLY=<function> npx jest test/props-typed.test.ts)`;
    expect({ violations, reproduce }).toEqual({ violations: [], reproduce });
    expect(inputs).toBeGreaterThanOrEqual(Object.keys(perFunction).length * RUNS);
    expect(outcomes.returned).toBeGreaterThan(0);
    expect(outcomes.TypeError).toBeGreaterThan(0);
  });
});

/**
 * The pool failures the property found, pinned down one by one (each fails on its own while the
 * bug is there).
 */
describe('SigningPool under bad requests and a closed module, one by one', () => {
  let token: TestToken;
  let module: Module;
  beforeAll(async () => {
    token = createTestToken({ label: 'props-typed-pool' });
    module = Module.load(token.modulePath);
    const session = await module.findSlot(token.label).openSession();
    await session.login(token.userPin);
    await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' }, { label: 'pool-key' });
  });
  afterAll(() => {
    module?.close();
    token?.cleanup();
  });
  const open = (extra: Partial<lib.SigningPoolOptions> = {}) =>
    SigningPool.open({ module, token: token.label, key: { label: 'pool-key' }, pin: token.userPin, size: 2, timeoutMs: 3_000, ...extra });
  const within = <T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> =>
    Promise.race([promise, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms).unref())]);

  // lib/pool/signing-pool.ts run(): lane.running.add(request) comes before native.sign()/verify(),
  // which throw argument TypeErrors synchronously, so the request never leaves `running`: the
  // session stays "busy" for ever (after size × pipelineDepth bad calls every request waits for
  // its deadline), and close() waits out its whole timeout.
  test('a request with data that is not bytes is rejected and leaves no session busy', async () => {
    const pool = await open();
    for (let i = 0; i < 4; i++) await expect(pool.sign('not bytes' as never)).rejects.toThrow(/argument 'data'/);
    expect(pool.stats().inFlight).toBe(0);
    expect(await within(pool.sign(Buffer.alloc(32)), 1_000)).toBeInstanceOf(Buffer);
    const started = Date.now();
    await within(pool.close({ timeoutMs: 2_000 }), 2_500);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  // The same throw, for a request that waited in the queue: it would escape from release() inside
  // the callback that delivers the answer before it (a promise callback once, now the binding's
  // sink). In a plain `node` process that is an uncaught error that kills the process (exit code
  // 1, "TypeError: signTo: argument 'data' must be …" from SigningPool.run), and the request
  // itself would only be settled by the deadline sweeper, as a RequestTimeoutError.
  test('a bad request that waited in the queue is rejected with its TypeError at once', async () => {
    const pool = await open({ size: 1, pipelineDepth: 1 });
    const good = pool.sign(Buffer.alloc(32));
    const bad = pool.sign('not bytes' as never).then(
      () => 'resolved',
      (e: Error) => `${e.name}: ${e.message}`,
    );
    await good;
    expect(await within(bad, 1_000)).toMatch(/^TypeError: signTo: argument 'data'/);
    await pool.close({ timeoutMs: 500 });
  });

  // SigningPool.close() → maybeFinishClose() → native.C_CloseSessionAsync(...).catch(): on a
  // closed module the binding throws synchronously ("C_CloseSession: no PKCS#11 module is
  // loaded"), so close() throws instead of returning a promise, `done` is never called, and
  // every later close() returns a promise that never settles.
  test('closing a pool after its module was closed settles (and a second close too)', async () => {
    const own = Module.load(token.modulePath);
    const pool = await SigningPool.open({ module: own, token: token.label, key: { label: 'pool-key' }, pin: token.userPin, size: 2 });
    await pool.sign(Buffer.alloc(32));
    own.close();
    let first: unknown;
    try {
      first = await within(pool.close(), 1_000);
    } catch (error) {
      first = `threw synchronously: ${(error as Error).message}`;
    }
    expect(first).toBeUndefined();
    expect(await within(pool.close(), 1_000)).toBeUndefined();
  });
});
