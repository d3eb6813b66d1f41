/**
 * RFC 7512 PKCS#11 URIs: parse, format, redact, and match against token/slot/library info.
 *
 * Stricter than the RFC in one place: an attribute name the RFC does not define is accepted
 * only with the "x-" vendor prefix (unless `allowUnprefixedVendor`), so a misspelt standard
 * attribute fails loudly instead of being carried along as a vendor attribute.
 */
import { TextDecoder, inspect } from 'node:util';

export type Pkcs11ObjectType = 'cert' | 'data' | 'private' | 'public' | 'secret-key';

export interface Pkcs11UriPath {
  token?: string;
  manufacturer?: string;
  serial?: string;
  model?: string;
  libraryManufacturer?: string;
  libraryDescription?: string;
  libraryVersion?: { major: number; minor: number };
  slotDescription?: string;
  slotManufacturer?: string;
  slotId?: bigint;
  object?: string;
  type?: Pkcs11ObjectType;
  id?: Buffer;
}

export interface Pkcs11UriQuery {
  pinValue?: string;
  pinSource?: string;
  moduleName?: string;
  modulePath?: string;
}

export interface Pkcs11Uri {
  path: Pkcs11UriPath;
  query: Pkcs11UriQuery;
  vendor: { path: Record<string, string>; query: Record<string, string> };
}

export interface ParseOptions {
  /** Accept vendor attributes without the "x-" prefix, as RFC 7512's own grammar does. */
  allowUnprefixedVendor?: boolean;
}

export interface FormatOptions {
  /** Write pin-value. Off by default so formatted URIs can be logged. */
  includePin?: boolean;
}

export class Pkcs11UriError extends Error {
  /** Offset in the input text, when the error is about one place in it. */
  readonly position?: number;
  /** The attribute concerned, when there is one. */
  readonly attribute?: string;

  constructor(message: string, details: { position?: number; attribute?: string } = {}) {
    super(message);
    this.name = 'Pkcs11UriError';
    this.position = details.position;
    this.attribute = details.attribute;
  }
}

type Kind = 'text' | 'bytes' | 'version' | 'type' | 'slotId';
type PathKey = keyof Pkcs11UriPath;
type QueryKey = keyof Pkcs11UriQuery;

// Path attributes in the order of RFC 7512's ABNF; format writes them in this order.
const PATH_ATTRS: ReadonlyArray<readonly [string, PathKey, Kind]> = [
  ['token', 'token', 'text'],
  ['manufacturer', 'manufacturer', 'text'],
  ['serial', 'serial', 'text'],
  ['model', 'model', 'text'],
  ['library-manufacturer', 'libraryManufacturer', 'text'],
  ['library-description', 'libraryDescription', 'text'],
  ['library-version', 'libraryVersion', 'version'],
  ['object', 'object', 'text'],
  ['type', 'type', 'type'],
  ['id', 'id', 'bytes'],
  ['slot-manufacturer', 'slotManufacturer', 'text'],
  ['slot-description', 'slotDescription', 'text'],
  ['slot-id', 'slotId', 'slotId'],
];

const QUERY_ATTRS: ReadonlyArray<readonly [string, QueryKey]> = [
  ['pin-source', 'pinSource'],
  ['pin-value', 'pinValue'],
  ['module-name', 'moduleName'],
  ['module-path', 'modulePath'],
];

const PATH_BY_NAME = new Map(PATH_ATTRS.map((a) => [a[0], a] as const));
const QUERY_BY_NAME = new Map(QUERY_ATTRS.map((a) => [a[0], a] as const));

const OBJECT_TYPES: readonly Pkcs11ObjectType[] = ['cert', 'data', 'private', 'public', 'secret-key'];

// unreserved (RFC 3986) plus pk11-path-res-avail / pk11-query-res-avail (RFC 7512 section 2.3).
const UNRESERVED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';
const RES_AVAIL = ":[]@!$'()*+,=";
const PATH_CHARS = new Set(UNRESERVED + RES_AVAIL + '&');
const QUERY_CHARS = new Set(UNRESERVED + RES_AVAIL + '/?|');

const NAME_RE = /^[A-Za-z0-9_-]+$/; // pk11-v-attr-nm-char; standard names fit it too
const MAX_SLOT_ID = 0xffffffffffffffffn; // CK_SLOT_ID is a CK_ULONG
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------- parse

export function parsePkcs11Uri(text: string, options: ParseOptions = {}): Pkcs11Uri {
  if (typeof text !== 'string') throw new Pkcs11UriError('a PKCS#11 URI must be a string');
  // URI schemes are case-insensitive (RFC 3986 section 3.1).
  if (text.slice(0, 7).toLowerCase() !== 'pkcs11:') {
    throw new Pkcs11UriError('a PKCS#11 URI starts with "pkcs11:"', { position: 0 });
  }
  const uri: Pkcs11Uri = { path: {}, query: {}, vendor: { path: {}, query: {} } };
  const seen = new Set<string>();
  const q = text.indexOf('?', 7);
  const pathEnd = q < 0 ? text.length : q;
  if (text.startsWith('//', 7)) {
    throw new Pkcs11UriError('a PKCS#11 URI has no "//" authority part; attributes follow "pkcs11:" directly', { position: 7 });
  }
  for (const [start, end] of segments(text, 7, pathEnd, ';')) {
    parseAttribute(text, start, end, 'path', uri, seen, options);
  }
  if (q >= 0) {
    for (const [start, end] of segments(text, q + 1, text.length, '&')) {
      parseAttribute(text, start, end, 'query', uri, seen, options);
    }
  }
  if (uri.query.pinSource !== undefined && uri.query.pinValue !== undefined) {
    // RFC 7512 section 2.3: a URI carrying both is to be refused.
    throw new Pkcs11UriError('pin-source and pin-value must not both be present', { attribute: 'pin-value' });
  }
  return withSafeStringForms(uri);
}

/** [start, end) ranges of the attributes of one component; an empty component has none. */
function segments(text: string, from: number, to: number, sep: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  if (from === to) return out;
  let start = from;
  for (let i = from; i <= to; i++) {
    if (i === to || text[i] === sep) {
      if (i === start) {
        throw new Pkcs11UriError(`empty attribute at position ${start} (stray "${sep}")`, { position: start });
      }
      out.push([start, i]);
      start = i + 1;
    }
  }
  return out;
}

function parseAttribute(
  text: string,
  start: number,
  end: number,
  component: 'path' | 'query',
  uri: Pkcs11Uri,
  seen: Set<string>,
  options: ParseOptions,
): void {
  const eq = text.indexOf('=', start);
  if (eq < 0 || eq >= end) {
    throw new Pkcs11UriError(`attribute at position ${start} has no "=" (expected name=value)`, { position: start });
  }
  const name = text.slice(start, eq);
  if (!NAME_RE.test(name)) {
    throw new Pkcs11UriError(
      `invalid attribute name at position ${start}: names are letters, digits, "-" and "_"`,
      { position: start },
    );
  }
  // ABNF string literals are case-insensitive (RFC 5234 section 2.3), so "Token" is "token".
  const lower = name.toLowerCase();
  const key = component === 'path' && PATH_BY_NAME.has(lower) ? lower
    : component === 'query' && QUERY_BY_NAME.has(lower) ? lower
    : undefined;
  const seenKey = key ?? `${component}:${name}`;
  if (seen.has(seenKey)) {
    throw new Pkcs11UriError(`attribute "${name}" appears more than once (position ${start})`, { position: start, attribute: name });
  }
  seen.add(seenKey);
  const valueStart = eq + 1;
  const raw = text.slice(valueStart, end);

  if (component === 'path' && key) {
    const [, field, kind] = PATH_BY_NAME.get(key)!;
    setPath(uri.path, field, parsePathValue(kind, key, raw, valueStart));
    return;
  }
  if (component === 'query' && key) {
    const [, field] = QUERY_BY_NAME.get(key)!;
    uri.query[field] = decodeText(raw, QUERY_CHARS, valueStart, key);
    return;
  }
  if (component === 'path' && QUERY_BY_NAME.has(lower)) {
    throw new Pkcs11UriError(`"${name}" is a query attribute: it belongs after "?" (position ${start})`, { position: start, attribute: name });
  }
  if (component === 'query' && PATH_BY_NAME.has(lower)) {
    throw new Pkcs11UriError(`"${name}" is a path attribute: it belongs before "?" (position ${start})`, { position: start, attribute: name });
  }
  const vendorLike = lower.startsWith('x-') && name.length > 2;
  if (!vendorLike && !options.allowUnprefixedVendor) {
    throw new Pkcs11UriError(
      `unknown ${component} attribute "${name}" at position ${start} (vendor attributes start with "x-")`,
      { position: start, attribute: name },
    );
  }
  const value = decodeText(raw, component === 'path' ? PATH_CHARS : QUERY_CHARS, valueStart, name);
  defineEntry(uri.vendor[component], name, value);
}

function parsePathValue(kind: Kind, name: string, raw: string, offset: number): Pkcs11UriPath[PathKey] {
  switch (kind) {
    case 'text':
      return decodeText(raw, PATH_CHARS, offset, name);
    case 'bytes':
      return decodeBytes(raw, PATH_CHARS, offset, name);
    case 'type': {
      // The grammar lists literals only, so percent-encoding is not accepted here.
      const t = raw.toLowerCase() as Pkcs11ObjectType;
      if (!OBJECT_TYPES.includes(t)) {
        throw new Pkcs11UriError(`type at position ${offset} must be one of ${OBJECT_TYPES.join(', ')}`, { position: offset, attribute: name });
      }
      return t;
    }
    case 'version': {
      const m = /^([0-9]+)(?:\.([0-9]+))?$/.exec(raw);
      if (!m) {
        throw new Pkcs11UriError(`library-version at position ${offset} must be "M" or "M.m" in decimal digits`, { position: offset, attribute: name });
      }
      const major = Number(m[1]);
      const minor = m[2] === undefined ? 0 : Number(m[2]);
      if (major > 255 || minor > 255) {
        throw new Pkcs11UriError(`library-version at position ${offset} is out of range (CK_VERSION parts are 0-255)`, { position: offset, attribute: name });
      }
      return { major, minor };
    }
    case 'slotId': {
      if (!/^[0-9]+$/.test(raw)) {
        throw new Pkcs11UriError(`slot-id at position ${offset} must be decimal digits`, { position: offset, attribute: name });
      }
      const id = BigInt(raw);
      if (id > MAX_SLOT_ID) {
        throw new Pkcs11UriError(`slot-id at position ${offset} does not fit a CK_SLOT_ID`, { position: offset, attribute: name });
      }
      return id;
    }
  }
}

function decodeBytes(raw: string, allowed: ReadonlySet<string>, offset: number, name: string): Buffer {
  const out = Buffer.alloc(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '%') {
      const h = raw.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(h)) {
        const what = i + 3 > raw.length ? 'truncated' : 'invalid';
        throw new Pkcs11UriError(`${what} percent-encoding at position ${offset + i} in "${name}"`, { position: offset + i, attribute: name });
      }
      out[n++] = parseInt(h, 16);
      i += 2;
    } else if (allowed.has(c)) {
      out[n++] = c.charCodeAt(0);
    } else {
      // Never echo a pin-value character into an error message.
      const shown = name === 'pin-value' ? 'a character' : c === '#' ? '"#" (fragments are not allowed)' : JSON.stringify(c);
      throw new Pkcs11UriError(
        `${shown} at position ${offset + i} in "${name}" must be percent-encoded`,
        { position: offset + i, attribute: name },
      );
    }
  }
  return out.subarray(0, n);
}

function decodeText(raw: string, allowed: ReadonlySet<string>, offset: number, name: string): string {
  const bytes = decodeBytes(raw, allowed, offset, name);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new Pkcs11UriError(`"${name}" at position ${offset} is not valid UTF-8 once percent-decoded`, { position: offset, attribute: name });
  }
}

function setPath(path: Pkcs11UriPath, field: PathKey, value: Pkcs11UriPath[PathKey]): void {
  (path as Record<PathKey, unknown>)[field] = value;
}

/** Own, enumerable entry even for names like "__proto__". */
function defineEntry(record: Record<string, string>, name: string, value: string): void {
  Object.defineProperty(record, name, { value, enumerable: true, writable: true, configurable: true });
}

/** Parsed URIs print without their PIN in template strings, JSON and console.log. */
function withSafeStringForms(uri: Pkcs11Uri): Pkcs11Uri {
  const hidden = (value: unknown) => ({ value, enumerable: false, writable: true, configurable: true });
  Object.defineProperties(uri, {
    toString: hidden(function (this: Pkcs11Uri) {
      return formatPkcs11Uri(this);
    }),
    toJSON: hidden(function (this: Pkcs11Uri) {
      return formatPkcs11Uri(this);
    }),
    [inspect.custom]: hidden(function (this: Pkcs11Uri, _depth: number, opts: object) {
      const query = this.query.pinValue === undefined ? this.query : { ...this.query, pinValue: '***' };
      return inspect({ path: this.path, query, vendor: this.vendor }, opts);
    }),
  });
  return uri;
}

// ---------------------------------------------------------------- format

export function formatPkcs11Uri(uri: Pkcs11Uri, options: FormatOptions = {}): string {
  const path: string[] = [];
  const used = new Set<string>();
  for (const [name, field, kind] of PATH_ATTRS) {
    const value = uri.path?.[field];
    if (value === undefined) continue;
    used.add(name);
    path.push(`${name}=${formatPathValue(kind, name, value)}`);
  }
  for (const [name, value] of vendorEntries(uri.vendor?.path, 'path')) {
    path.push(`${name}=${encode(value, PATH_CHARS, name)}`);
  }
  const query: string[] = [];
  for (const [name, field] of QUERY_ATTRS) {
    const value = uri.query?.[field];
    if (value === undefined) continue;
    if (field === 'pinValue' && !options.includePin) continue;
    query.push(`${name}=${encode(expectString(value, name), QUERY_CHARS, name)}`);
  }
  if (options.includePin && uri.query?.pinValue !== undefined && uri.query?.pinSource !== undefined) {
    throw new Pkcs11UriError('pin-source and pin-value must not both be present', { attribute: 'pin-value' });
  }
  for (const [name, value] of vendorEntries(uri.vendor?.query, 'query')) {
    query.push(`${name}=${encode(value, QUERY_CHARS, name)}`);
  }
  return `pkcs11:${path.join(';')}${query.length > 0 ? `?${query.join('&')}` : ''}`;
}

/** Same as formatPkcs11Uri without the PIN: what to put in logs. */
export function pkcs11UriToString(uri: Pkcs11Uri): string {
  return formatPkcs11Uri(uri);
}

function formatPathValue(kind: Kind, name: string, value: unknown): string {
  switch (kind) {
    case 'text':
      return encode(expectString(value, name), PATH_CHARS, name);
    case 'bytes': {
      if (!(value instanceof Uint8Array)) throw new Pkcs11UriError(`"${name}" must be a Buffer`, { attribute: name });
      // RFC 7512 recommends percent-encoding the whole id, as it is binary.
      let out = '';
      for (const b of value) out += pct(b);
      return out;
    }
    case 'type':
      if (!OBJECT_TYPES.includes(value as Pkcs11ObjectType)) {
        throw new Pkcs11UriError(`type must be one of ${OBJECT_TYPES.join(', ')}`, { attribute: name });
      }
      return value as string;
    case 'version': {
      const v = value as { major?: unknown; minor?: unknown } | null;
      const ok = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 255;
      if (!v || !ok(v.major) || !ok(v.minor)) {
        throw new Pkcs11UriError('library-version must be { major, minor } integers 0-255', { attribute: name });
      }
      return v.minor === 0 ? `${v.major}` : `${v.major}.${v.minor}`;
    }
    case 'slotId':
      if (typeof value !== 'bigint' || value < 0n || value > MAX_SLOT_ID) {
        throw new Pkcs11UriError('slot-id must be a bigint in the CK_SLOT_ID range', { attribute: name });
      }
      return value.toString(10);
  }
}

function vendorEntries(record: Record<string, string> | undefined, component: 'path' | 'query'): Array<[string, string]> {
  if (!record) return [];
  return Object.keys(record).map((name) => {
    const lower = name.toLowerCase();
    // A name outside the grammar could smuggle in delimiters, and a standard name would be read back as standard.
    if (!NAME_RE.test(name) || PATH_BY_NAME.has(lower) || QUERY_BY_NAME.has(lower)) {
      throw new Pkcs11UriError(`invalid vendor ${component} attribute name ${JSON.stringify(name)}`, { attribute: name });
    }
    return [name, expectString(record[name], name)];
  });
}

function expectString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new Pkcs11UriError(`"${name}" must be a string`, { attribute: name });
  return value;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function encode(value: string, allowed: ReadonlySet<string>, name: string): string {
  // UTF-8 cannot carry a lone surrogate; Buffer.from would silently substitute U+FFFD.
  if (LONE_SURROGATE.test(value)) throw new Pkcs11UriError(`"${name}" is not well-formed Unicode`, { attribute: name });
  let out = '';
  for (const b of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(b);
    out += b < 0x80 && allowed.has(c) ? c : pct(b);
  }
  return out;
}

function pct(b: number): string {
  return `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
}

// ---------------------------------------------------------------- redact

/**
 * The URI text with every pin-value replaced by "***". Works on malformed text too, and
 * errs toward redacting too much: a pin-value runs to the next "&", ";" or "#".
 */
export function redactPkcs11Uri(text: string): string {
  const s = String(text);
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(s);
  let i = scheme ? scheme[0].length : 0;
  let out = s.slice(0, i);
  while (i <= s.length) {
    let j = i;
    while (j < s.length && !'=;&?#'.includes(s[j])) j++;
    const name = s.slice(i, j);
    let k: number;
    if (s[j] === '=' && looseDecode(name).toLowerCase() === 'pin-value') {
      out += `${name}=***`;
      k = j + 1;
      while (k < s.length && !'&;#'.includes(s[k])) k++;
    } else {
      k = j;
      while (k < s.length && !';&?#'.includes(s[k])) k++;
      out += s.slice(i, k);
    }
    if (k >= s.length) break;
    out += s[k];
    i = k + 1;
  }
  return out;
}

function looseDecode(s: string): string {
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

// ---------------------------------------------------------------- match

export interface TokenInfoLike {
  label: string;
  manufacturerID: string;
  model: string;
  serialNumber: string;
}

export interface SlotInfoLike {
  slotDescription: string;
  manufacturerID: string;
}

export interface LibraryInfoLike {
  manufacturerID: string;
  libraryDescription: string;
  libraryVersion: { major: number; minor: number };
}

/** Does the URI's token part (token, manufacturer, model, serial) select this token? */
export function matchesToken(uri: Pkcs11Uri, info: TokenInfoLike): boolean {
  const p = uri.path;
  return (
    noVendorPath(uri) &&
    same(p.token, info.label) &&
    same(p.manufacturer, info.manufacturerID) &&
    same(p.model, info.model) &&
    same(p.serial, info.serialNumber)
  );
}

/** Does the URI's slot part (slot-id, slot-description, slot-manufacturer) select this slot? */
export function matchesSlot(uri: Pkcs11Uri, slotId: bigint, info: SlotInfoLike): boolean {
  const p = uri.path;
  return (
    noVendorPath(uri) &&
    (p.slotId === undefined || p.slotId === slotId) &&
    same(p.slotDescription, info.slotDescription) &&
    same(p.slotManufacturer, info.manufacturerID)
  );
}

/** Does the URI's library part select this module (C_GetInfo)? */
export function matchesLibrary(uri: Pkcs11Uri, info: LibraryInfoLike): boolean {
  const p = uri.path;
  const v = p.libraryVersion;
  return (
    noVendorPath(uri) &&
    same(p.libraryManufacturer, info.manufacturerID) &&
    same(p.libraryDescription, info.libraryDescription) &&
    (v === undefined || (v.major === info.libraryVersion.major && v.minor === info.libraryVersion.minor))
  );
}

// RFC 7512: a path attribute the consumer does not understand must not match anything,
// and no vendor attribute is understood here. Callers that handle theirs remove them first.
function noVendorPath(uri: Pkcs11Uri): boolean {
  return Object.keys(uri.vendor?.path ?? {}).length === 0;
}

// CK_*_INFO strings are blank-padded fixed-size fields; some modules pad with NULs instead.
function same(wanted: string | undefined, actual: string): boolean {
  return wanted === undefined || wanted === actual.replace(/[ \0]+$/, '');
}
