import type { Mechanism } from '../native/types';

/** The kinds of signing key the certificate authority and the pool understand. */
export type SignerKeyType = 'ec' | 'rsa' | 'ed25519';

/**
 * Something that signs with a private key held in a PKCS#11 token: a signing pool, or a
 * single key on a session. It speaks PKCS#11 (mechanism in, the module's raw signature out);
 * turning that into X.509 wire formats is the caller's job.
 */
export interface Pkcs11Signer {
  readonly keyType: SignerKeyType;
  /** DER SubjectPublicKeyInfo of the key's public half, read from the token. */
  readonly publicKeySpki: Buffer;
  /** False when the private key lacks CKA_SIGN: such a key must not be used to issue anything. */
  readonly canSign: boolean;
  /** Runs C_SignInit + C_Sign off the JS thread and resolves with the module's output. */
  sign(mechanism: Mechanism, data: Buffer): Promise<Buffer>;
}
