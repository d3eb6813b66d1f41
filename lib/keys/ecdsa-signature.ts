/**
 * ECDSA signature formats: PKCS#11 (CKM_ECDSA) returns r||s, each left-padded to the
 * field size; X.509, TLS and node:crypto's default use DER Ecdsa-Sig-Value
 * (SEQUENCE { INTEGER r, INTEGER s }, X9.62 / RFC 3279 section 2.2.3).
 */
import {
  DerError,
  TAG_SEQUENCE,
  derSequence,
  derUnsignedInteger,
  readChildren,
  readOnly,
  readUnsignedInteger,
} from '../asn1/der';

/** r||s (equal halves) to DER. */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) {
    throw new DerError(`ECDSA: raw signature length ${raw.length} is not a positive even number`);
  }
  const half = raw.length / 2;
  const r = raw.subarray(0, half);
  const s = raw.subarray(half);
  // A valid signature has 1 <= r, s < n, so zero means the module returned garbage.
  if (isZero(r) || isZero(s)) throw new DerError('ECDSA: raw signature has r or s equal to zero');
  return derSequence(derUnsignedInteger(r), derUnsignedInteger(s));
}

/** DER to r||s, each half left-padded to `size` bytes (32 for P-256, 48 for P-384, 66 for P-521). */
export function ecdsaDerToRaw(der: Buffer, size: number): Buffer {
  if (!Number.isSafeInteger(size) || size <= 0 || size > 1024) throw new DerError(`ECDSA: invalid field size ${size}`);
  const seq = readOnly(der, TAG_SEQUENCE, 'ECDSA signature SEQUENCE');
  const parts = readChildren(seq.value);
  if (parts.length !== 2) throw new DerError(`ECDSA: signature SEQUENCE has ${parts.length} elements, expected 2`);
  const out = Buffer.alloc(size * 2);
  parts.forEach((part, i) => {
    const name = i === 0 ? 'r' : 's';
    const magnitude = readUnsignedInteger(part, `ECDSA ${name}`);
    if (magnitude.length > size) throw new DerError(`ECDSA: ${name} is ${magnitude.length} bytes, longer than the field size ${size}`);
    if (isZero(magnitude)) throw new DerError(`ECDSA: ${name} is zero`);
    magnitude.copy(out, i * size + size - magnitude.length);
  });
  return out;
}

function isZero(b: Buffer): boolean {
  for (const byte of b) if (byte !== 0) return false;
  return true;
}
