/**
 * Minimal DER (X.690) reading and writing: just what SubjectPublicKeyInfo, ECDSA
 * signatures and DigestInfo need. Readers are strict (definite, minimal lengths;
 * bounds-checked) and fail only with DerError, never with a RangeError from Buffer.
 */

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

export const TAG_INTEGER = 0x02;
export const TAG_BIT_STRING = 0x03;
export const TAG_OCTET_STRING = 0x04;
export const TAG_NULL = 0x05;
export const TAG_OID = 0x06;
export const TAG_PRINTABLE_STRING = 0x13;
export const TAG_SEQUENCE = 0x30;

/** One decoded TLV; `value` is a view into the input, not a copy. */
export interface Tlv {
  tag: number;
  /** Offset of the tag byte in the input buffer. */
  start: number;
  /** Offset just past the value. */
  end: number;
  value: Buffer;
}

// Four length bytes (4 GiB) is far beyond anything these structures hold; refusing
// longer forms keeps the arithmetic exact.
const MAX_LENGTH_BYTES = 4;

/** Reads one TLV starting at `offset`, which must end at or before `limit`. */
export function readTlv(buf: Buffer, offset: number, limit: number = buf.length): Tlv {
  if (limit > buf.length) limit = buf.length;
  if (offset >= limit) throw new DerError(`DER: expected a tag at offset ${offset}, found end of data`);
  const tag = buf[offset];
  // High-tag-number form (low five bits all set) never occurs in the structures we read.
  if ((tag & 0x1f) === 0x1f) throw new DerError(`DER: unsupported high tag number form at offset ${offset}`);
  let pos = offset + 1;
  if (pos >= limit) throw new DerError(`DER: truncated length at offset ${pos}`);
  const first = buf[pos++];
  let length: number;
  if (first < 0x80) {
    length = first;
  } else if (first === 0x80) {
    throw new DerError(`DER: indefinite length at offset ${pos - 1} is not allowed`);
  } else {
    const count = first & 0x7f;
    if (count > MAX_LENGTH_BYTES) throw new DerError(`DER: length of ${count} bytes at offset ${pos - 1} is too long`);
    if (pos + count > limit) throw new DerError(`DER: truncated length at offset ${pos - 1}`);
    if (buf[pos] === 0) throw new DerError(`DER: non-minimal length encoding at offset ${pos - 1}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[pos++];
    if (length < 0x80) throw new DerError(`DER: non-minimal length encoding at offset ${pos - count - 1}`);
  }
  if (length > limit - pos) {
    throw new DerError(`DER: value of ${length} bytes at offset ${pos} runs past the end of its container`);
  }
  return { tag, start: offset, end: pos + length, value: buf.subarray(pos, pos + length) };
}

/** Reads a buffer that must hold exactly one TLV with the given tag (no trailing bytes). */
export function readOnly(buf: Buffer, tag: number, what: string): Tlv {
  const tlv = readTlv(buf, 0);
  expectTag(tlv, tag, what);
  if (tlv.end !== buf.length) throw new DerError(`DER: ${buf.length - tlv.end} trailing byte(s) after ${what}`);
  return tlv;
}

/** Splits the content of a constructed value into its child TLVs. */
export function readChildren(content: Buffer): Tlv[] {
  const out: Tlv[] = [];
  let pos = 0;
  // Each iteration consumes at least the two header bytes, so this terminates.
  while (pos < content.length) {
    const child = readTlv(content, pos);
    out.push(child);
    pos = child.end;
  }
  return out;
}

export function expectTag(tlv: Tlv, tag: number, what: string): void {
  if (tlv.tag !== tag) {
    throw new DerError(`DER: expected ${what} (tag 0x${hex(tag)}), found tag 0x${hex(tlv.tag)}`);
  }
}

/** A DER INTEGER's content as an unsigned magnitude; negative or non-minimal encodings are rejected. */
export function readUnsignedInteger(tlv: Tlv, what: string): Buffer {
  expectTag(tlv, TAG_INTEGER, what);
  const v = tlv.value;
  if (v.length === 0) throw new DerError(`DER: ${what} has an empty INTEGER`);
  if (v[0] & 0x80) throw new DerError(`DER: ${what} is negative`);
  if (v.length > 1 && v[0] === 0 && !(v[1] & 0x80)) throw new DerError(`DER: ${what} has a non-minimal INTEGER encoding`);
  return v[0] === 0 && v.length > 1 ? v.subarray(1) : v;
}

/** A BIT STRING's bytes; only whole-byte strings (0 unused bits) are accepted. */
export function readBitStringBytes(tlv: Tlv, what: string): Buffer {
  expectTag(tlv, TAG_BIT_STRING, what);
  if (tlv.value.length === 0) throw new DerError(`DER: ${what} has an empty BIT STRING`);
  if (tlv.value[0] !== 0) throw new DerError(`DER: ${what} has ${tlv.value[0]} unused bits, expected 0`);
  return tlv.value.subarray(1);
}

/** The dotted form of an OBJECT IDENTIFIER's content, with minimal-encoding checks. */
export function decodeOid(content: Buffer): string {
  if (content.length === 0) throw new DerError('DER: empty OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  let fresh = true;
  for (const byte of content) {
    if (fresh && byte === 0x80) throw new DerError('DER: non-minimal OBJECT IDENTIFIER arc');
    fresh = false;
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new DerError('DER: OBJECT IDENTIFIER arc too large');
    if (!(byte & 0x80)) {
      arcs.push(value);
      value = 0;
      fresh = true;
    }
  }
  if (!fresh) throw new DerError('DER: truncated OBJECT IDENTIFIER');
  const first = arcs[0];
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

// ---- writing ----

export function encodeLength(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw new DerError(`DER: invalid length ${length}`);
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function derTlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

export function derSequence(...items: Buffer[]): Buffer {
  return derTlv(TAG_SEQUENCE, Buffer.concat(items));
}

/** INTEGER from an unsigned big-endian magnitude (leading zeros allowed, e.g. from PKCS#11). */
export function derUnsignedInteger(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const trimmed = magnitude.length === 0 ? Buffer.from([0]) : magnitude.subarray(i);
  // A set high bit would read as negative, so a 0x00 goes in front.
  const content = trimmed[0] & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
  return derTlv(TAG_INTEGER, content);
}

export function derOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((s) => {
    if (!/^(0|[1-9][0-9]*)$/.test(s)) throw new DerError(`DER: invalid OID ${dotted}`);
    return Number(s);
  });
  if (arcs.length < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40)) throw new DerError(`DER: invalid OID ${dotted}`);
  const bytes: number[] = [];
  const values = [arcs[0] * 40 + arcs[1], ...arcs.slice(2)];
  for (const v of values) {
    if (!Number.isSafeInteger(v)) throw new DerError(`DER: OID arc too large in ${dotted}`);
    const chunk = [v % 128];
    for (let n = Math.floor(v / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift(0x80 | n % 128);
    bytes.push(...chunk);
  }
  return derTlv(TAG_OID, Buffer.from(bytes));
}

export function derBitString(bytes: Buffer, unusedBits = 0): Buffer {
  return derTlv(TAG_BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

export function derOctetString(bytes: Buffer): Buffer {
  return derTlv(TAG_OCTET_STRING, bytes);
}

export function derNull(): Buffer {
  return Buffer.from([TAG_NULL, 0]);
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}
