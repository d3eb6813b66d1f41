/**
 * Extensions that point relying parties at the CA's services and policies: CRL distribution
 * points, authority information access (OCSP, caIssuers) and certificate policies. They are
 * the same for every certificate a CA issues, so they are encoded once (with asn1-x509,
 * which covers their full ASN.1) and reused as bytes.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AccessDescription,
  AuthorityInfoAccessSyntax,
  CRLDistributionPoints,
  CertificatePolicies,
  DistributionPoint,
  DistributionPointName,
  GeneralName,
  PolicyInformation,
  PolicyQualifierInfo,
} from '@peculiar/asn1-x509';
import { CaError } from './errors';
import { TAG, stringValue } from './der-writer';
import { extension } from './extensions';
import { checkUri } from './general-names';
import { DOTTED_OID, OID } from './oids';

/** A certificate policy: its OID, optionally with a CPS pointer qualifier. */
export interface CertificatePolicy {
  oid: string;
  /** URI of the certification practice statement (id-qt-cps qualifier). */
  cps?: string;
}

/** Where relying parties find revocation data and the issuer's certificate, and which policies apply. */
export interface DistributionOptions {
  /** CRL URLs (one DistributionPoint with these fullName URIs). */
  crlDistributionPoints?: readonly string[];
  /** OCSP responder URLs (AIA id-ad-ocsp). */
  ocspUrls?: readonly string[];
  /** URLs of the issuing CA's certificate (AIA id-ad-caIssuers). */
  caIssuersUrls?: readonly string[];
  /** Policy OIDs (e.g. '2.23.140.1.2.1' domain-validated), or with a CPS URI. */
  certificatePolicies?: readonly (string | CertificatePolicy)[];
}

function uris(list: readonly string[] | undefined, what: string): string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new CaError('INVALID_ARGUMENT', `${what} must be an array of URIs`);
  for (const uri of list) checkUri(uri);
  return [...list];
}

function serialize(value: unknown): Buffer {
  return Buffer.from(AsnConvert.serialize(value));
}

/** cRLDistributionPoints, non-critical; undefined when there are no URLs. */
export function crlDistributionPointsExtension(urls: readonly string[] | undefined): Buffer | undefined {
  const list = uris(urls, 'crlDistributionPoints');
  if (list.length === 0) return undefined;
  const fullName = list.map((uri) => new GeneralName({ uniformResourceIdentifier: uri }));
  const points = new CRLDistributionPoints([new DistributionPoint({ distributionPoint: new DistributionPointName({ fullName }) })]);
  return extension(OID.crlDistributionPoints, false, serialize(points));
}

/** authorityInfoAccess (MUST be non-critical); undefined when there are no URLs. */
export function authorityInfoAccessExtension(ocsp: readonly string[] | undefined, caIssuers: readonly string[] | undefined): Buffer | undefined {
  const descriptions = [
    ...uris(ocsp, 'ocspUrls').map((uri) => new AccessDescription({ accessMethod: OID.ocsp, accessLocation: new GeneralName({ uniformResourceIdentifier: uri }) })),
    ...uris(caIssuers, 'caIssuersUrls').map(
      (uri) => new AccessDescription({ accessMethod: OID.caIssuers, accessLocation: new GeneralName({ uniformResourceIdentifier: uri }) }),
    ),
  ];
  if (descriptions.length === 0) return undefined;
  return extension(OID.authorityInfoAccess, false, serialize(new AuthorityInfoAccessSyntax(descriptions)));
}

/** certificatePolicies, non-critical; undefined when there are none. */
export function certificatePoliciesExtension(policies: readonly (string | CertificatePolicy)[] | undefined): Buffer | undefined {
  if (policies === undefined || policies.length === 0) return undefined;
  if (!Array.isArray(policies)) throw new CaError('INVALID_ARGUMENT', 'certificatePolicies must be an array');
  const seen = new Set<string>();
  const infos = policies.map((p) => {
    const policy: CertificatePolicy = typeof p === 'string' ? { oid: p } : p;
    if (typeof policy.oid !== 'string' || !DOTTED_OID.test(policy.oid)) {
      throw new CaError('INVALID_ARGUMENT', `certificate policy "${String(policy.oid)}" is not a dotted OID`);
    }
    // RFC 5280 section 4.2.1.4: a policy OID MUST NOT appear more than once.
    if (seen.has(policy.oid)) throw new CaError('INVALID_ARGUMENT', `certificate policy ${policy.oid} is listed twice`);
    seen.add(policy.oid);
    const info = new PolicyInformation({ policyIdentifier: policy.oid });
    if (policy.cps !== undefined) {
      checkUri(policy.cps);
      const cps = stringValue(TAG.IA5_STRING, policy.cps);
      const qualifier = cps.buffer.slice(cps.byteOffset, cps.byteOffset + cps.byteLength) as ArrayBuffer;
      info.policyQualifiers = [new PolicyQualifierInfo({ policyQualifierId: OID.cpsQualifier, qualifier })];
    }
    return info;
  });
  return extension(OID.certificatePolicies, false, serialize(new CertificatePolicies(infos)));
}

/** The distribution extensions in certificate order, skipping absent ones. */
export function distributionExtensions(options: DistributionOptions): Buffer[] {
  return [
    crlDistributionPointsExtension(options.crlDistributionPoints),
    authorityInfoAccessExtension(options.ocspUrls, options.caIssuersUrls),
    certificatePoliciesExtension(options.certificatePolicies),
  ].filter((e): e is Buffer => e !== undefined);
}
