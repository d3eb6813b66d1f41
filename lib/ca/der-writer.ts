/**
 * A small DER (X.690) writer for the per-certificate hot path. Each constructed value is
 * written with one allocation (lengths are known from the children), and OIDs are encoded
 * once and cached, so assembling a TBSCertificate costs a few microseconds.
 */

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Bytes taken by a DER length field for `length`. */
export function lengthOfLength(length: number): number {
  if (length < 0x80) return 1;
  if (length < 0x100) return 2;
  if (length < 0x10000) return 3;
  if (length < 0x1000000) return 4;
  return 5;
}

/** Writes tag + length at `offset`; returns the offset just past the header. */
export function writeHeader(out: Buffer, offset: number, tag: number, length: number): number {
  out[offset++] = tag;
  if (length < 0x80) {
    out[offset++] = length;
    return offset;
  }
  const n = lengthOfLength(length) - 1;
  out[offset++] = 0x80 | n;
  for (let i = n - 1; i >= 0; i--) out[offset++] = (length >>> (8 * i)) & 0xff;
  return offset;
}

/** A primitive or constructed TLV around `content`. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + lengthOfLength(content.length) + content.length);
  const at = writeHeader(out, 0, tag, content.length);
  out.set(content, at);
  return out;
}

/** A constructed TLV whose content is the concatenation of `parts` (one allocation). */
export function constructed(tag: number, parts: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafe(1 + lengthOfLength(length) + length);
  let at = writeHeader(out, 0, tag, length);
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function sequence(parts: readonly Uint8Array[]): Buffer {
  return constructed(TAG.SEQUENCE, parts);
}

/** DER SET OF: the elements sorted by their encodings (X.690 section 11.6). */
export function setOf(parts: readonly Buffer[]): Buffer {
  return constructed(TAG.SET, parts.length < 2 ? parts : [...parts].sort(Buffer.compare));
}

/** INTEGER from an unsigned big-endian magnitude: leading zeros dropped, 0x00 added before a set high bit. */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const length = magnitude.length - i;
  if (length <= 0) return Buffer.from([TAG.INTEGER, 1, 0]);
  const pad = magnitude[i] & 0x80 ? 1 : 0;
  const out = Buffer.allocUnsafe(1 + lengthOfLength(length + pad) + length + pad);
  let at = writeHeader(out, 0, TAG.INTEGER, length + pad);
  if (pad) out[at++] = 0;
  out.set(magnitude.subarray(i), at);
  return out;
}

/** INTEGER from a non-negative bigint or safe integer. */
export function integer(value: number | bigint): Buffer {
  let v = BigInt(value);
  if (v < 0n) throw new RangeError('DER: negative INTEGERs are not written by this CA');
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  } while (v > 0n);
  return unsignedInteger(Uint8Array.from(bytes));
}

export function boolean(value: boolean): Buffer {
  return Buffer.from([TAG.BOOLEAN, 1, value ? 0xff : 0x00]);
}

export const NULL_DER: Buffer = Buffer.from([TAG.NULL, 0]);

export function octetString(content: Uint8Array): Buffer {
  return tlv(TAG.OCTET_STRING, content);
}

/** BIT STRING of whole bytes (no unused bits). */
export function bitString(content: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(2 + lengthOfLength(content.length + 1) + content.length);
  let at = writeHeader(out, 0, TAG.BIT_STRING, content.length + 1);
  out[at++] = 0;
  out.set(content, at);
  return out;
}

/**
 * BIT STRING for a NamedBitList (key usage): bit 0 is the most significant bit of the first
 * byte, and DER drops trailing zero bits (X.690 section 11.2.2).
 */
export function namedBitString(bits: readonly number[]): Buffer {
  const highest = bits.length === 0 ? -1 : Math.max(...bits);
  if (highest < 0) return Buffer.from([TAG.BIT_STRING, 1, 0]);
  const bytes = Buffer.alloc((highest >> 3) + 1);
  for (const b of bits) bytes[b >> 3] |= 0x80 >> (b & 7);
  const unused = 7 - (highest & 7);
  return tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unused]), bytes]));
}

const oidCache = new Map<string, Buffer>();

/** OBJECT IDENTIFIER from dotted form; cached because the same few OIDs recur in every certificate. */
export function oid(dotted: string): Buffer {
  const hit = oidCache.get(dotted);
  if (hit) return hit;
  const arcs = dotted.split('.').map((s) => {
    if (!/^(0|[1-9][0-9]*)$/.test(s)) throw new RangeError(`DER: invalid OID ${dotted}`);
    return BigInt(s);
  });
  if (arcs.length < 2 || arcs[0] > 2n || (arcs[0] < 2n && arcs[1] >= 40n)) throw new RangeError(`DER: invalid OID ${dotted}`);
  const bytes: number[] = [];
  for (const v of [arcs[0] * 40n + arcs[1], ...arcs.slice(2)]) {
    const chunk = [Number(v & 0x7fn)];
    for (let n = v >> 7n; n > 0n; n >>= 7n) chunk.unshift(0x80 | Number(n & 0x7fn));
    bytes.push(...chunk);
  }
  const der = tlv(TAG.OID, Uint8Array.from(bytes));
  if (oidCache.size < 1024) oidCache.set(dotted, der);
  return der;
}

/** A string type written as its bytes (UTF-8 for UTF8String, ASCII for the others). */
export function stringValue(tag: number, value: string): Buffer {
  const length = Buffer.byteLength(value, tag === TAG.UTF8_STRING ? 'utf8' : 'latin1');
  const out = Buffer.allocUnsafe(1 + lengthOfLength(length) + length);
  const at = writeHeader(out, 0, tag, length);
  out.write(value, at, tag === TAG.UTF8_STRING ? 'utf8' : 'latin1');
  return out;
}

/** [n] EXPLICIT: a constructed context tag around already-encoded content. */
export function explicit(n: number, parts: readonly Uint8Array[]): Buffer {
  return constructed(0xa0 | n, parts);
}

/** [n] IMPLICIT primitive (e.g. GeneralName's dNSName is [2] IMPLICIT IA5String). */
export function implicitPrimitive(n: number, content: Uint8Array): Buffer {
  return tlv(0x80 | n, content);
}

/** AlgorithmIdentifier { algorithm, parameters OPTIONAL }. */
export function algorithmIdentifier(algorithm: string, parameters?: Buffer): Buffer {
  return sequence(parameters ? [oid(algorithm), parameters] : [oid(algorithm)]);
}
