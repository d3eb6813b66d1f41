/**
 * The signing mechanisms sign and verify offer, and what --hash does to each: the input is
 * hashed (SHA-256) here and only the digest goes to the token, under the mechanism that takes a
 * digest. The signature is the same either way, so a --hash signature verifies without --hash.
 */
import { createHash } from 'crypto';

import { digestInfo } from '../keys/digest-info';
import { Mechanisms } from '../mechanisms/mechanisms';
import type { Slot } from '../module/slot';
import type { Mechanism } from '../native/types';
import { UsageError } from './usage-error';

export const SIGN_MECHANISMS = ['ecdsa', 'ecdsa-sha256', 'rsa-pkcs-sha256', 'rsa-pss-sha256', 'eddsa'] as const;
export type SignMechanism = (typeof SIGN_MECHANISMS)[number];

/** Digest sizes CKM_ECDSA input is expected to have (SHA-1 ... SHA-512). */
const DIGEST_SIZES = new Set([20, 28, 32, 48, 64]);

/** The default mechanism for a key type (CKA_KEY_TYPE name). */
export function defaultMechanism(keyType: string | number | undefined): SignMechanism {
  if (keyType === 'ec') return 'ecdsa-sha256';
  if (keyType === 'rsa') return 'rsa-pkcs-sha256';
  if (keyType === 'ecEdwards') return 'eddsa';
  throw new UsageError(`no default mechanism for a ${String(keyType)} key: give --mechanism`);
}

export function parseMechanism(name: string): SignMechanism {
  if (!(SIGN_MECHANISMS as readonly string[]).includes(name)) {
    throw new UsageError(`unknown --mechanism '${name}' (one of ${SIGN_MECHANISMS.join(', ')})`);
  }
  return name as SignMechanism;
}

/** The mechanism and the bytes to hand the token for `data`. */
export function signingInput(name: SignMechanism, data: Buffer, hashHere: boolean): { mechanism: Mechanism; data: Buffer } {
  const sha256 = () => createHash('sha256').update(data).digest();
  switch (name) {
    case 'ecdsa':
      if (hashHere) return { mechanism: Mechanisms.ecdsa(), data: sha256() };
      if (!DIGEST_SIZES.has(data.length)) {
        throw new UsageError(`ecdsa signs a digest (20-64 bytes), but the input is ${data.length} bytes: add --hash, or use ecdsa-sha256`);
      }
      return { mechanism: Mechanisms.ecdsa(), data };
    case 'ecdsa-sha256':
      return hashHere ? { mechanism: Mechanisms.ecdsa(), data: sha256() } : { mechanism: Mechanisms.ecdsaWith('sha256'), data };
    case 'rsa-pkcs-sha256':
      return hashHere
        ? { mechanism: Mechanisms.rsaPkcs(), data: digestInfo('sha256', sha256()) }
        : { mechanism: Mechanisms.rsaPkcsWith('sha256'), data };
    case 'rsa-pss-sha256':
      return hashHere ? { mechanism: Mechanisms.rsaPss('sha256'), data: sha256() } : { mechanism: Mechanisms.rsaPssWith('sha256'), data };
    case 'eddsa':
      if (hashHere) throw new UsageError('eddsa (Ed25519) signs the whole message; --hash does not apply');
      return { mechanism: Mechanisms.eddsa(), data };
  }
}

/**
 * signingInput, hashing here when asked to or when the token lacks the hash-and-sign mechanism
 * (SoftHSM2 2.6 has CKM_ECDSA but not CKM_ECDSA_SHA256): the signature is the same either way.
 */
export function signingInputFor(slot: Slot, name: SignMechanism, data: Buffer, hashHere: boolean): { mechanism: Mechanism; data: Buffer } {
  const input = signingInput(name, data, hashHere);
  if (hashHere || name === 'ecdsa' || name === 'eddsa') return input;
  const type = typeof input.mechanism === 'object' ? input.mechanism.mechanism : input.mechanism;
  return slot.hasMechanism(Number(type)) ? input : signingInput(name, data, true);
}
