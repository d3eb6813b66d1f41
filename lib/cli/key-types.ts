/** The key types keygen offers, as generateKeyPair / generateKey specifications. */
import type { KeyPairSpec, SecretKeySpec } from '../keys/generate';

export type KeySpec = { pair: KeyPairSpec } | { secret: SecretKeySpec };

export const KEY_TYPES: Readonly<Record<string, KeySpec>> = {
  'ec-p256': { pair: { algorithm: 'ec', curve: 'P-256' } },
  'ec-p384': { pair: { algorithm: 'ec', curve: 'P-384' } },
  'ec-p521': { pair: { algorithm: 'ec', curve: 'P-521' } },
  'rsa-2048': { pair: { algorithm: 'rsa', modulusBits: 2048 } },
  'rsa-3072': { pair: { algorithm: 'rsa', modulusBits: 3072 } },
  'rsa-4096': { pair: { algorithm: 'rsa', modulusBits: 4096 } },
  ed25519: { pair: { algorithm: 'ed25519' } },
  'aes-256': { secret: { algorithm: 'aes', bits: 256 } },
};
