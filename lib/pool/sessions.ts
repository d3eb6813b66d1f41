/**
 * Session chores of the signing pool: how many sessions to open, logging a new one in, finding
 * the public key next to the private one, and closing sessions whose failure nobody needs to hear.
 */
import { cpus } from 'os';

import { Pkcs11Error } from '../errors';
import * as C from '../generated/constants';
import type { Slot } from '../module/slot';
import type { NativePKCS11 } from '../native/pkcs11';
import type { Handle, Pin } from '../native/types';

/** Closes a session, ignoring failure: also when the module itself is already closed (a throw). */
export async function closeQuietly(native: NativePKCS11, handle: Handle): Promise<void> {
  try {
    await native.C_CloseSessionAsync(handle);
  } catch {
    // The session or the module is gone already: nothing left to close.
  }
}

export async function loginIfNeeded(native: NativePKCS11, handle: Handle, pin: Pin | undefined): Promise<void> {
  const state = Number(native.C_GetSessionInfo(handle).state);
  if (state === C.CKS_RO_USER_FUNCTIONS || state === C.CKS_RW_USER_FUNCTIONS) return;
  if (pin === undefined) return; // a token without login, or keys that need none
  try {
    await native.C_LoginAsync(handle, C.CKU_USER, pin);
  } catch (error) {
    if (!Pkcs11Error.is(error, 'CKR_USER_ALREADY_LOGGED_IN')) throw error;
  }
}

export async function findPublicKey(
  native: NativePKCS11,
  handle: Handle,
  criteria: { label?: string; id?: Buffer },
): Promise<Handle | undefined> {
  const template = [{ type: C.CKA_CLASS, value: C.CKO_PUBLIC_KEY }];
  if (criteria.label !== undefined) template.push({ type: C.CKA_LABEL, value: criteria.label as never });
  if (criteria.id !== undefined) template.push({ type: C.CKA_ID, value: criteria.id as never });
  const found = await native.findObjects(handle, template, 2);
  return found.length === 1 ? found[0] : undefined;
}

/** The default pool size: max(4, 2 × cores), within the token's session limits. */
export function defaultSize(slot: Slot): number {
  const token = slot.tokenInfo();
  const wanted = Math.max(4, 2 * cpus().length);
  let cap = wanted;
  for (const limit of [token.maxSessionCount, token.maxRwSessionCount]) {
    // 0 is CK_EFFECTIVELY_INFINITE; a bigint here is CK_UNAVAILABLE_INFORMATION.
    if (typeof limit === 'number' && limit > 0) cap = Math.min(cap, limit);
  }
  return Math.max(1, cap);
}
