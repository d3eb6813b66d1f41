/**
 * pkcs11-napi: PKCS#11 for Node.js.
 *
 * `PKCS11` is the raw binding: every v2.40 function by its standard name, promise variants
 * that run on the addon's own threads, and one-hop `sign`/`verify`.
 */
import { binding } from './binding';
import type { EngineInfo, NativePKCS11 } from './native/pkcs11';

export * from './generated/constants';
export { Pkcs11Error, rvName } from './errors';
export type * from './native/types';
export type { NativePKCS11, EngineInfo } from './native/pkcs11';

/** The raw PKCS#11 binding class. `new PKCS11()`, then `load(path)` and `C_Initialize()`. */
export const PKCS11: new () => NativePKCS11 = binding.PKCS11;
export type PKCS11 = NativePKCS11;

/** Sets the number of worker threads for async calls (before the first one). */
export function setThreadCount(count: number): void {
  binding.setThreadCount(count);
}

/**
 * How much higher than the JS thread's the worker threads set their nice value: 0 to 19, default
 * 0 (Linux; elsewhere nothing changes). Before the first async call. Above 0 the workers give
 * way to the JS thread, which keeps event-loop delay low while they keep every core busy (at 64
 * ECDSA signatures in flight on two cores, p99 about 1 ms at 5 against 2 ms at 0), but also to
 * everything else of the same autogroup or cgroup (a session, a systemd service): V8's helper
 * threads, and other busy processes of that group (ARCHITECTURE.md, "The async engine").
 */
export function setWorkerNice(increment: number): void {
  binding.setWorkerNice(increment);
}

/**
 * Whether a worker thread that finishes a call while others are queued yields its core (at most
 * every 100 µs while the JS thread is woken for answers, every 250 µs otherwise; default true).
 * Only while the engine finds that calls compute (Linux; never for calls that wait, as a network
 * HSM's do). Before the first async call. The JS thread, woken for answers or a timer, then waits
 * for a core a fraction of a millisecond, not a scheduler slice (event-loop delay p99 0.3-0.5 ms
 * against 2.1-2.2 at 64 ECDSA signatures in flight on two cores, the rate within noise). Off, the workers keep their cores against other busy processes
 * too: beside one, the pool signed 3-21% more and its event loop waited 4-6 ms instead of
 * 0.4-0.8 (ARCHITECTURE.md, "The async engine").
 */
export function setWorkerYield(enabled: boolean): void {
  binding.setWorkerYield(enabled);
}

/**
 * How long a worker thread beyond one per core may stay idle before it ends: 1 ms to a day,
 * default 30 s. Before the first async call. Such threads are started for bursts of calls that
 * wait (a network HSM runs up to the thread cap at once) and to watch for calls that run long;
 * one per core always stays.
 */
export function setThreadIdleTimeout(ms: number): void {
  binding.setThreadIdleTimeout(ms);
}

/**
 * The async engine's threads and its current limit on calls running at once; `resetPeak`
 * restarts the count of the most calls that ran at once.
 */
export function engineInfo(options?: { resetPeak?: boolean }): EngineInfo {
  return binding.engineInfo(options);
}

// The typed layer: modules, slots, sessions, objects and keys, templates, mechanisms.
export { Module } from './module/module';
export type { ModuleOptions } from './module/module';
export { Slot } from './module/slot';
export type { MechanismEntry } from './module/slot';
export { Session, SessionClosedError } from './session/session';
export type { UserType } from './session/session';
export { Pkcs11Object, PrivateKey, PublicKey, SecretKey, Certificate } from './objects/object';
export { toAttributes, fromAttributes, attributeType } from './template/template';
export type { Template, AttributeName } from './template/template';
export { OBJECT_CLASSES, KEY_TYPES, CERTIFICATE_TYPES } from './template/names';
export type { ObjectClassName, KeyTypeName } from './template/names';
export { Mechanisms, hashLength } from './mechanisms/mechanisms';
export type { HashName } from './mechanisms/mechanisms';
export { generateKeyPair, generateKey, CURVES, ED25519_PARAMS } from './keys/generate';
export type { KeyPairSpec, SecretKeySpec, KeyOptions, KeyPair, CurveName } from './keys/generate';
export type { Pkcs11Signer, SignerKeyType } from './keys/signer';
export { publicKeySpkiFromTemplate } from './keys/public-key';
export { ecdsaRawToDer, ecdsaDerToRaw } from './keys/ecdsa-signature';
export { digestInfo } from './keys/digest-info';
export type { DigestInfoHash } from './keys/digest-info';
export {
  ecPublicKeyToSpki,
  rsaPublicKeyToSpki,
  ed25519PublicKeyToSpki,
  spkiToPublicKeyAttributes,
  spkiToPem,
  pemToDer,
} from './keys/spki';
export type { PublicKeyAttributes } from './keys/spki';

// Concurrent signing.
export { SigningPool } from './pool/signing-pool';
export type { SigningPoolOptions, PoolStats } from './pool/options';
export type { KeyLocator } from './pool/key-binding';
export { PoolError, QueueFullError, RequestTimeoutError, PoolClosedError, HsmUnavailableError } from './pool/errors';

// PKCS#11 URIs (RFC 7512).
export * from './uri/pkcs11-uri';
export { readPinSource, PinSourceError } from './uri/pin-source';

// Throw-away SoftHSM2 tokens (demos, benchmarks, tests).
export { provisionSoftHsmToken, findSoftHsmModule } from './softhsm/provision';
export type { SoftHsmToken, ProvisionOptions } from './softhsm/provision';
