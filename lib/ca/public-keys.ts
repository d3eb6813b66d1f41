/**
 * Subject public keys: validated once (node:crypto parses the SPKI and checks EC points are
 * on the curve), normalized to canonical DER, and carrying their key identifier, so that
 * issuing many certificates for one key does not repeat the work.
 */
import { KeyObject, createHash, createPublicKey } from 'crypto';
import { CaError } from './errors';
import { children, content, expectTag, readWhole } from './der-reader';
import { TAG } from './der-writer';
import { toDer } from './pem';

export type PublicKeyType = 'ec' | 'rsa' | 'ed25519';

/** Key sizes this CA certifies. Smaller RSA keys and other curves are refused. */
export const KEY_LIMITS = { minRsaBits: 2048, maxRsaBits: 16384 } as const;

const CURVE_NAMES: Readonly<Record<string, { name: 'P-256' | 'P-384' | 'P-521'; size: number }>> = {
  prime256v1: { name: 'P-256', size: 32 },
  secp384r1: { name: 'P-384', size: 48 },
  secp521r1: { name: 'P-521', size: 66 },
};

/** A validated public key, ready to be placed in certificates. */
export class SubjectPublicKey {
  /** Canonical DER SubjectPublicKeyInfo. */
  readonly spki: Buffer;
  readonly keyType: PublicKeyType;
  /** For EC keys: the curve and its field size in bytes. */
  readonly curve?: { name: 'P-256' | 'P-384' | 'P-521'; size: number };
  /** For RSA keys: the modulus size in bits. */
  readonly modulusBits?: number;
  /** RFC 5280 section 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bytes. */
  readonly keyIdentifier: Buffer;
  readonly keyObject: KeyObject;

  private constructor(spki: Buffer, keyObject: KeyObject) {
    this.keyObject = keyObject;
    this.spki = spki;
    const type = keyObject.asymmetricKeyType;
    const details = keyObject.asymmetricKeyDetails ?? {};
    if (type === 'ec') {
      const curve = CURVE_NAMES[details.namedCurve ?? ''];
      if (!curve) throw new CaError('UNSUPPORTED_KEY', `EC curve ${details.namedCurve ?? '(explicit parameters)'} is not supported; use P-256, P-384 or P-521`);
      this.keyType = 'ec';
      this.curve = curve;
    } else if (type === 'rsa') {
      const bits = details.modulusLength ?? 0;
      if (bits < KEY_LIMITS.minRsaBits || bits > KEY_LIMITS.maxRsaBits) {
        throw new CaError('UNSUPPORTED_KEY', `RSA keys must be ${KEY_LIMITS.minRsaBits}-${KEY_LIMITS.maxRsaBits} bits, got ${bits}`);
      }
      const e = details.publicExponent ?? 0n;
      if (e < 3n || e % 2n === 0n) throw new CaError('UNSUPPORTED_KEY', `RSA public exponent ${e} is not an odd number >= 3`);
      this.keyType = 'rsa';
      this.modulusBits = bits;
    } else if (type === 'ed25519') {
      this.keyType = 'ed25519';
    } else {
      throw new CaError('UNSUPPORTED_KEY', `public key type ${type ?? 'unknown'} is not supported; use EC (P-256/384/521), RSA or Ed25519`);
    }
    this.keyIdentifier = createHash('sha1').update(subjectPublicKeyBits(spki)).digest();
  }

  /**
   * Parses and validates a public key: DER or PEM SPKI, or a node:crypto KeyObject.
   * Throws CaError('UNSUPPORTED_KEY') for anything malformed or outside the supported set.
   */
  static from(input: Buffer | Uint8Array | string | KeyObject | SubjectPublicKey): SubjectPublicKey {
    if (input instanceof SubjectPublicKey) return input;
    let keyObject: KeyObject;
    try {
      if (input instanceof KeyObject) {
        keyObject = input.type === 'public' ? input : createPublicKey(input);
      } else {
        const der = toDer(input, ['PUBLIC KEY'], 'UNSUPPORTED_KEY', 'public key');
        keyObject = createPublicKey({ key: der, format: 'der', type: 'spki' });
      }
    } catch (e) {
      if (e instanceof CaError) throw e;
      throw new CaError('UNSUPPORTED_KEY', `the public key is not a valid SubjectPublicKeyInfo: ${(e as Error).message}`, { cause: e });
    }
    // Re-exported DER is canonical (uncompressed points, NULL RSA parameters), so byte comparisons mean key equality.
    const spki = keyObject.export({ type: 'spki', format: 'der' });
    return new SubjectPublicKey(spki, keyObject);
  }

  /** True when both are the same key. */
  equals(other: SubjectPublicKey): boolean {
    return this.spki.equals(other.spki);
  }

  /** Length in bytes of a signature by this key in the form PKCS#11 returns it (r||s, modulus, or 64). */
  get rawSignatureLength(): number {
    if (this.curve) return 2 * this.curve.size;
    if (this.modulusBits) return Math.ceil(this.modulusBits / 8);
    return 64;
  }
}

/** The bytes of the subjectPublicKey BIT STRING (without the unused-bits octet). */
export function subjectPublicKeyBits(spki: Buffer): Buffer {
  const outer = readWhole(spki, TAG.SEQUENCE, 'SubjectPublicKeyInfo');
  const [, bits] = children(spki, outer);
  expectTag(bits, TAG.BIT_STRING, 'subjectPublicKey');
  return content(spki, bits).subarray(1);
}
