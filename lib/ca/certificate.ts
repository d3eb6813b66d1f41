/**
 * Certificate assembly: the TBSCertificate from bytes that are fixed per CA and profile
 * (issuer, signature algorithm, AKI and profile extensions, encoded once) plus the fields of
 * this certificate (serial, validity, subject, key, SKI, SAN), written into one buffer; then
 * the signed Certificate around the HSM's signature.
 */
import type { Pkcs11Signer } from '../keys/signer';
import { SignatureAlgorithm, dataToSign, signatureValue } from './algorithms';
import { CaError } from './errors';
import { TAG, lengthOfLength, unsignedInteger, writeHeader } from './der-writer';
import type { SubjectPublicKey } from './public-keys';
import { encodeValidity } from './validity';

/** The parts of a TBSCertificate shared by every certificate a CA issues under one profile. */
export interface TbsTemplate {
  /** DER AlgorithmIdentifier (also the outer signatureAlgorithm). */
  signatureAlgorithm: Buffer;
  /** DER Name of the issuer, exactly the issuing certificate's subject. */
  issuer: Buffer;
  /** Concatenated Extensions written before the SKI (basicConstraints, keyUsage, extKeyUsage). */
  leadingExtensions: Buffer;
  /** The AKI Extension, or an empty buffer for a self-signed root that omits it. */
  authorityKeyIdentifier: Buffer;
  /** Concatenated Extensions written after the SAN (CRL DP, AIA, policies). */
  trailingExtensions: Buffer;
}

/** The fields that differ between certificates. */
export interface TbsFields {
  /** Serial magnitude (positive, at most 20 octets once encoded). */
  serial: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** DER Name. */
  subject: Buffer;
  /** DER SubjectPublicKeyInfo. */
  spki: Buffer;
  /** SubjectKeyIdentifier Extension. */
  subjectKeyIdentifier: Buffer;
  /** SubjectAltName Extension, if any. */
  subjectAltName?: Buffer;
  /** Caller-supplied Extensions, already validated. */
  extra: readonly Buffer[];
}

/** version [0] EXPLICIT INTEGER v3 (2): the same five bytes in every certificate. */
const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);

/** DER TBSCertificate, written with one allocation for the outer structure. */
export function assembleTbs(t: TbsTemplate, f: TbsFields): Buffer {
  const serial = unsignedInteger(f.serial);
  const validity = encodeValidity(f.notBefore, f.notAfter);
  const extensions: Buffer[] = [t.leadingExtensions, f.subjectKeyIdentifier, t.authorityKeyIdentifier];
  if (f.subjectAltName) extensions.push(f.subjectAltName);
  extensions.push(t.trailingExtensions, ...f.extra);

  let extLength = 0;
  for (const e of extensions) extLength += e.length;
  const seqLength = 1 + lengthOfLength(extLength) + extLength;
  const fieldsLength = 1 + lengthOfLength(seqLength) + seqLength;
  const head = [VERSION_V3, serial, t.signatureAlgorithm, t.issuer, validity, f.subject, f.spki];
  let length = fieldsLength;
  for (const p of head) length += p.length;

  const out = Buffer.allocUnsafe(1 + lengthOfLength(length) + length);
  let at = writeHeader(out, 0, TAG.SEQUENCE, length);
  for (const p of head) {
    out.set(p, at);
    at += p.length;
  }
  at = writeHeader(out, at, 0xa3, seqLength); // extensions [3] EXPLICIT
  at = writeHeader(out, at, TAG.SEQUENCE, extLength);
  for (const e of extensions) {
    out.set(e, at);
    at += e.length;
  }
  return out;
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }. */
export function assembleSigned(tbs: Buffer, signatureAlgorithm: Buffer, signature: Buffer): Buffer {
  const bitsLength = signature.length + 1;
  const length = tbs.length + signatureAlgorithm.length + 1 + lengthOfLength(bitsLength) + bitsLength;
  const out = Buffer.allocUnsafe(1 + lengthOfLength(length) + length);
  let at = writeHeader(out, 0, TAG.SEQUENCE, length);
  out.set(tbs, at);
  at += tbs.length;
  out.set(signatureAlgorithm, at);
  at += signatureAlgorithm.length;
  at = writeHeader(out, at, TAG.BIT_STRING, bitsLength);
  out[at++] = 0;
  out.set(signature, at);
  return out;
}

/**
 * Signs `tbs` (a TBSCertificate or TBSCertList) in the HSM and returns the signed structure.
 * The signing key is `key` (the CA's, used to size-check the module's output).
 */
export function signStructure(signer: Pkcs11Signer, alg: SignatureAlgorithm, key: SubjectPublicKey, tbs: Buffer): Promise<Buffer> {
  const refused = (e: unknown): CaError =>
    new CaError('SIGNATURE_FAILED', `the HSM refused to sign with ${alg.name}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  let pending: Promise<Buffer>;
  try {
    pending = signer.sign(alg.mechanism, dataToSign(alg, tbs));
  } catch (e) {
    return Promise.reject(refused(e));
  }
  // Plain promise chaining rather than async/await: one fewer promise per certificate.
  return pending.then(
    (raw) => assembleSigned(tbs, alg.identifier, signatureValue(alg, key, raw)),
    (e: unknown) => {
      throw refused(e);
    },
  );
}
