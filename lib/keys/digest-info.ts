/**
 * PKCS#1 v1.5 DigestInfo (RFC 8017 section 9.2): CKM_RSA_PKCS only pads, so signing a
 * pre-computed hash means handing it DigestInfo { AlgorithmIdentifier, OCTET STRING digest }.
 */
import { DerError, derNull, derOctetString, derOid, derSequence } from '../asn1/der';

export type DigestInfoHash = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

const HASHES: Record<DigestInfoHash, { oid: string; length: number }> = {
  sha1: { oid: '1.3.14.3.2.26', length: 20 },
  sha224: { oid: '2.16.840.1.101.3.4.2.4', length: 28 },
  sha256: { oid: '2.16.840.1.101.3.4.2.1', length: 32 },
  sha384: { oid: '2.16.840.1.101.3.4.2.2', length: 48 },
  sha512: { oid: '2.16.840.1.101.3.4.2.3', length: 64 },
};

export function digestInfo(hash: DigestInfoHash, digest: Buffer): Buffer {
  const spec = Object.prototype.hasOwnProperty.call(HASHES, hash) ? HASHES[hash] : undefined;
  if (!spec) throw new DerError(`DigestInfo: unsupported hash ${String(hash)}`);
  if (digest.length !== spec.length) {
    throw new DerError(`DigestInfo: a ${hash} digest is ${spec.length} bytes, got ${digest.length}`);
  }
  // RFC 8017 encodes the parameters as an explicit NULL, and verifiers compare bytes.
  return derSequence(derSequence(derOid(spec.oid), derNull()), derOctetString(digest));
}
