/**
 * subjectAltName entries (RFC 5280 section 4.2.1.6): DNS names, IPv4/IPv6 addresses, URIs
 * (SPIFFE IDs included) and e-mail addresses, validated and written as DER GeneralNames.
 */
import { CaError } from './errors';
import { implicitPrimitive, sequence } from './der-writer';

/** Subject alternative names, by kind. Each list keeps its order in the certificate. */
export interface SubjectAltNames {
  /** DNS names in A-label (punycode) form; `*.example.com` where the profile allows wildcards. */
  dns?: readonly string[];
  /** IPv4 (`192.0.2.1`) or IPv6 (`2001:db8::1`) addresses. */
  ip?: readonly string[];
  /** Absolute URIs, e.g. a SPIFFE ID `spiffe://example.org/ns/prod/sa/api`. */
  uri?: readonly string[];
  /** RFC 822 mailboxes (ASCII). */
  email?: readonly string[];
}

export type SanKind = keyof SubjectAltNames;

export const SAN_LIMITS = { maxEntries: 100, maxDns: 253, maxUri: 2048, maxEmail: 254 } as const;

// GeneralName CHOICE tags: rfc822Name [1], dNSName [2], uniformResourceIdentifier [6], iPAddress [7].
const TAG_EMAIL = 1;
const TAG_DNS = 2;
const TAG_URI = 6;
const TAG_IP = 7;

function sanError(message: string): CaError {
  return new CaError('INVALID_SAN', message);
}

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;

/** Checks a DNS name (LDH labels, total length, optional leading `*.` label). */
export function checkDnsName(name: string, allowWildcard: boolean): void {
  if (typeof name !== 'string' || name.length === 0) throw sanError('a DNS name must be a non-empty string');
  if (name.length > SAN_LIMITS.maxDns) throw sanError(`DNS name is longer than ${SAN_LIMITS.maxDns} characters`);
  if (IPV4.test(name)) throw sanError(`"${name}" is an IP address: put it in the ip list`);
  const labels = name.split('.');
  if (labels[0] === '*') {
    if (!allowWildcard) throw sanError(`wildcard DNS name "${name}" is not allowed by this profile`);
    if (labels.length < 3) throw sanError(`wildcard "${name}" must have at least two labels after "*."`);
    labels.shift();
  }
  for (const label of labels) {
    if (!LABEL.test(label)) {
      throw sanError(`"${name}" is not a valid DNS name (label "${label}"); use A-labels (punycode) for internationalized names`);
    }
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1])) throw sanError(`"${name}" has an all-numeric top-level label`);
}

/** The 4 or 16 network-order bytes of an IP address; throws for anything else (zones, prefixes). */
export function parseIpAddress(text: string): Buffer {
  if (typeof text !== 'string') throw sanError('an IP address must be a string');
  const bytes = tryParseIpAddress(text);
  if (!bytes) throw sanError(`"${text}" is not an IPv4 or IPv6 address`);
  return bytes;
}

/** Like parseIpAddress, but undefined instead of an exception (exceptions are slow on the hot path). */
export function tryParseIpAddress(text: string): Buffer | undefined {
  if (IPV4.test(text)) return Buffer.from(text.split('.').map(Number));
  return parseIpv6(text);
}

function parseIpv6(text: string): Buffer | undefined {
  if (text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text)) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes('.')) {
        if (!IPV4.test(p)) return undefined;
        const b = p.split('.').map(Number);
        out.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  // An embedded IPv4 address is only allowed at the very end.
  if (halves.length === 2 && halves[0].includes('.')) return undefined;
  const count = head.length + tail.length;
  if (halves.length === 1 ? count !== 8 : count > 7) return undefined;
  const all = [...head, ...new Array<number>(8 - count).fill(0), ...tail];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  return out;
}

// eslint-disable-next-line no-control-regex
const URI_CHARS = /^[\x21-\x7e]+$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** Checks a URI: absolute, ASCII, no spaces; SPIFFE IDs get the SPIFFE spec's stricter rules. */
export function checkUri(uri: string): void {
  if (typeof uri !== 'string' || uri.length === 0) throw sanError('a URI must be a non-empty string');
  if (uri.length > SAN_LIMITS.maxUri) throw sanError(`URI is longer than ${SAN_LIMITS.maxUri} characters`);
  if (!URI_CHARS.test(uri)) throw sanError(`URI "${uri}" must be ASCII without spaces (percent-encode other characters)`);
  if (!SCHEME.test(uri)) throw sanError(`URI "${uri}" must be absolute (start with a scheme such as https: or spiffe:)`);
  if (/^spiffe:/i.test(uri)) {
    checkSpiffeId(uri);
    return;
  }
  try {
    new URL(uri);
  } catch {
    throw sanError(`"${uri}" is not a valid URI`);
  }
}

/** True when `uri` is a SPIFFE ID (by scheme). */
export function isSpiffeId(uri: string): boolean {
  return /^spiffe:/i.test(uri);
}

/**
 * A SPIFFE ID per the SPIFFE ID spec: `spiffe://<trust-domain>/<path>`, lower-case trust
 * domain of [a-z0-9._-], path segments of [A-Za-z0-9._-] (no empty, "." or ".." segments),
 * no query, fragment, port or user info, and no trailing slash.
 */
export function checkSpiffeId(uri: string): void {
  const m = /^spiffe:\/\/([^/?#]*)((?:\/[^/?#]*)*)$/.exec(uri);
  if (!m) throw sanError(`"${uri}" is not a SPIFFE ID (spiffe://trust-domain/path, lower-case scheme, no query or fragment)`);
  const [, trustDomain, path] = m;
  if (!/^[a-z0-9._-]+$/.test(trustDomain)) {
    throw sanError(`SPIFFE ID "${uri}": the trust domain must be non-empty and use only a-z 0-9 . _ - (no port or user info)`);
  }
  if (path !== '') {
    for (const segment of path.slice(1).split('/')) {
      if (segment === '' || segment === '.' || segment === '..' || !/^[A-Za-z0-9._-]+$/.test(segment)) {
        throw sanError(`SPIFFE ID "${uri}": path segment "${segment}" is empty, a dot segment, or uses characters outside A-Z a-z 0-9 . _ -`);
      }
    }
  }
}

const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** Checks an ASCII mailbox `local@domain` (internationalized mailboxes would need SmtpUTF8Mailbox). */
export function checkEmail(email: string): void {
  if (typeof email !== 'string' || email.length === 0) throw sanError('an e-mail address must be a non-empty string');
  if (email.length > SAN_LIMITS.maxEmail) throw sanError(`e-mail address is longer than ${SAN_LIMITS.maxEmail} characters`);
  const at = email.lastIndexOf('@');
  const local = email.slice(0, at);
  if (at <= 0 || local.length > 64 || !LOCAL_PART.test(local)) {
    throw sanError(`"${email}" is not a valid ASCII e-mail address`);
  }
  checkDnsName(email.slice(at + 1), false);
}

/** Options from the profile that shape validation. */
export interface SanRules {
  allowed: readonly SanKind[];
  allowWildcard: boolean;
}

/** Validates and encodes a SAN set as DER GeneralNames; undefined when there are no entries. */
export function encodeSubjectAltNames(sans: SubjectAltNames | undefined, rules: SanRules): Buffer | undefined {
  if (sans === undefined) return undefined;
  if (typeof sans !== 'object' || sans === null) throw sanError('sans must be an object { dns?, ip?, uri?, email? }');
  const parts: Buffer[] = [];
  const seen = new Set<string>();
  const add = (kind: SanKind, tag: number, key: string, bytes: Buffer): void => {
    if (seen.has(key)) throw sanError(`duplicate subjectAltName ${kind} entry "${key.slice(kind.length + 1)}"`);
    seen.add(key);
    parts.push(implicitPrimitive(tag, bytes));
  };
  for (const kind of Object.keys(sans) as SanKind[]) {
    const list = sans[kind];
    if (list === undefined) continue;
    if (!['dns', 'ip', 'uri', 'email'].includes(kind)) throw sanError(`unknown subjectAltName kind "${kind}" (use dns, ip, uri or email)`);
    if (!Array.isArray(list)) throw sanError(`sans.${kind} must be an array of strings`);
    if (list.length > 0 && !rules.allowed.includes(kind)) throw sanError(`subjectAltName ${kind} entries are not allowed by this profile`);
  }
  for (const name of sans.dns ?? []) {
    checkDnsName(name, rules.allowWildcard);
    add('dns', TAG_DNS, `dns:${name.toLowerCase()}`, Buffer.from(name, 'latin1'));
  }
  for (const ip of sans.ip ?? []) {
    const bytes = parseIpAddress(ip);
    add('ip', TAG_IP, `ip:${bytes.toString('hex')}`, bytes);
  }
  for (const email of sans.email ?? []) {
    checkEmail(email);
    add('email', TAG_EMAIL, `email:${email.toLowerCase()}`, Buffer.from(email, 'latin1'));
  }
  for (const uri of sans.uri ?? []) {
    checkUri(uri);
    add('uri', TAG_URI, `uri:${uri}`, Buffer.from(uri, 'latin1'));
  }
  if (parts.length > SAN_LIMITS.maxEntries) throw sanError(`${parts.length} subjectAltName entries; at most ${SAN_LIMITS.maxEntries} are allowed`);
  return parts.length === 0 ? undefined : sequence(parts);
}
