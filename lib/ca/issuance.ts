/**
 * Turning an issuance request into TBSCertificate fields: resolving the subject key (CSR or
 * SPKI), the subject name, SANs, validity and extensions, with every policy check on the way.
 * Nothing here touches the HSM.
 */
import type { KeyObject } from 'crypto';
import { CaError } from './errors';
import { VerifiedCsr, verifyCsr } from './csr';
import {
  ExtraExtension,
  basicConstraintsExtension,
  encodeExtraExtensions,
  extendedKeyUsageExtension,
  keyUsageExtension,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
} from './extensions';
import { SubjectAltNames, encodeSubjectAltNames } from './general-names';
import { EMPTY_NAME, NameInput, encodeName } from './names';
import { OID } from './oids';
import { CertificateProfile, ProfileName, checkIdentity, profileKeyUsage, resolveProfile } from './profiles';
import { SubjectPublicKey } from './public-keys';
import { ValidityPolicy, ValidityRequest, computeValidity } from './validity';

/** A public key in any form the CA accepts. */
export type PublicKeyInput = Buffer | Uint8Array | string | KeyObject | SubjectPublicKey;

/** What to certify for an end entity. Give exactly one of `csr` and `publicKey`. */
export interface IssueRequest extends ValidityRequest {
  /** Built-in profile name or a custom end-entity profile. */
  profile: ProfileName | CertificateProfile;
  /** PKCS#10 request (PEM or DER, or the result of `verifyCsr`); its signature is verified first. */
  csr?: Buffer | Uint8Array | string | VerifiedCsr;
  /** The subject's public key (DER/PEM SPKI, KeyObject, or a SubjectPublicKey to skip re-validation). */
  publicKey?: PublicKeyInput;
  /** Subject name; defaults to the CSR's subject, else empty (identity in the SAN only). */
  subject?: NameInput;
  /** Subject alternative names. The CA does not copy SANs from the CSR: callers decide what is asserted. */
  sans?: SubjectAltNames;
  /** Additional extensions, as DER. */
  extensions?: readonly ExtraExtension[];
}

/** Per-profile bytes for one subject key type, encoded once. */
export interface ProfileBytes {
  profile: CertificateProfile;
  leadingExtensions: Buffer;
  oids: ReadonlySet<string>;
}

/** Encodes a profile's fixed extensions (basicConstraints CA:FALSE, keyUsage, extKeyUsage) for a key type. */
export function encodeProfile(profile: CertificateProfile, keyType: SubjectPublicKey['keyType']): ProfileBytes {
  const leadingExtensions = Buffer.concat([
    basicConstraintsExtension(false),
    keyUsageExtension(profileKeyUsage(profile, keyType)),
    extendedKeyUsageExtension(profile.extendedKeyUsage),
  ]);
  return { profile, leadingExtensions, oids: new Set([OID.basicConstraints, OID.keyUsage, OID.extKeyUsage]) };
}

/** Caches ProfileBytes per profile object and key type. */
export class ProfileCache {
  private readonly cache = new Map<CertificateProfile, Map<string, ProfileBytes>>();

  get(profile: ProfileName | CertificateProfile, keyType: SubjectPublicKey['keyType']): ProfileBytes {
    const resolved = resolveProfile(profile);
    let byKey = this.cache.get(resolved);
    if (!byKey) {
      // Custom profile objects are cached by identity; bound the map so a caller minting new objects cannot grow it forever.
      if (this.cache.size > 64) this.cache.clear();
      byKey = new Map();
      this.cache.set(resolved, byKey);
    }
    let bytes = byKey.get(keyType);
    if (!bytes) {
      bytes = encodeProfile(resolved, keyType);
      byKey.set(keyType, bytes);
    }
    return bytes;
  }
}

/** The subject's key and requested name, from a CSR (verified) or a bare public key. */
export function resolveSubjectKey(req: { csr?: IssueRequest['csr']; publicKey?: PublicKeyInput }): { key: SubjectPublicKey; csrSubject?: Buffer } {
  if ((req.csr === undefined) === (req.publicKey === undefined)) {
    throw new CaError('INVALID_ARGUMENT', 'give exactly one of csr and publicKey');
  }
  if (req.publicKey !== undefined) return { key: SubjectPublicKey.from(req.publicKey) };
  const csr = isVerifiedCsr(req.csr) ? req.csr : verifyCsr(req.csr as Buffer | string);
  return { key: csr.publicKey, csrSubject: csr.subject };
}

function isVerifiedCsr(x: unknown): x is VerifiedCsr {
  return typeof x === 'object' && x !== null && !(x instanceof Uint8Array) && (x as VerifiedCsr).publicKey instanceof SubjectPublicKey;
}

export interface EndEntityParts {
  profile: ProfileBytes;
  key: SubjectPublicKey;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  subjectKeyIdentifier: Buffer;
  subjectAltName?: Buffer;
  extra: Buffer[];
}

/** Everything about an end-entity certificate except serial and issuer-side bytes. */
export function prepareEndEntity(
  req: IssueRequest,
  profiles: ProfileCache,
  validity: Omit<ValidityPolicy, 'defaultDays' | 'maxDays'>,
): EndEntityParts {
  if (typeof req !== 'object' || req === null) throw new CaError('INVALID_ARGUMENT', 'issue() needs a request object');
  const { key, csrSubject } = resolveSubjectKey(req);
  const profileBytes = profiles.get(req.profile, key.keyType);
  const profile = profileBytes.profile;
  const subject = req.subject !== undefined ? encodeName(req.subject) : csrSubject ?? EMPTY_NAME;
  const subjectEmpty = subject.equals(EMPTY_NAME);
  checkIdentity(profile, subject, req.sans, subjectEmpty);
  const generalNames = encodeSubjectAltNames(req.sans, { allowed: profile.allowedSans, allowWildcard: profile.allowWildcard });
  const { notBefore, notAfter } = computeValidity(req, { ...validity, defaultDays: profile.defaultValidityDays, maxDays: profile.maxValidityDays });
  return {
    profile: profileBytes,
    key,
    subject,
    notBefore,
    notAfter,
    subjectKeyIdentifier: subjectKeyIdentifierExtension(key.keyIdentifier),
    // RFC 5280 section 4.2.1.6: with an empty subject the SAN must be critical.
    subjectAltName: generalNames && subjectAltNameExtension(generalNames, subjectEmpty),
    extra: encodeExtraExtensions(req.extensions, profileBytes.oids),
  };
}
