/**
 * A strict DER reader, used to slice exact byte ranges (TBS, names, SPKI) out of CSRs and
 * certificates. asn1-schema parses leniently (BER) and re-serializing can change bytes, but
 * signatures and name chaining need the original bytes, and DER means no indefinite or
 * non-minimal lengths.
 */

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

export class DerReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerReadError';
  }
}

/** Reads the TLV at `offset`, which must end at or before `limit`. */
export function readTlv(buf: Uint8Array, offset: number, limit: number = buf.length): Tlv {
  if (offset >= limit) throw new DerReadError(`expected a value at offset ${offset}, found the end of the data`);
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new DerReadError(`high-tag-number form at offset ${offset} is not used by X.509`);
  let at = offset + 1;
  if (at >= limit) throw new DerReadError(`truncated length at offset ${at}`);
  const first = buf[at++];
  let length = first;
  if (first === 0x80) throw new DerReadError(`indefinite length at offset ${at - 1} is not DER`);
  if (first > 0x80) {
    const count = first & 0x7f;
    if (count > 4) throw new DerReadError(`length field of ${count} bytes at offset ${at - 1} is too long`);
    if (at + count > limit) throw new DerReadError(`truncated length at offset ${at - 1}`);
    if (buf[at] === 0) throw new DerReadError(`non-minimal length at offset ${at - 1}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[at++];
    if (length < 0x80) throw new DerReadError(`non-minimal length at offset ${at - count - 1}`);
  }
  if (length > limit - at) throw new DerReadError(`value at offset ${offset} (${length} bytes) runs past its container`);
  return { tag, start: offset, contentStart: at, end: at + length };
}

/** The single top-level TLV of `buf`, with no trailing bytes. */
export function readWhole(buf: Uint8Array, tag: number, what: string): Tlv {
  const t = readTlv(buf, 0);
  expectTag(t, tag, what);
  if (t.end !== buf.length) throw new DerReadError(`${buf.length - t.end} byte(s) after the ${what}`);
  return t;
}

/** The children of a constructed TLV. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end; ) {
    const child = readTlv(buf, at, parent.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): asserts t is Tlv {
  if (!t) throw new DerReadError(`missing ${what}`);
  if (t.tag !== tag) {
    throw new DerReadError(`expected ${what} (tag 0x${tag.toString(16)}), found tag 0x${t.tag.toString(16)}`);
  }
}

/** The whole encoding (header included) of `t`, as a view. */
export function raw(buf: Buffer, t: Tlv): Buffer {
  return buf.subarray(t.start, t.end);
}

/** The content bytes of `t`, as a view. */
export function content(buf: Buffer, t: Tlv): Buffer {
  return buf.subarray(t.contentStart, t.end);
}

/** Dotted form of an OBJECT IDENTIFIER's content. */
export function decodeOid(bytes: Uint8Array): string {
  if (bytes.length === 0 || bytes[bytes.length - 1] & 0x80) throw new DerReadError('malformed OBJECT IDENTIFIER');
  const arcs: (number | bigint)[] = [];
  let value = 0;
  let big: bigint | undefined; // only for arcs beyond 2^53, which real OIDs (UUID arcs) can have
  let fresh = true;
  for (const b of bytes) {
    if (fresh && b === 0x80) throw new DerReadError('non-minimal OBJECT IDENTIFIER arc');
    if (big === undefined && value > 2 ** 45) big = BigInt(value);
    if (big !== undefined) big = (big << 7n) | BigInt(b & 0x7f);
    else value = value * 128 + (b & 0x7f);
    fresh = !(b & 0x80);
    if (fresh) {
      arcs.push(big ?? value);
      value = 0;
      big = undefined;
    }
  }
  const first = arcs[0];
  const head = first < 40 ? [0, first] : first < 80 ? [1, Number(first) - 40] : [2, typeof first === 'bigint' ? first - 80n : first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}
