/**
 * Verifying signatures described by an X.509 AlgorithmIdentifier, with node:crypto: CSR
 * self-signatures, and the CA's proof at start-up that its HSM key signs for its certificate.
 * SHA-1 and PSS parameter sets other than "MGF1 with the same hash" are refused.
 */
import { constants, verify } from 'crypto';
import { CaError } from './errors';
import { Tlv, children, content, decodeOid, expectTag, readTlv, readWhole } from './der-reader';
import { TAG } from './der-writer';
import type { HashName } from './algorithms';
import { OID } from './oids';
import type { PublicKeyType, SubjectPublicKey } from './public-keys';

export interface VerifyParams {
  /** Human-readable algorithm, for messages. */
  name: string;
  keyType: PublicKeyType;
  /** null for Ed25519 (no pre-hash). */
  hash: HashName | null;
  /** Set for RSASSA-PSS. */
  pssSaltLength?: number;
}

const SIMPLE: Readonly<Record<string, VerifyParams>> = {
  [OID.ecdsaWithSha256]: { name: 'ecdsa-with-SHA256', keyType: 'ec', hash: 'sha256' },
  [OID.ecdsaWithSha384]: { name: 'ecdsa-with-SHA384', keyType: 'ec', hash: 'sha384' },
  [OID.ecdsaWithSha512]: { name: 'ecdsa-with-SHA512', keyType: 'ec', hash: 'sha512' },
  [OID.sha256WithRsa]: { name: 'sha256WithRSAEncryption', keyType: 'rsa', hash: 'sha256' },
  [OID.sha384WithRsa]: { name: 'sha384WithRSAEncryption', keyType: 'rsa', hash: 'sha384' },
  [OID.sha512WithRsa]: { name: 'sha512WithRSAEncryption', keyType: 'rsa', hash: 'sha512' },
  [OID.ed25519]: { name: 'Ed25519', keyType: 'ed25519', hash: null },
};

const HASHES: Readonly<Record<string, HashName>> = { [OID.sha256]: 'sha256', [OID.sha384]: 'sha384', [OID.sha512]: 'sha512' };

function unsupported(message: string): CaError {
  return new CaError('UNSUPPORTED_ALGORITHM', message);
}

/** Reads an AlgorithmIdentifier's OID and optional parameters TLV. */
function readAlgorithm(der: Buffer, t: Tlv): { oid: string; params?: Tlv } {
  expectTag(t, TAG.SEQUENCE, 'AlgorithmIdentifier');
  const [id, params, extra] = children(der, t);
  expectTag(id, TAG.OID, 'algorithm OID');
  if (extra) throw unsupported('AlgorithmIdentifier has extra fields');
  return { oid: decodeOid(content(der, id)), params };
}

function hashOf(der: Buffer, t: Tlv, what: string): HashName {
  const { oid, params } = readAlgorithm(der, t);
  const hash = HASHES[oid];
  if (!hash) throw unsupported(`${what} ${oid} is not SHA-256, SHA-384 or SHA-512`);
  if (params && !(params.tag === TAG.NULL && params.end === params.contentStart)) throw unsupported(`${what} has parameters other than NULL`);
  return hash;
}

/** RSASSA-PSS-params (RFC 4055 section 3.1); the defaults (SHA-1) are refused. */
function pssParams(der: Buffer, params: Tlv | undefined): VerifyParams {
  if (!params || params.tag !== TAG.SEQUENCE) throw unsupported('RSASSA-PSS without parameters would mean SHA-1, which is not accepted');
  let hash: HashName | undefined;
  let mgfHash: HashName | undefined;
  let salt = 20;
  for (const field of children(der, params)) {
    const inner = readTlv(der, field.contentStart, field.end);
    if (field.tag === 0xa0) hash = hashOf(der, inner, 'PSS hash');
    else if (field.tag === 0xa1) {
      const mgf = readAlgorithm(der, inner);
      if (mgf.oid !== OID.mgf1 || !mgf.params) throw unsupported('PSS mask generation function must be MGF1');
      mgfHash = hashOf(der, mgf.params, 'MGF1 hash');
    } else if (field.tag === 0xa2) {
      expectTag(inner, TAG.INTEGER, 'PSS saltLength');
      const bytes = content(der, inner);
      if (bytes.length > 2 || bytes[0] & 0x80) throw unsupported('PSS saltLength out of range');
      salt = bytes.readUIntBE(0, bytes.length);
    } else if (field.tag === 0xa3) {
      expectTag(inner, TAG.INTEGER, 'PSS trailerField');
      if (!content(der, inner).equals(Buffer.from([1]))) throw unsupported('PSS trailerField must be 1');
    } else throw unsupported(`unexpected field [${field.tag & 0x1f}] in RSASSA-PSS-params`);
  }
  if (!hash) throw unsupported('RSASSA-PSS with the default SHA-1 hash is not accepted');
  if (mgfHash !== hash) throw unsupported('RSASSA-PSS must use MGF1 with the same hash as the message hash');
  return { name: `RSASSA-PSS-${hash.toUpperCase()}`, keyType: 'rsa', hash, pssSaltLength: salt };
}

/** What an AlgorithmIdentifier (full DER) asks for; throws UNSUPPORTED_ALGORITHM otherwise. */
export function parseSignatureAlgorithm(algorithmIdentifier: Buffer): VerifyParams {
  try {
    const t = readWhole(algorithmIdentifier, TAG.SEQUENCE, 'AlgorithmIdentifier');
    const { oid, params } = readAlgorithm(algorithmIdentifier, t);
    if (oid === OID.rsassaPss) return pssParams(algorithmIdentifier, params);
    const simple = SIMPLE[oid];
    if (!simple) throw unsupported(`signature algorithm ${oid} is not supported (SHA-1 and others are refused)`);
    // RSA PKCS#1 v1.5 identifiers carry NULL (some encoders omit it); ECDSA and Ed25519 have none.
    const paramsOk = !params || (simple.keyType === 'rsa' && params.tag === TAG.NULL && params.end === params.contentStart);
    if (!paramsOk) throw unsupported(`${simple.name} must not have parameters`);
    return simple;
  } catch (e) {
    if (e instanceof CaError) throw e;
    throw unsupported(`malformed AlgorithmIdentifier: ${(e as Error).message}`);
  }
}

/** Verifies `signature` over `data` with `key` as `algorithmIdentifier` describes. */
export function verifySignature(algorithmIdentifier: Buffer, key: SubjectPublicKey, data: Buffer, signature: Buffer): boolean {
  const p = parseSignatureAlgorithm(algorithmIdentifier);
  if (p.keyType !== key.keyType) throw unsupported(`${p.name} cannot be used with an ${key.keyType} key`);
  const keySpec =
    p.pssSaltLength === undefined
      ? key.keyObject
      : { key: key.keyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: p.pssSaltLength };
  try {
    return verify(p.hash, data, keySpec, signature);
  } catch {
    // node throws on structurally invalid signatures (e.g. bad DER); that is a failed verification.
    return false;
  }
}
