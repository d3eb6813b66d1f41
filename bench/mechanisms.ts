/**
 * The signing mechanisms the benchmark measures, and the exact bytes every load signs. Raw C,
 * pkcs11js and ours must sign the same input with the same parameters, or the ratios lie.
 */
import { createHash, constants as cryptoConstants, createPublicKey, verify } from 'crypto';

import * as C from '../lib/generated/constants';

export type MechanismName = 'ecdsa' | 'ecdsa-sha256' | 'rsa-pkcs' | 'rsa-pss' | 'ed25519';
export type KeyKind = 'ec' | 'rsa' | 'ed25519';

export interface MechanismSpec {
  name: MechanismName;
  title: string;
  ckm: number;
  ckmName: string;
  keyKind: KeyKind;
  /** The RSA-PSS parameters (the same numbers raw-sign.cc hard-codes). */
  pss?: { hashAlg: number; mgf: number; saltLen: number };
}

export const MECHANISMS: Record<MechanismName, MechanismSpec> = {
  ecdsa: { name: 'ecdsa', title: 'ECDSA, pre-computed 32-byte digest', ckm: C.CKM_ECDSA, ckmName: 'CKM_ECDSA', keyKind: 'ec' },
  'ecdsa-sha256': {
    name: 'ecdsa-sha256',
    title: 'ECDSA with SHA-256 on the token',
    ckm: C.CKM_ECDSA_SHA256,
    ckmName: 'CKM_ECDSA_SHA256',
    keyKind: 'ec',
  },
  'rsa-pkcs': {
    name: 'rsa-pkcs',
    title: 'RSA PKCS#1 v1.5 with SHA-256',
    ckm: C.CKM_SHA256_RSA_PKCS,
    ckmName: 'CKM_SHA256_RSA_PKCS',
    keyKind: 'rsa',
  },
  'rsa-pss': {
    name: 'rsa-pss',
    title: 'RSA-PSS with SHA-256 (MGF1-SHA256, 32-byte salt)',
    ckm: C.CKM_SHA256_RSA_PKCS_PSS,
    ckmName: 'CKM_SHA256_RSA_PKCS_PSS',
    keyKind: 'rsa',
    pss: { hashAlg: C.CKM_SHA256, mgf: C.CKG_MGF1_SHA256, saltLen: 32 },
  },
  ed25519: { name: 'ed25519', title: 'Ed25519', ckm: C.CKM_EDDSA, ckmName: 'CKM_EDDSA', keyKind: 'ed25519' },
};

export const MECHANISM_NAMES = Object.keys(MECHANISMS) as MechanismName[];

/**
 * The message: 256 bytes, about a small certificate's TBS part. The ECDSA digest load signs its
 * SHA-256, computed once up front (that is what "pre-computed digest" means for a caller).
 */
export const MESSAGE = Buffer.alloc(256, 0x5a);
const DIGEST = createHash('sha256').update(MESSAGE).digest();

/** The bytes handed to C_Sign for `mechanism`. */
export function signInput(mechanism: MechanismName): Buffer {
  return mechanism === 'ecdsa' ? DIGEST : MESSAGE;
}

/**
 * Checks one signature from a run in software: a load that returned garbage fast would
 * otherwise "win". `spki` is the key's DER SubjectPublicKeyInfo.
 */
export function verifySignature(mechanism: MechanismName, spki: Buffer, signature: Buffer): boolean {
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  switch (mechanism) {
    case 'ecdsa':
    case 'ecdsa-sha256':
      return verify('sha256', MESSAGE, { key, dsaEncoding: 'ieee-p1363' }, signature);
    case 'rsa-pkcs':
      return verify('sha256', MESSAGE, key, signature);
    case 'rsa-pss':
      return verify('sha256', MESSAGE, { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature);
    case 'ed25519':
      return verify(null, MESSAGE, key, signature);
  }
}

/** "EC P-256", "RSA-2048", "Ed25519": what the key really is, read from its public half. */
export function describeKey(spki: Buffer): string {
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = details.namedCurve;
      const names: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };
      return `EC ${(curve && names[curve]) ?? curve ?? '?'}`;
    }
    case 'rsa':
      return `RSA-${details.modulusLength ?? '?'}`;
    case 'ed25519':
      return 'Ed25519';
    default:
      return String(key.asymmetricKeyType);
  }
}
