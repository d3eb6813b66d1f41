import * as C from '../generated/constants';

/** Object classes by name (CKO_*). */
export const OBJECT_CLASSES = {
  data: C.CKO_DATA,
  certificate: C.CKO_CERTIFICATE,
  publicKey: C.CKO_PUBLIC_KEY,
  privateKey: C.CKO_PRIVATE_KEY,
  secretKey: C.CKO_SECRET_KEY,
  hwFeature: C.CKO_HW_FEATURE,
  domainParameters: C.CKO_DOMAIN_PARAMETERS,
  mechanism: C.CKO_MECHANISM,
  otpKey: C.CKO_OTP_KEY,
} as const;
export type ObjectClassName = keyof typeof OBJECT_CLASSES;

/** Key types by name (CKK_*). */
export const KEY_TYPES = {
  rsa: C.CKK_RSA,
  dsa: C.CKK_DSA,
  dh: C.CKK_DH,
  ec: C.CKK_EC,
  ecEdwards: C.CKK_EC_EDWARDS,
  ecMontgomery: C.CKK_EC_MONTGOMERY,
  genericSecret: C.CKK_GENERIC_SECRET,
  aes: C.CKK_AES,
  des3: C.CKK_DES3,
  sha256Hmac: C.CKK_SHA256_HMAC,
  sha384Hmac: C.CKK_SHA384_HMAC,
  sha512Hmac: C.CKK_SHA512_HMAC,
} as const;
export type KeyTypeName = keyof typeof KEY_TYPES;

/** Certificate types by name (CKC_*). */
export const CERTIFICATE_TYPES = {
  x509: C.CKC_X_509,
  x509AttrCert: C.CKC_X_509_ATTR_CERT,
  wtls: C.CKC_WTLS,
} as const;
export type CertificateTypeName = keyof typeof CERTIFICATE_TYPES;

/** Reverse lookup: the name for a number, or the number itself when it has none. */
export function nameOf<T extends Record<string, number>>(table: T, value: number): keyof T | number {
  for (const [name, number] of Object.entries(table)) if (number === value) return name as keyof T;
  return value;
}
