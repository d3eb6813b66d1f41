/**
 * Reading certificates the CA is handed (its own, its chain): exact DER slices for the
 * fields that must be reused byte for byte (subject as the issuer of what it signs, SPKI for
 * key binding) and, via asn1-x509, the extensions that decide what the CA may do.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  KeyUsage,
  KeyUsageFlags,
  SubjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { CaError, wrapError } from './errors';
import { children, content, raw, readWhole } from './der-reader';
import { TAG } from './der-writer';
import type { KeyUsageName } from './extensions';
import { OID } from './oids';
import { toDer } from './pem';
import { SubjectPublicKey } from './public-keys';
import { decodeTime } from './validity';

export interface CertificateInfo {
  der: Buffer;
  /** The TBSCertificate bytes (what the signature covers). */
  tbs: Buffer;
  serial: Buffer;
  /** DER AlgorithmIdentifier of the outer signatureAlgorithm. */
  signatureAlgorithm: Buffer;
  signature: Buffer;
  /** Exact DER of the issuer and subject Names. */
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  publicKey: SubjectPublicKey;
  /** basicConstraints cA. */
  isCa: boolean;
  pathLen?: number;
  /** undefined when the certificate has no keyUsage extension. */
  keyUsage?: ReadonlySet<KeyUsageName>;
  subjectKeyIdentifier?: Buffer;
  authorityKeyIdentifier?: Buffer;
}

const KU_FLAGS: readonly [KeyUsageName, number][] = [
  ['digitalSignature', KeyUsageFlags.digitalSignature],
  ['nonRepudiation', KeyUsageFlags.nonRepudiation],
  ['keyEncipherment', KeyUsageFlags.keyEncipherment],
  ['dataEncipherment', KeyUsageFlags.dataEncipherment],
  ['keyAgreement', KeyUsageFlags.keyAgreement],
  ['keyCertSign', KeyUsageFlags.keyCertSign],
  ['cRLSign', KeyUsageFlags.cRLSign],
  ['encipherOnly', KeyUsageFlags.encipherOnly],
  ['decipherOnly', KeyUsageFlags.decipherOnly],
];

/** Parses a DER or PEM certificate. Throws CaError('CERTIFICATE_INVALID') when it is not X.509 v3 DER. */
export function readCertificate(input: Buffer | Uint8Array | string): CertificateInfo {
  const der = Buffer.from(toDer(input, ['CERTIFICATE'], 'CERTIFICATE_INVALID', 'certificate'));
  let info: Omit<CertificateInfo, 'publicKey' | 'isCa' | 'pathLen' | 'keyUsage' | 'subjectKeyIdentifier' | 'authorityKeyIdentifier'>;
  let spki: Buffer;
  let parsed: Certificate;
  try {
    const outer = readWhole(der, TAG.SEQUENCE, 'Certificate');
    const [tbs, alg, sig, extra] = children(der, outer);
    if (!tbs || !alg || !sig || extra || sig.tag !== TAG.BIT_STRING) throw new Error('Certificate is not { tbsCertificate, signatureAlgorithm, signatureValue }');
    const f = children(der, tbs);
    if (f[0]?.tag !== 0xa0) throw new Error('only X.509 v3 certificates are supported');
    const [, serial, , issuer, validity, subject, spkiTlv] = f;
    if (!spkiTlv) throw new Error('TBSCertificate is truncated');
    const [nb, na] = children(der, validity);
    spki = Buffer.from(raw(der, spkiTlv));
    info = {
      der,
      tbs: Buffer.from(raw(der, tbs)),
      serial: Buffer.from(content(der, serial)),
      signatureAlgorithm: Buffer.from(raw(der, alg)),
      signature: Buffer.from(content(der, sig).subarray(1)),
      issuer: Buffer.from(raw(der, issuer)),
      subject: Buffer.from(raw(der, subject)),
      notBefore: decodeTime(nb.tag, content(der, nb).toString('latin1')),
      notAfter: decodeTime(na.tag, content(der, na).toString('latin1')),
    };
    parsed = AsnConvert.parse(der, Certificate);
  } catch (e) {
    throw wrapError('CERTIFICATE_INVALID', 'not a DER X.509 v3 certificate', e);
  }

  let isCa = false;
  let pathLen: number | undefined;
  let keyUsage: Set<KeyUsageName> | undefined;
  let subjectKeyIdentifier: Buffer | undefined;
  let authorityKeyIdentifier: Buffer | undefined;
  const seen = new Set<string>();
  try {
    for (const ext of parsed.tbsCertificate.extensions ?? []) {
      if (seen.has(ext.extnID)) throw new Error(`extension ${ext.extnID} appears twice`);
      seen.add(ext.extnID);
      const value = ext.extnValue.buffer;
      if (ext.extnID === OID.basicConstraints) {
        const bc = AsnConvert.parse(value, BasicConstraints);
        isCa = bc.cA;
        pathLen = bc.pathLenConstraint;
      } else if (ext.extnID === OID.keyUsage) {
        const flags = AsnConvert.parse(value, KeyUsage).toNumber();
        keyUsage = new Set(KU_FLAGS.filter(([, f]) => flags & f).map(([n]) => n));
      } else if (ext.extnID === OID.subjectKeyIdentifier) {
        subjectKeyIdentifier = Buffer.from(AsnConvert.parse(value, SubjectKeyIdentifier).buffer);
      } else if (ext.extnID === OID.authorityKeyIdentifier) {
        const aki = AsnConvert.parse(value, AuthorityKeyIdentifier);
        if (aki.keyIdentifier) authorityKeyIdentifier = Buffer.from(aki.keyIdentifier.buffer);
      }
    }
  } catch (e) {
    throw wrapError('CERTIFICATE_INVALID', 'the certificate has a malformed extension', e);
  }
  let publicKey: SubjectPublicKey;
  try {
    publicKey = SubjectPublicKey.from(spki);
  } catch (e) {
    throw wrapError('CERTIFICATE_INVALID', 'the certificate public key is not usable', e);
  }
  return { ...info, publicKey, isCa, pathLen, keyUsage, subjectKeyIdentifier, authorityKeyIdentifier };
}

/** Throws unless `cert` may act as a CA that signs certificates (and, with `crl`, CRLs). */
export function assertCaCertificate(cert: CertificateInfo, what: string): void {
  if (!cert.isCa) throw new CaError('CERTIFICATE_INVALID', `${what} is not a CA certificate (basicConstraints cA is not set)`);
  if (cert.keyUsage && !cert.keyUsage.has('keyCertSign')) {
    throw new CaError('CERTIFICATE_INVALID', `${what} lacks the keyCertSign key usage`);
  }
}
