import * as C from '../generated/constants';
import type { Bytes, Mechanism } from '../native/types';

/** Hash names used by the mechanism builders. */
export type HashName = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

const HASH: Record<HashName, { mechanism: number; mgf: number; size: number }> = {
  sha1: { mechanism: C.CKM_SHA_1, mgf: C.CKG_MGF1_SHA1, size: 20 },
  sha224: { mechanism: C.CKM_SHA224, mgf: C.CKG_MGF1_SHA224, size: 28 },
  sha256: { mechanism: C.CKM_SHA256, mgf: C.CKG_MGF1_SHA256, size: 32 },
  sha384: { mechanism: C.CKM_SHA384, mgf: C.CKG_MGF1_SHA384, size: 48 },
  sha512: { mechanism: C.CKM_SHA512, mgf: C.CKG_MGF1_SHA512, size: 64 },
};

const ECDSA_WITH: Record<HashName, number> = {
  sha1: C.CKM_ECDSA_SHA1,
  sha224: C.CKM_ECDSA_SHA224,
  sha256: C.CKM_ECDSA_SHA256,
  sha384: C.CKM_ECDSA_SHA384,
  sha512: C.CKM_ECDSA_SHA512,
};

const RSA_PKCS_WITH: Record<HashName, number> = {
  sha1: C.CKM_SHA1_RSA_PKCS,
  sha224: C.CKM_SHA224_RSA_PKCS,
  sha256: C.CKM_SHA256_RSA_PKCS,
  sha384: C.CKM_SHA384_RSA_PKCS,
  sha512: C.CKM_SHA512_RSA_PKCS,
};

const RSA_PSS_WITH: Record<HashName, number> = {
  sha1: C.CKM_SHA1_RSA_PKCS_PSS,
  sha224: C.CKM_SHA224_RSA_PKCS_PSS,
  sha256: C.CKM_SHA256_RSA_PKCS_PSS,
  sha384: C.CKM_SHA384_RSA_PKCS_PSS,
  sha512: C.CKM_SHA512_RSA_PKCS_PSS,
};

/** Typed builders for the mechanisms the binding has parameters for. */
export const Mechanisms = {
  /** ECDSA over a digest the caller computed. */
  ecdsa: (): Mechanism => C.CKM_ECDSA,
  /** ECDSA with the hash computed by the token. */
  ecdsaWith: (hash: HashName): Mechanism => ECDSA_WITH[hash],
  /** Raw PKCS#1 v1.5 (sign a DigestInfo; see digestInfo()). */
  rsaPkcs: (): Mechanism => C.CKM_RSA_PKCS,
  rsaPkcsWith: (hash: HashName): Mechanism => RSA_PKCS_WITH[hash],
  /** RSASSA-PSS over a digest; salt length defaults to the hash length. */
  rsaPss: (hash: HashName, saltLength = HASH[hash].size): Mechanism => ({
    mechanism: C.CKM_RSA_PKCS_PSS,
    parameter: { hashAlg: HASH[hash].mechanism, mgf: HASH[hash].mgf, saltLen: saltLength },
  }),
  rsaPssWith: (hash: HashName, saltLength = HASH[hash].size): Mechanism => ({
    mechanism: RSA_PSS_WITH[hash],
    parameter: { hashAlg: HASH[hash].mechanism, mgf: HASH[hash].mgf, saltLen: saltLength },
  }),
  rsaOaep: (hash: HashName, label?: Bytes): Mechanism => ({
    mechanism: C.CKM_RSA_PKCS_OAEP,
    parameter: { hashAlg: HASH[hash].mechanism, mgf: HASH[hash].mgf, source: C.CKZ_DATA_SPECIFIED, sourceData: label },
  }),
  /** Pure EdDSA (Ed25519). */
  eddsa: (): Mechanism => C.CKM_EDDSA,
  aesGcm: (iv: Bytes, aad?: Bytes, tagBits = 128): Mechanism => ({
    mechanism: C.CKM_AES_GCM,
    parameter: { iv, aad, tagBits },
  }),
  aesCbcPad: (iv: Bytes): Mechanism => ({ mechanism: C.CKM_AES_CBC_PAD, parameter: iv }),
  aesKeyWrapPad: (): Mechanism => C.CKM_AES_KEY_WRAP_PAD,
  ecdh1Derive: (publicData: Bytes, kdf: number = C.CKD_NULL, sharedData?: Bytes): Mechanism => ({
    mechanism: C.CKM_ECDH1_DERIVE,
    parameter: { kdf, publicData, sharedData },
  }),
  digest: (hash: HashName): Mechanism => HASH[hash].mechanism,
};

export function hashLength(hash: HashName): number {
  return HASH[hash].size;
}
