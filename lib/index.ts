/**
 * pkcs11-napi: PKCS#11 for Node.js.
 *
 * `PKCS11` is the raw binding: every v2.40 function by its standard name, promise variants
 * that run on the addon's own threads, and one-hop `sign`/`verify`.
 */
import { binding } from './binding';
import type { NativePKCS11 } from './native/pkcs11';

export * from './generated/constants';
export { Pkcs11Error, rvName } from './errors';
export type * from './native/types';
export type { NativePKCS11 } from './native/pkcs11';

/** The raw PKCS#11 binding class. `new PKCS11()`, then `load(path)` and `C_Initialize()`. */
export const PKCS11: new () => NativePKCS11 = binding.PKCS11;
export type PKCS11 = NativePKCS11;

/** Sets the number of worker threads for async calls (before the first one). */
export function setThreadCount(count: number): void {
  binding.setThreadCount(count);
}
