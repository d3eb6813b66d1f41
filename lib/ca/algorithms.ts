/**
 * Signature algorithms: the AlgorithmIdentifier written into certificates and CRLs, the
 * PKCS#11 mechanism that makes the signature, and the conversion of the module's output into
 * an X.509 signatureValue. ECDSA hashes in JS (node:crypto) and signs the digest with
 * CKM_ECDSA; RSA and Ed25519 let the token hash (CKM_SHAxxx_RSA_PKCS[_PSS], CKM_EDDSA).
 */
import { createHash } from 'crypto';
import type { Mechanism } from '../native/types';
import {
  CKG_MGF1_SHA256,
  CKG_MGF1_SHA384,
  CKG_MGF1_SHA512,
  CKM_ECDSA,
  CKM_EDDSA,
  CKM_SHA256,
  CKM_SHA256_RSA_PKCS,
  CKM_SHA256_RSA_PKCS_PSS,
  CKM_SHA384,
  CKM_SHA384_RSA_PKCS,
  CKM_SHA384_RSA_PKCS_PSS,
  CKM_SHA512,
  CKM_SHA512_RSA_PKCS,
  CKM_SHA512_RSA_PKCS_PSS,
} from '../generated/constants';
import { CaError } from './errors';
import { NULL_DER, TAG, algorithmIdentifier, explicit, integer, lengthOfLength, sequence, writeHeader } from './der-writer';
import { OID } from './oids';
import type { PublicKeyType, SubjectPublicKey } from './public-keys';

export type SignatureAlgorithmName =
  | 'ecdsa-with-SHA256'
  | 'ecdsa-with-SHA384'
  | 'ecdsa-with-SHA512'
  | 'sha256WithRSAEncryption'
  | 'sha384WithRSAEncryption'
  | 'sha512WithRSAEncryption'
  | 'RSASSA-PSS-SHA256'
  | 'RSASSA-PSS-SHA384'
  | 'RSASSA-PSS-SHA512'
  | 'Ed25519';

export type HashName = 'sha256' | 'sha384' | 'sha512';

export interface SignatureAlgorithm {
  readonly name: SignatureAlgorithmName;
  readonly keyType: PublicKeyType;
  /** The hash, for everything but Ed25519. */
  readonly hash?: HashName;
  /** DER AlgorithmIdentifier for signature / signatureAlgorithm fields. */
  readonly identifier: Buffer;
  /** What to pass to the signer. */
  readonly mechanism: Mechanism;
  /** True when the data handed to C_Sign is the digest (computed here) rather than the TBS itself. */
  readonly prehash: boolean;
}

const HASH_OID: Readonly<Record<HashName, string>> = { sha256: OID.sha256, sha384: OID.sha384, sha512: OID.sha512 };
const HASH_BYTES: Readonly<Record<HashName, number>> = { sha256: 32, sha384: 48, sha512: 64 };

/**
 * RSASSA-PSS-params (RFC 4055 section 3.1) with explicit hash and MGF1 hash, salt length equal
 * to the hash length, trailerField left at its default. The hash AlgorithmIdentifiers carry
 * NULL parameters, as RFC 4055's sha256Identifier & co. specify.
 */
function pssParameters(hash: HashName): Buffer {
  const hashId = algorithmIdentifier(HASH_OID[hash], NULL_DER);
  return sequence([explicit(0, [hashId]), explicit(1, [algorithmIdentifier(OID.mgf1, hashId)]), explicit(2, [integer(HASH_BYTES[hash])])]);
}

function pss(hash: HashName, name: SignatureAlgorithmName, mechanism: number, mgf: number): SignatureAlgorithm {
  return {
    name,
    keyType: 'rsa',
    hash,
    identifier: algorithmIdentifier(OID.rsassaPss, pssParameters(hash)),
    mechanism: { mechanism, parameter: { hashAlg: { sha256: CKM_SHA256, sha384: CKM_SHA384, sha512: CKM_SHA512 }[hash], mgf, saltLen: HASH_BYTES[hash] } },
    prehash: false,
  };
}

const ALGORITHMS: Readonly<Record<SignatureAlgorithmName, SignatureAlgorithm>> = {
  // RFC 5758 section 3.2: ECDSA identifiers have absent parameters.
  'ecdsa-with-SHA256': { name: 'ecdsa-with-SHA256', keyType: 'ec', hash: 'sha256', identifier: algorithmIdentifier(OID.ecdsaWithSha256), mechanism: CKM_ECDSA, prehash: true },
  'ecdsa-with-SHA384': { name: 'ecdsa-with-SHA384', keyType: 'ec', hash: 'sha384', identifier: algorithmIdentifier(OID.ecdsaWithSha384), mechanism: CKM_ECDSA, prehash: true },
  'ecdsa-with-SHA512': { name: 'ecdsa-with-SHA512', keyType: 'ec', hash: 'sha512', identifier: algorithmIdentifier(OID.ecdsaWithSha512), mechanism: CKM_ECDSA, prehash: true },
  // RFC 4055 section 5: PKCS#1 v1.5 identifiers carry NULL parameters.
  sha256WithRSAEncryption: { name: 'sha256WithRSAEncryption', keyType: 'rsa', hash: 'sha256', identifier: algorithmIdentifier(OID.sha256WithRsa, NULL_DER), mechanism: CKM_SHA256_RSA_PKCS, prehash: false },
  sha384WithRSAEncryption: { name: 'sha384WithRSAEncryption', keyType: 'rsa', hash: 'sha384', identifier: algorithmIdentifier(OID.sha384WithRsa, NULL_DER), mechanism: CKM_SHA384_RSA_PKCS, prehash: false },
  sha512WithRSAEncryption: { name: 'sha512WithRSAEncryption', keyType: 'rsa', hash: 'sha512', identifier: algorithmIdentifier(OID.sha512WithRsa, NULL_DER), mechanism: CKM_SHA512_RSA_PKCS, prehash: false },
  'RSASSA-PSS-SHA256': pss('sha256', 'RSASSA-PSS-SHA256', CKM_SHA256_RSA_PKCS_PSS, CKG_MGF1_SHA256),
  'RSASSA-PSS-SHA384': pss('sha384', 'RSASSA-PSS-SHA384', CKM_SHA384_RSA_PKCS_PSS, CKG_MGF1_SHA384),
  'RSASSA-PSS-SHA512': pss('sha512', 'RSASSA-PSS-SHA512', CKM_SHA512_RSA_PKCS_PSS, CKG_MGF1_SHA512),
  // RFC 8410 section 3: Ed25519 has absent parameters and signs the message itself (PureEdDSA).
  Ed25519: { name: 'Ed25519', keyType: 'ed25519', identifier: algorithmIdentifier(OID.ed25519), mechanism: CKM_EDDSA, prehash: false },
};

/** All supported algorithm names. */
export const SIGNATURE_ALGORITHMS: readonly SignatureAlgorithmName[] = Object.keys(ALGORITHMS) as SignatureAlgorithmName[];

/** The algorithm for `name`, checked against the signing key. Without a name, the key's natural choice. */
export function selectAlgorithm(key: SubjectPublicKey, name?: SignatureAlgorithmName): SignatureAlgorithm {
  const chosen = name ?? defaultAlgorithmName(key);
  const alg = Object.prototype.hasOwnProperty.call(ALGORITHMS, chosen) ? ALGORITHMS[chosen] : undefined;
  if (!alg) throw new CaError('UNSUPPORTED_ALGORITHM', `unknown signature algorithm "${String(chosen)}" (supported: ${SIGNATURE_ALGORITHMS.join(', ')})`);
  if (alg.keyType !== key.keyType) throw new CaError('UNSUPPORTED_ALGORITHM', `${alg.name} needs an ${alg.keyType} key, but the CA key is ${key.keyType}`);
  return alg;
}

/** ecdsa-with-SHA256/384/512 matched to P-256/384/521, sha256WithRSAEncryption for RSA, Ed25519 for Ed25519. */
export function defaultAlgorithmName(key: SubjectPublicKey): SignatureAlgorithmName {
  if (key.keyType === 'rsa') return 'sha256WithRSAEncryption';
  if (key.keyType === 'ed25519') return 'Ed25519';
  return key.curve?.name === 'P-384' ? 'ecdsa-with-SHA384' : key.curve?.name === 'P-521' ? 'ecdsa-with-SHA512' : 'ecdsa-with-SHA256';
}

/** The bytes to hand the signer for `tbs`. */
export function dataToSign(alg: SignatureAlgorithm, tbs: Buffer): Buffer {
  return alg.prehash ? createHash(alg.hash!).update(tbs).digest() : tbs;
}

/**
 * The signatureValue bytes from the module's raw output. ECDSA: r||s (each half the field
 * size) becomes DER Ecdsa-Sig-Value (RFC 3279 section 2.2.3); others are checked for length.
 */
export function signatureValue(alg: SignatureAlgorithm, key: SubjectPublicKey, raw: Buffer): Buffer {
  const expected = key.rawSignatureLength;
  if (!Buffer.isBuffer(raw) || raw.length !== expected) {
    throw new CaError('SIGNATURE_FAILED', `the token returned a ${Buffer.isBuffer(raw) ? raw.length + '-byte' : 'non-Buffer'} ${alg.name} signature; expected ${expected} bytes`);
  }
  return alg.keyType === 'ec' ? ecdsaRawToDer(raw) : raw;
}

/** r||s to DER SEQUENCE { INTEGER r, INTEGER s } in one allocation. */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  const half = raw.length / 2;
  const span = (from: number): [number, number] => {
    let i = from;
    while (i < from + half - 1 && raw[i] === 0) i++;
    return [i, from + half];
  };
  const [rs, re] = span(0);
  const [ss, se] = span(half);
  if ((re - rs === 1 && raw[rs] === 0) || (se - ss === 1 && raw[ss] === 0)) {
    throw new CaError('SIGNATURE_FAILED', 'the token returned an ECDSA signature with r or s equal to zero');
  }
  const rLen = re - rs + (raw[rs] & 0x80 ? 1 : 0);
  const sLen = se - ss + (raw[ss] & 0x80 ? 1 : 0);
  const body = 2 + lengthOfLength(rLen) + rLen + lengthOfLength(sLen) + sLen;
  const out = Buffer.allocUnsafe(1 + lengthOfLength(body) + body);
  let at = writeHeader(out, 0, TAG.SEQUENCE, body);
  for (const [start, end, len] of [[rs, re, rLen], [ss, se, sLen]] as const) {
    at = writeHeader(out, at, TAG.INTEGER, len);
    if (len > end - start) out[at++] = 0;
    raw.copy(out, at, start, end);
    at += end - start;
  }
  return out;
}
