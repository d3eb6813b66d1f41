/**
 * End-entity certificate profiles: which key usages and purposes a certificate carries, which
 * identities it may assert, and for how long. Profiles describe end entities only; CA
 * certificates come from `createIntermediate`, so no profile can mint a CA.
 */
import { CaError } from './errors';
import type { KeyUsageName } from './extensions';
import { SanKind, SubjectAltNames, isSpiffeId, parseIpAddress, tryParseIpAddress } from './general-names';
import { attributeValues } from './name-format';
import type { PublicKeyType } from './public-keys';

export type ProfileName = 'tls-server' | 'tls-client' | 'tls-server-client' | 'spiffe';

export interface CertificateProfile {
  /** Identifies the profile in errors and caches; must be unique among the profiles a CA uses. */
  readonly name: string;
  /** Key usages for every key type. */
  readonly keyUsage: readonly KeyUsageName[];
  /** Also set keyEncipherment for RSA subject keys (TLS 1.2 RSA key exchange). */
  readonly rsaKeyEncipherment?: boolean;
  /** Extended key usages (names such as serverAuth, or dotted OIDs). */
  readonly extendedKeyUsage: readonly string[];
  /** SAN kinds the certificate may carry. */
  readonly allowedSans: readonly SanKind[];
  /** At least one SAN is required: the identity must not rest on the subject CN alone. */
  readonly requireSan: boolean;
  /** A leading `*.` label is allowed in DNS SANs. */
  readonly allowWildcard: boolean;
  /** Exactly one URI SAN, which must be a SPIFFE ID (X509-SVID). */
  readonly spiffe?: boolean;
  /** A subject CN, when present, must repeat one of the DNS or IP SANs (CA/Browser Forum rule). */
  readonly commonNameInSans?: boolean;
  readonly defaultValidityDays: number;
  readonly maxValidityDays: number;
}

const CN_OID_DER = Buffer.from('0603550403', 'hex');
const TLS_SANS: readonly SanKind[] = ['dns', 'ip'];

/** The built-in profiles. */
export const PROFILES: Readonly<Record<ProfileName, CertificateProfile>> = {
  'tls-server': {
    name: 'tls-server',
    keyUsage: ['digitalSignature'],
    rsaKeyEncipherment: true,
    extendedKeyUsage: ['serverAuth'],
    allowedSans: TLS_SANS,
    requireSan: true,
    allowWildcard: true,
    commonNameInSans: true,
    defaultValidityDays: 90,
    maxValidityDays: 398,
  },
  'tls-client': {
    name: 'tls-client',
    keyUsage: ['digitalSignature'],
    extendedKeyUsage: ['clientAuth'],
    allowedSans: ['dns', 'ip', 'uri', 'email'],
    requireSan: true,
    allowWildcard: false,
    defaultValidityDays: 90,
    maxValidityDays: 398,
  },
  'tls-server-client': {
    name: 'tls-server-client',
    keyUsage: ['digitalSignature'],
    rsaKeyEncipherment: true,
    extendedKeyUsage: ['serverAuth', 'clientAuth'],
    allowedSans: TLS_SANS,
    requireSan: true,
    allowWildcard: false,
    commonNameInSans: true,
    defaultValidityDays: 90,
    maxValidityDays: 398,
  },
  // SPIFFE X509-SVID: one SPIFFE ID URI SAN, digitalSignature, serverAuth + clientAuth.
  spiffe: {
    name: 'spiffe',
    keyUsage: ['digitalSignature'],
    rsaKeyEncipherment: true,
    extendedKeyUsage: ['serverAuth', 'clientAuth'],
    allowedSans: ['uri', 'dns', 'ip'],
    requireSan: true,
    allowWildcard: false,
    spiffe: true,
    defaultValidityDays: 1,
    maxValidityDays: 398,
  },
};

/** The profile object for a name, or a checked custom profile. */
export function resolveProfile(profile: ProfileName | CertificateProfile): CertificateProfile {
  if (typeof profile === 'string') {
    const found = Object.prototype.hasOwnProperty.call(PROFILES, profile) ? PROFILES[profile] : undefined;
    if (!found) throw new CaError('INVALID_ARGUMENT', `unknown profile "${profile}" (built in: ${Object.keys(PROFILES).join(', ')})`);
    return found;
  }
  if (typeof profile !== 'object' || profile === null || typeof profile.name !== 'string') {
    throw new CaError('INVALID_ARGUMENT', 'profile must be a profile name or a CertificateProfile object');
  }
  // keyCertSign and cRLSign belong to CAs (RFC 5280 section 4.2.1.3): an end-entity profile with them would mint a CA in all but name.
  for (const usage of profile.keyUsage) {
    if (usage === 'keyCertSign' || usage === 'cRLSign') {
      throw new CaError('POLICY_VIOLATION', `profile "${profile.name}" is an end-entity profile and cannot grant ${usage}; use createIntermediate for CA certificates`);
    }
  }
  if (!(profile.maxValidityDays > 0) || !(profile.defaultValidityDays > 0) || profile.defaultValidityDays > profile.maxValidityDays) {
    throw new CaError('INVALID_ARGUMENT', `profile "${profile.name}" has inconsistent validity bounds`);
  }
  return profile;
}

/** Key usages for a subject key type under a profile. */
export function profileKeyUsage(profile: CertificateProfile, keyType: PublicKeyType): KeyUsageName[] {
  const usages = [...profile.keyUsage];
  if (profile.rsaKeyEncipherment && keyType === 'rsa' && !usages.includes('keyEncipherment')) usages.push('keyEncipherment');
  // keyEncipherment is meaningless for signature-only keys; refuse rather than write a misleading certificate.
  if (keyType !== 'rsa' && (usages.includes('keyEncipherment') || usages.includes('dataEncipherment'))) {
    throw new CaError('POLICY_VIOLATION', `profile "${profile.name}" sets an encipherment usage, which a ${keyType} key cannot have`);
  }
  return usages;
}

/**
 * Checks that the subject and SANs together make an identity the profile allows. SAN syntax
 * itself is checked when the SANs are encoded.
 */
export function checkIdentity(profile: CertificateProfile, subject: Buffer, sans: SubjectAltNames | undefined, subjectEmpty: boolean): void {
  const count = (sans?.dns?.length ?? 0) + (sans?.ip?.length ?? 0) + (sans?.uri?.length ?? 0) + (sans?.email?.length ?? 0);
  if (count === 0 && profile.requireSan) {
    throw new CaError(
      'POLICY_VIOLATION',
      `profile "${profile.name}" requires at least one subjectAltName (${profile.allowedSans.join('/')}); a certificate identified only by its subject CN is not issued`,
    );
  }
  if (count === 0 && subjectEmpty) throw new CaError('POLICY_VIOLATION', 'a certificate needs a subject or at least one subjectAltName');
  if (profile.spiffe) {
    const uris = sans?.uri ?? [];
    if (uris.length !== 1 || !isSpiffeId(uris[0])) {
      throw new CaError('POLICY_VIOLATION', `profile "${profile.name}" requires exactly one URI SAN, a SPIFFE ID (spiffe://trust-domain/path)`);
    }
  }
  // The byte search skips decoding the name when it has no CN at all (the common SAN-only case).
  if (profile.commonNameInSans && !subjectEmpty && subject.includes(CN_OID_DER)) {
    const dns = new Set((sans?.dns ?? []).map((d) => d.toLowerCase()));
    const ips = new Set((sans?.ip ?? []).map((ip) => parseIpAddress(ip).toString('hex')));
    for (const cn of attributeValues(subject, '2.5.4.3')) {
      const ip = tryParseIpAddress(cn)?.toString('hex');
      if (!dns.has(cn.toLowerCase()) && !(ip !== undefined && ips.has(ip))) {
        throw new CaError('POLICY_VIOLATION', `subject CN "${cn}" must also appear as a DNS or IP subjectAltName under profile "${profile.name}"`);
      }
    }
  }
}
