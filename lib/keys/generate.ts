import { randomBytes } from 'crypto';

import * as C from '../generated/constants';
import { PrivateKey, PublicKey, SecretKey, wrapObject } from '../objects/object';
import type { Session } from '../session/session';
import { toAttributes, Template } from '../template/template';

/** Named curves by their DER OID (CKA_EC_PARAMS). */
export const CURVES = {
  'P-256': Buffer.from('06082a8648ce3d030107', 'hex'),
  'P-384': Buffer.from('06052b81040022', 'hex'),
  'P-521': Buffer.from('06052b81040023', 'hex'),
} as const;
export type CurveName = keyof typeof CURVES;

/** Ed25519's CKA_EC_PARAMS: the PrintableString "edwards25519" (PKCS#11 3.0 names the curve). */
export const ED25519_PARAMS = Buffer.from('130c656477617264733235353139', 'hex');

export type KeyPairSpec =
  | { algorithm: 'ec'; curve: CurveName }
  | { algorithm: 'rsa'; modulusBits: 2048 | 3072 | 4096; publicExponent?: number }
  | { algorithm: 'ed25519' };

export interface KeyOptions {
  /** A label makes the keys token objects (they outlive the session) unless `token` says otherwise. */
  label?: string;
  /** CKA_ID shared by the pair (and later its certificate); random 16 bytes by default. */
  id?: Buffer;
  token?: boolean;
  /** Explicit opt-outs of the safe defaults (sensitive, non-extractable). */
  extractable?: boolean;
  sensitive?: boolean;
  /** Extra attributes for the private (or secret) key template. */
  privateTemplate?: Template;
  publicTemplate?: Template;
}

export interface KeyPair {
  publicKey: PublicKey;
  privateKey: PrivateKey;
  id: Buffer;
}

function common(options: KeyOptions): { token: boolean; id: Buffer; label?: string } {
  return { token: options.token ?? options.label !== undefined, id: options.id ?? randomBytes(16), label: options.label };
}

/**
 * Generates a signing key pair with the safe defaults: the private key is sensitive,
 * non-extractable and private; both halves share CKA_ID (and CKA_LABEL, when given).
 */
export async function generateKeyPair(session: Session, spec: KeyPairSpec, options: KeyOptions = {}): Promise<KeyPair> {
  const { token, id, label } = common(options);
  const publicTemplate: Template = { token, id, label, verify: true, private: false, ...options.publicTemplate };
  const privateTemplate: Template = {
    token,
    id,
    label,
    sign: true,
    private: true,
    sensitive: options.sensitive ?? true,
    extractable: options.extractable ?? false,
    ...options.privateTemplate,
  };
  let mechanism: number;
  switch (spec.algorithm) {
    case 'ec':
      if (!(spec.curve in CURVES)) throw new TypeError(`curve must be one of ${Object.keys(CURVES).join(', ')}`);
      mechanism = C.CKM_EC_KEY_PAIR_GEN;
      publicTemplate.ecParams = CURVES[spec.curve];
      break;
    case 'rsa':
      if (![2048, 3072, 4096].includes(spec.modulusBits)) throw new TypeError('modulusBits must be 2048, 3072 or 4096');
      mechanism = C.CKM_RSA_PKCS_KEY_PAIR_GEN;
      publicTemplate.modulusBits = spec.modulusBits;
      publicTemplate.publicExponent = exponentBytes(spec.publicExponent ?? 65537);
      break;
    case 'ed25519':
      mechanism = C.CKM_EC_EDWARDS_KEY_PAIR_GEN;
      publicTemplate.ecParams = ED25519_PARAMS;
      break;
    default:
      throw new TypeError(`unknown key pair algorithm ${(spec as { algorithm: unknown }).algorithm}`);
  }
  const handles = await session.native.C_GenerateKeyPairAsync(
    session.handle,
    mechanism,
    toAttributes(publicTemplate),
    toAttributes(privateTemplate),
  );
  return {
    publicKey: new PublicKey(session, handles.publicKey),
    privateKey: new PrivateKey(session, handles.privateKey),
    id,
  };
}

export type SecretKeySpec = { algorithm: 'aes'; bits: 128 | 192 | 256 } | { algorithm: 'generic'; bytes: number };

/** Generates a secret key: sensitive, non-extractable and private unless asked otherwise. */
export async function generateKey(session: Session, spec: SecretKeySpec, options: KeyOptions = {}): Promise<SecretKey> {
  const { token, id, label } = common(options);
  const template: Template = {
    token,
    id,
    label,
    private: true,
    sensitive: options.sensitive ?? true,
    extractable: options.extractable ?? false,
    encrypt: true,
    decrypt: true,
    ...options.privateTemplate,
  };
  let mechanism: number;
  if (spec.algorithm === 'aes') {
    if (![128, 192, 256].includes(spec.bits)) throw new TypeError('AES keys are 128, 192 or 256 bits');
    mechanism = C.CKM_AES_KEY_GEN;
    template.valueLen = spec.bits / 8;
  } else {
    mechanism = C.CKM_GENERIC_SECRET_KEY_GEN;
    template.valueLen = spec.bytes;
  }
  const handle = await session.native.C_GenerateKeyAsync(session.handle, mechanism, toAttributes(template));
  const key = await wrapObject(session, handle);
  return key as SecretKey;
}

function exponentBytes(exponent: number): Buffer {
  if (!Number.isSafeInteger(exponent) || exponent < 3 || exponent % 2 === 0) {
    throw new TypeError('publicExponent must be an odd integer ≥ 3');
  }
  let hex = exponent.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return Buffer.from(hex, 'hex');
}
