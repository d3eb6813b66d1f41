/**
 * PKCS#10 certification requests (RFC 2986): strict DER structure, asn1-csr for the fields,
 * and the self-signature verified before anything from the request is used.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { Extensions, SubjectAlternativeName } from '@peculiar/asn1-x509';
import { CaError, wrapError } from './errors';
import { children, content, raw, readWhole } from './der-reader';
import { TAG } from './der-writer';
import type { SubjectAltNames } from './general-names';
import { formatName } from './name-format';
import { OID } from './oids';
import { toDer } from './pem';
import { SubjectPublicKey } from './public-keys';
import { parseSignatureAlgorithm, verifySignature } from './signature-verify';

/** A CSR whose signature has been verified. */
export interface VerifiedCsr {
  /** The requested subject as DER Name (exact bytes from the request). */
  subject: Buffer;
  /** The requested subject as an RFC 4514 string. */
  subjectText: string;
  /** The requester's key, validated; pass it as `publicKey` to issue many certificates without re-parsing. */
  publicKey: SubjectPublicKey;
  /** Name of the algorithm the request was signed with. */
  signatureAlgorithm: string;
  /**
   * SANs asked for in an extensionRequest attribute, for the caller to vet. The CA never copies
   * them implicitly: what a certificate asserts is decided by the caller's `sans`.
   */
  requestedSans: SubjectAltNames;
}

/** Upper bound on a CSR's size; real ones are well under 8 KiB. */
export const MAX_CSR_BYTES = 65536;

/**
 * Parses a PEM or DER CSR and verifies its self-signature. Throws CaError with code
 * CSR_MALFORMED (not PKCS#10 DER), UNSUPPORTED_ALGORITHM, UNSUPPORTED_KEY, or
 * CSR_SIGNATURE_INVALID.
 */
export function verifyCsr(input: Buffer | Uint8Array | string): VerifiedCsr {
  const der = toDer(input, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'], 'CSR_MALFORMED', 'CSR');
  if (der.length > MAX_CSR_BYTES) throw new CaError('CSR_MALFORMED', `CSR is ${der.length} bytes; at most ${MAX_CSR_BYTES} are accepted`);

  let info, algorithm, signatureBits, subjectDer, spkiDer;
  let parsed: CertificationRequest;
  try {
    const outer = readWhole(der, TAG.SEQUENCE, 'CertificationRequest');
    const parts = children(der, outer);
    if (parts.length !== 3) throw new Error(`CertificationRequest has ${parts.length} fields, expected 3`);
    [info, algorithm, signatureBits] = parts;
    if (info.tag !== TAG.SEQUENCE || algorithm.tag !== TAG.SEQUENCE || signatureBits.tag !== TAG.BIT_STRING) {
      throw new Error('CertificationRequest fields have the wrong types');
    }
    const fields = children(der, info);
    if (fields.length < 3 || fields.length > 4 || fields[1].tag !== TAG.SEQUENCE || fields[2].tag !== TAG.SEQUENCE) {
      throw new Error('CertificationRequestInfo is not { version, subject, subjectPKInfo, attributes }');
    }
    subjectDer = Buffer.from(raw(der, fields[1]));
    spkiDer = Buffer.from(raw(der, fields[2]));
    parsed = AsnConvert.parse(der, CertificationRequest);
  } catch (e) {
    throw wrapError('CSR_MALFORMED', 'the CSR is not a DER PKCS#10 request', e);
  }
  if (parsed.certificationRequestInfo.version !== 0) {
    throw new CaError('CSR_MALFORMED', `CSR version ${parsed.certificationRequestInfo.version} is not v1 (0)`);
  }
  const algorithmDer = raw(der, algorithm);
  const params = parseSignatureAlgorithm(algorithmDer);
  const publicKey = SubjectPublicKey.from(spkiDer);
  const bits = content(der, signatureBits);
  if (bits.length < 2 || bits[0] !== 0) throw new CaError('CSR_MALFORMED', 'the CSR signature BIT STRING is empty or has unused bits');
  if (!verifySignature(algorithmDer, publicKey, raw(der, info), bits.subarray(1))) {
    throw new CaError('CSR_SIGNATURE_INVALID', `the CSR's ${params.name} signature does not verify with the key it contains`);
  }
  return {
    subject: subjectDer,
    subjectText: formatName(subjectDer),
    publicKey,
    signatureAlgorithm: params.name,
    requestedSans: requestedSans(parsed),
  };
}

function requestedSans(csr: CertificationRequest): SubjectAltNames {
  const out: { dns: string[]; ip: string[]; uri: string[]; email: string[] } = { dns: [], ip: [], uri: [], email: [] };
  try {
    for (const attr of csr.certificationRequestInfo.attributes ?? []) {
      if (attr.type !== OID.extensionRequest || attr.values.length === 0) continue;
      for (const ext of AsnConvert.parse(attr.values[0], Extensions)) {
        if (ext.extnID !== OID.subjectAltName) continue;
        for (const name of AsnConvert.parse(ext.extnValue, SubjectAlternativeName)) {
          if (name.dNSName !== undefined) out.dns.push(name.dNSName);
          else if (name.iPAddress !== undefined) out.ip.push(name.iPAddress);
          else if (name.uniformResourceIdentifier !== undefined) out.uri.push(name.uniformResourceIdentifier);
          else if (name.rfc822Name !== undefined) out.email.push(name.rfc822Name);
        }
      }
    }
  } catch (e) {
    throw wrapError('CSR_MALFORMED', 'the CSR extensionRequest attribute is malformed', e);
  }
  return out;
}
