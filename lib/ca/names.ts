/**
 * Distinguished names: RFC 4514 strings (`CN=api.example.com, O=Example, C=GB`) and a
 * structured form, encoded to DER Name (RFC 5280 section 4.1.2.4).
 *
 * Order: an RFC 4514 string lists the most specific RDN first (CN before C), while the DER
 * RDNSequence and the structured form here list the most significant first (C before CN).
 * `encodeName('CN=x, C=GB')` and `encodeName([{ type: 'C', value: 'GB' }, { type: 'CN', value: 'x' }])`
 * produce the same bytes.
 */
import { CaError } from './errors';
import { readTlv } from './der-reader';
import { oid, sequence, setOf, stringValue } from './der-writer';
import { attributeSpec, checkAttributeValue } from './name-attributes';

/** One attribute. `value` is text, or (RFC 4514 `#hex` form, OID types only) a complete DER value. */
export interface NameAttribute {
  /** Short name (`CN`, `O`, `C`, `DC`, ...) or dotted OID. */
  type: string;
  value: string | Buffer;
}

/** One RDN: a single attribute, or several for a multi-valued RDN (`OU=Sales+CN=J. Smith`). */
export type RelativeDistinguishedName = NameAttribute | readonly NameAttribute[];

/** A name as RDNs in ASN.1 order: the most significant first (`C`, then `O`, ..., then `CN`). */
export type DistinguishedName = readonly RelativeDistinguishedName[];

/** A name as an RFC 4514 string or in structured form. */
export type NameInput = string | DistinguishedName;

/** Bounds that keep a hostile name from costing memory or tripping relying parties. */
export const NAME_LIMITS = { maxTextLength: 4096, maxRdns: 32, maxAttributesPerRdn: 8, maxDerBytes: 2048 } as const;

/** DER of the empty Name (an empty RDNSequence), used when the identity lives only in the SAN. */
export const EMPTY_NAME: Buffer = Buffer.from([0x30, 0x00]);

const SPECIAL_ESCAPES = '"+,;<>\\ #=';
const MUST_ESCAPE = '";<>';
const isHex = (c: string | undefined): boolean => c !== undefined && /^[0-9A-Fa-f]$/.test(c);
const utf8 = new TextDecoder('utf-8', { fatal: true });

function nameError(message: string): CaError {
  return new CaError('INVALID_NAME', message);
}

/**
 * Parses an RFC 4514 string into RDNs in ASN.1 order (most significant first).
 * Handles `\,`-style and `\c4\8d`-style (UTF-8 hex) escapes, multi-valued RDNs with `+`, and
 * `OID=#hex` values. Spaces after separators and around `=` are tolerated, as most tools write them.
 */
export function parseDistinguishedName(text: string): NameAttribute[][] {
  if (typeof text !== 'string') throw nameError('a distinguished name must be a string or a structured name');
  if (text.length > NAME_LIMITS.maxTextLength) throw nameError(`the name is longer than ${NAME_LIMITS.maxTextLength} characters`);
  const rdns: NameAttribute[][] = [];
  let i = skipSpaces(text, 0);
  if (i === text.length) return rdns;
  let rdn: NameAttribute[] = [];
  for (;;) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw nameError(`expected "type=value" at position ${i} of "${text}"`);
    const type = text.slice(i, eq).trim();
    if (!/^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)$/.test(type)) {
      throw nameError(`"${type}" at position ${i} is not an attribute type (a name like CN or a dotted OID)`);
    }
    i = skipSpaces(text, eq + 1);
    const parsed = text[i] === '#' ? readHexValue(text, i + 1) : readStringValue(text, i);
    rdn.push({ type, value: parsed.value });
    i = parsed.end;
    if (i === text.length) break;
    const sep = text[i];
    i = skipSpaces(text, i + 1);
    if (sep === ',') {
      rdns.push(rdn);
      rdn = [];
    } else if (sep !== '+') {
      throw nameError(`unexpected "${sep}" at position ${i - 1} (separate RDNs with "," and escape special characters with "\\")`);
    }
    if (i === text.length) throw nameError(`the name ends with a dangling "${sep}"`);
  }
  rdns.push(rdn);
  return rdns.reverse();
}

function skipSpaces(text: string, i: number): number {
  while (i < text.length && text[i] === ' ') i++;
  return i;
}

function readStringValue(text: string, i: number): { value: string; end: number } {
  let out = '';
  let significant = 0; // length of `out` up to the last character that is not an unescaped space
  let pending: number[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    try {
      out += utf8.decode(Uint8Array.from(pending));
    } catch {
      throw nameError(`the hex escapes before position ${i} are not valid UTF-8`);
    }
    pending = [];
    significant = out.length;
  };
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === ',' || c === '+') break;
    if (c === '\\') {
      const next = text[i + 1];
      if (isHex(next) && isHex(text[i + 2])) {
        pending.push(parseInt(text.slice(i + 1, i + 3), 16));
        i += 2;
        continue;
      }
      if (next === undefined || !SPECIAL_ESCAPES.includes(next)) {
        throw nameError(`invalid escape "\\${next ?? ''}" at position ${i}`);
      }
      flush();
      out += next;
      significant = out.length;
      i++;
      continue;
    }
    if (MUST_ESCAPE.includes(c)) throw nameError(`"${c}" at position ${i} must be escaped as "\\${c}"`);
    flush();
    out += c;
    if (c !== ' ') significant = out.length;
  }
  flush();
  return { value: out.slice(0, significant), end: i };
}

function readHexValue(text: string, i: number): { value: Buffer; end: number } {
  const start = i;
  while (i < text.length && isHex(text[i])) i++;
  const hex = text.slice(start, i);
  i = skipSpaces(text, i);
  if (hex.length === 0 || hex.length % 2 !== 0) throw nameError(`the "#" value at position ${start - 1} must be an even number of hex digits`);
  if (i < text.length && text[i] !== ',' && text[i] !== '+') throw nameError(`unexpected "${text[i]}" after the hex value at position ${i}`);
  return { value: Buffer.from(hex, 'hex'), end: i };
}

/** Encodes one attribute as AttributeTypeAndValue. */
function encodeAttribute(attr: NameAttribute): Buffer {
  if (typeof attr !== 'object' || attr === null || typeof attr.type !== 'string') {
    throw nameError('each name attribute must be an object { type, value }');
  }
  const spec = attributeSpec(attr.type);
  if (typeof attr.value === 'string') {
    checkAttributeValue(spec, attr.value);
    return sequence([oid(spec.oid), stringValue(spec.tag, attr.value)]);
  }
  if (!Buffer.isBuffer(attr.value)) throw nameError(`the value of ${attr.type} must be a string or a Buffer`);
  // RFC 4514 keeps "#hex" for types without a string syntax; for known types that would bypass the checks.
  if (spec.name !== spec.oid) throw nameError(`${spec.name} takes a string value, not a "#hex" encoded one`);
  let end = -1;
  try {
    end = readTlv(attr.value, 0).end;
  } catch (e) {
    throw nameError(`the "#hex" value of ${attr.type} is not DER: ${(e as Error).message}`);
  }
  if (end !== attr.value.length) throw nameError(`the "#hex" value of ${attr.type} has trailing bytes`);
  if (attr.value.length > 1024) throw nameError(`the value of ${attr.type} is longer than 1024 bytes`);
  return sequence([oid(spec.oid), attr.value]);
}

function normalize(input: NameInput): readonly (readonly NameAttribute[])[] {
  if (typeof input === 'string') return parseDistinguishedName(input);
  if (!Array.isArray(input)) throw nameError('a name must be an RFC 4514 string or an array of RDNs');
  return input.map((rdn: RelativeDistinguishedName) => (Array.isArray(rdn) ? rdn : [rdn as NameAttribute]));
}

/** DER Name from a string or structured name. Throws CaError('INVALID_NAME') with the reason. */
export function encodeName(input: NameInput): Buffer {
  const rdns = normalize(input);
  if (rdns.length > NAME_LIMITS.maxRdns) throw nameError(`the name has ${rdns.length} RDNs; at most ${NAME_LIMITS.maxRdns} are allowed`);
  const parts = rdns.map((rdn) => {
    if (rdn.length === 0) throw nameError('an RDN must hold at least one attribute');
    if (rdn.length > NAME_LIMITS.maxAttributesPerRdn) throw nameError(`an RDN holds more than ${NAME_LIMITS.maxAttributesPerRdn} attributes`);
    if (rdn.length > 1) {
      const oids = rdn.map((a) => attributeSpec(a.type).oid);
      if (new Set(oids).size !== oids.length) throw nameError('a multi-valued RDN repeats an attribute type');
    }
    return setOf(rdn.map(encodeAttribute));
  });
  const der = sequence(parts);
  if (der.length > NAME_LIMITS.maxDerBytes) throw nameError(`the encoded name is ${der.length} bytes; at most ${NAME_LIMITS.maxDerBytes} are allowed`);
  return der;
}
