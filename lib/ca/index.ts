/**
 * A certificate authority on PKCS#11 keys: roots, intermediates, end-entity certificates from
 * CSRs or public keys, revocation and CRLs.
 */
export { CertificateAuthority } from './authority';
export type {
  AuthorityOptions,
  CreateRootOptions,
  IntermediateRequest,
  IssuedCertificate,
  IssuedCrl,
  LoadOptions,
} from './authority';
export type { IssueRequest, PublicKeyInput } from './issuance';
export { CaError } from './errors';
export type { CaErrorCode } from './errors';
export { verifyCsr } from './csr';
export type { VerifiedCsr } from './csr';
export { SubjectPublicKey } from './public-keys';
export type { PublicKeyType } from './public-keys';
export { PROFILES } from './profiles';
export type { CertificateProfile, ProfileName } from './profiles';
export type { SubjectAltNames } from './general-names';
export type { ExtraExtension, KeyUsageName } from './extensions';
export type { CertificatePolicy, DistributionOptions } from './extensions-access';
export { encodeName, parseDistinguishedName } from './names';
export type { DistinguishedName, NameAttribute, NameInput, RelativeDistinguishedName } from './names';
export { formatName, decodeName } from './name-format';
export { SIGNATURE_ALGORITHMS } from './algorithms';
export type { SignatureAlgorithmName } from './algorithms';
export { MemorySerialRegistry } from './serials';
export type { SerialRegistry } from './serials';
export type { RevocationEntry, RevocationReason, RevokeOptions } from './crl';
export type { ValidityRequest } from './validity';
export { toPem } from './pem';
