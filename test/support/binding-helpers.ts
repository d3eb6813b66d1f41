/**
 * Shared setup for the raw-binding tests (test/binding-*.test.ts): a real SoftHSM2 token per
 * test file, the native PKCS11 class loaded on it, a logged-in R/W session, key generators,
 * public keys exported for node:crypto, and exact error assertions.
 *
 * Everything here is synchronous so a test file can open its module while Jest collects the
 * tests (describe-time), which lets tests that need a mechanism be skipped by looking at the
 * token's C_GetMechanismList, never by module name.
 */
import * as crypto from 'crypto';
import * as path from 'path';

import { binding } from '../../lib/binding';
import { Pkcs11Error } from '../../lib/errors';
import * as C from '../../lib/generated/constants';
import { ecPublicKeyToSpki, ed25519PublicKeyToSpki, rsaPublicKeyToSpki } from '../../lib/keys/spki';
import type { NativePKCS11 } from '../../lib/native/pkcs11';
import type { Attribute, AttributeResult, Handle, KeyPairHandles } from '../../lib/native/types';
import { createTestToken, TestToken } from './softhsm';

export { C, Pkcs11Error };
export type { NativePKCS11, Attribute, AttributeResult, Handle };

/** The native PKCS11 class, exactly as lib/ loads it (and hands it the Pkcs11Error class). */
export const PKCS11: new () => NativePKCS11 = binding.PKCS11;

/** The .node file lib/binding.ts loaded (build/Release first), for worker threads and child processes. */
export function addonPath(): string {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
  return nodeGypBuild.path(path.resolve(__dirname, '..', '..'));
}

export const EC_PARAMS = {
  'P-256': Buffer.from('06082a8648ce3d030107', 'hex'),
  'P-384': Buffer.from('06052b81040022', 'hex'),
} as const;
export type CurveName = keyof typeof EC_PARAMS;
/** RFC 8410 OID form of Ed25519's CKA_EC_PARAMS (what SoftHSM2 accepts). */
export const ED25519_PARAMS = Buffer.from('06032b6570', 'hex');

/** The token's slot: looked up by label among the slots with a token. */
export function findSlotByLabel(p11: NativePKCS11, label: string): Handle {
  const matches = p11.C_GetSlotList(true).filter((slot) => p11.C_GetTokenInfo(slot).label === label);
  if (matches.length !== 1) throw new Error(`expected exactly one token labelled '${label}', found ${matches.length}`);
  return matches[0];
}

export interface TestModule {
  p11: NativePKCS11;
  token: TestToken;
  slot: Handle;
  /** An R/W session, logged in as the user unless `login: false`. */
  session: Handle;
  mechanisms: ReadonlySet<number>;
  has(mechanism: number): boolean;
  /** Closes the module (finalizing it) and deletes the token. Idempotent. */
  close(): void;
}

/** Loads the module on a fresh token and initializes it. The caller owns close(). */
export function loadInitialized(token: TestToken): NativePKCS11 {
  const p11 = new PKCS11();
  p11.load(token.modulePath);
  p11.C_Initialize(token.libraryParameters === undefined ? undefined : { libraryParameters: token.libraryParameters });
  return p11;
}

/**
 * A fresh token, the module loaded and initialized on it, an R/W session (logged in as the
 * user by default). Synchronous: may run while Jest collects the tests.
 */
export function openTestModule(options: { login?: boolean } = {}): TestModule {
  const token = createTestToken();
  let p11: NativePKCS11 | undefined;
  try {
    p11 = loadInitialized(token);
    const slot = findSlotByLabel(p11, token.label);
    const session = p11.C_OpenSession(slot, C.CKF_RW_SESSION);
    if (options.login !== false) p11.C_Login(session, C.CKU_USER, token.userPin);
    const mechanisms = new Set(p11.C_GetMechanismList(slot).map((m) => Number(m)));
    let closed = false;
    const module = p11;
    return {
      p11: module,
      token,
      slot,
      session,
      mechanisms,
      has: (mechanism: number) => mechanisms.has(mechanism),
      close(): void {
        if (closed) return;
        closed = true;
        try {
          module.close();
        } finally {
          token.cleanup();
        }
      },
    };
  } catch (error) {
    p11?.close();
    token.cleanup();
    throw error;
  }
}

/** `test` when the token lists the mechanism, otherwise `test.skip` (named so the reason shows). */
export function testIfMechanism(tm: TestModule, ...mechanisms: number[]): jest.It {
  return mechanisms.every((m) => tm.has(m)) ? test : test.skip;
}

const sessionObject: Attribute[] = [{ type: C.CKA_TOKEN, value: false }];

export interface GeneratedPair extends KeyPairHandles {
  /** The public key as node:crypto sees it, exported from the token's attributes. */
  publicKeyObject: crypto.KeyObject;
}

export function generateEcKeyPair(
  p11: NativePKCS11,
  session: Handle,
  curve: CurveName,
  privateExtra: Attribute[] = [{ type: C.CKA_SIGN, value: true }],
  label = `ec-${curve}`,
): GeneratedPair {
  const pair = p11.C_GenerateKeyPair(
    session,
    C.CKM_EC_KEY_PAIR_GEN,
    [...sessionObject, { type: C.CKA_EC_PARAMS, value: EC_PARAMS[curve] }, { type: C.CKA_VERIFY, value: true }, { type: C.CKA_LABEL, value: label }],
    [...sessionObject, { type: C.CKA_LABEL, value: label }, ...privateExtra],
  );
  return { ...pair, publicKeyObject: ecPublicKeyObject(p11, session, pair.publicKey) };
}

export function generateRsaKeyPair(p11: NativePKCS11, session: Handle, bits = 2048): GeneratedPair {
  const pair = p11.C_GenerateKeyPair(
    session,
    C.CKM_RSA_PKCS_KEY_PAIR_GEN,
    [
      ...sessionObject,
      { type: C.CKA_MODULUS_BITS, value: bits },
      { type: C.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      { type: C.CKA_VERIFY, value: true },
      { type: C.CKA_ENCRYPT, value: true },
    ],
    [...sessionObject, { type: C.CKA_SIGN, value: true }, { type: C.CKA_DECRYPT, value: true }],
  );
  return { ...pair, publicKeyObject: rsaPublicKeyObject(p11, session, pair.publicKey) };
}

export function generateEd25519KeyPair(p11: NativePKCS11, session: Handle): GeneratedPair {
  const pair = p11.C_GenerateKeyPair(
    session,
    C.CKM_EC_EDWARDS_KEY_PAIR_GEN,
    [...sessionObject, { type: C.CKA_EC_PARAMS, value: ED25519_PARAMS }, { type: C.CKA_VERIFY, value: true }],
    [...sessionObject, { type: C.CKA_SIGN, value: true }],
  );
  const [point] = p11.C_GetAttributeValue(session, pair.publicKey, [C.CKA_EC_POINT]);
  const spki = ed25519PublicKeyToSpki(point.value as Buffer);
  return { ...pair, publicKeyObject: crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' }) };
}

export function generateAesKey(p11: NativePKCS11, session: Handle, extra: Attribute[] = [], bytes = 32): Handle {
  return p11.C_GenerateKey(session, C.CKM_AES_KEY_GEN, [
    ...sessionObject,
    { type: C.CKA_VALUE_LEN, value: bytes },
    { type: C.CKA_ENCRYPT, value: true },
    { type: C.CKA_DECRYPT, value: true },
    ...extra,
  ]);
}

export function ecPublicKeyObject(p11: NativePKCS11, session: Handle, publicKey: Handle): crypto.KeyObject {
  const [params, point] = p11.C_GetAttributeValue(session, publicKey, [C.CKA_EC_PARAMS, C.CKA_EC_POINT]);
  const spki = ecPublicKeyToSpki(params.value as Buffer, point.value as Buffer);
  return crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });
}

export function rsaPublicKeyObject(p11: NativePKCS11, session: Handle, publicKey: Handle): crypto.KeyObject {
  const [modulus, exponent] = p11.C_GetAttributeValue(session, publicKey, [C.CKA_MODULUS, C.CKA_PUBLIC_EXPONENT]);
  const spki = rsaPublicKeyToSpki(modulus.value as Buffer, exponent.value as Buffer);
  return crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });
}

/** Attribute values by type, for results whose every attribute has a value. */
export function valuesOf(results: AttributeResult[]): Map<number, AttributeResult['value']> {
  return new Map(results.map((r) => [Number(r.type), r.value]));
}

// ---------------------------------------------------------------------------------------------
// Error assertions. Errors the addon creates itself (TypeError, plain Error) come from Node's
// main realm, not Jest's sandbox, so `instanceof TypeError` is false for them here: they are
// recognised by their realm-independent brand, name and constructor name instead.
// ---------------------------------------------------------------------------------------------

function describeThrown(value: unknown): string {
  if (value instanceof Error || (typeof value === 'object' && value !== null && 'message' in value)) {
    const e = value as Error;
    return `${e.constructor?.name}(${e.name}): ${e.message}`;
  }
  return String(value);
}

/** Runs `fn`, which must throw; returns what it threw. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw, but it returned normally');
}

/** Awaits `promise`, which must reject; returns the reason. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

export function isNativeError(value: unknown, name: 'TypeError' | 'Error' | 'RangeError'): value is Error {
  return (
    Object.prototype.toString.call(value) === '[object Error]' &&
    (value as Error).name === name &&
    (value as Error).constructor?.name === name
  );
}

/** Asserts a TypeError (from either realm) with exactly this message. */
export function expectTypeError(error: unknown, message: string | RegExp): void {
  if (!isNativeError(error, 'TypeError')) throw new Error(`expected a TypeError, got ${describeThrown(error)}`);
  if (typeof message === 'string') expect(error.message).toBe(message);
  else expect(error.message).toMatch(message);
}

/** Expected TypeError message for a handle/ulong argument. */
export function ulongArgMessage(fn: string, arg: string): string {
  return `${fn}: argument '${arg}' must be a non-negative integer (a number up to 2^53-1, or a bigint up to the platform's CK_ULONG)`;
}

/** The exact message the binding gives a module failure. */
export function ckMessage(fn: string, name: keyof typeof C & `CKR_${string}`, detail?: string): string {
  const code = C[name] as number;
  const hex = `0x${code.toString(16).toUpperCase().padStart(8, '0')}`;
  return `${fn} failed: ${name} (${hex})${detail === undefined ? '' : `: ${detail}`}`;
}

type CkrName = keyof typeof C & `CKR_${string}`;

/** Asserts a Pkcs11Error with every field exact (name, code, function, message). */
export function expectPkcs11Error(error: unknown, name: CkrName, fn: string, detail?: string): asserts error is Pkcs11Error {
  if (!(error instanceof Pkcs11Error)) throw new Error(`expected a Pkcs11Error ${name}, got ${describeThrown(error)}`);
  expect(error).toBeInstanceOf(Error);
  expect(error.name).toBe(name);
  expect(error.code).toBe(C[name]);
  expect(error.function).toBe(fn);
  expect(error.message).toBe(ckMessage(fn, name, detail));
}

export function expectThrowsPkcs11(fn: () => unknown, name: CkrName, functionName: string, detail?: string): Pkcs11Error {
  const error = thrownBy(fn);
  expectPkcs11Error(error, name, functionName, detail);
  return error;
}

export async function expectRejectsPkcs11(
  promise: Promise<unknown>,
  name: CkrName,
  functionName: string,
  detail?: string,
): Promise<Pkcs11Error> {
  const error = await rejectionOf(promise);
  expectPkcs11Error(error, name, functionName, detail);
  return error;
}

/** 32 deterministic bytes, for test data that must differ per use. */
export function bytes(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
