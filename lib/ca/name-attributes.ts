/**
 * The attribute types a distinguished name may use, with their string syntax and the
 * upper bounds of RFC 5280 Appendix A (ub-*), so over-long names fail at the CA rather than
 * in a relying party.
 */
import { CaError } from './errors';
import { TAG } from './der-writer';
import { DOTTED_OID } from './oids';

export interface AttributeSpec {
  /** The RFC 4514 / common short name used when formatting. */
  name: string;
  oid: string;
  /** DER string type for values: UTF8String unless the standard fixes another. */
  tag: number;
  /** Maximum length in characters. */
  max: number;
  /** Minimum length in characters. */
  min?: number;
}

const U = TAG.UTF8_STRING;
const P = TAG.PRINTABLE_STRING;
const I = TAG.IA5_STRING;

const SPECS: readonly AttributeSpec[] = [
  { name: 'CN', oid: '2.5.4.3', tag: U, max: 64 },
  { name: 'SN', oid: '2.5.4.4', tag: U, max: 64 },
  { name: 'serialNumber', oid: '2.5.4.5', tag: P, max: 64 },
  { name: 'C', oid: '2.5.4.6', tag: P, max: 2, min: 2 },
  { name: 'L', oid: '2.5.4.7', tag: U, max: 128 },
  { name: 'ST', oid: '2.5.4.8', tag: U, max: 128 },
  { name: 'STREET', oid: '2.5.4.9', tag: U, max: 128 },
  { name: 'O', oid: '2.5.4.10', tag: U, max: 64 },
  { name: 'OU', oid: '2.5.4.11', tag: U, max: 64 },
  { name: 'title', oid: '2.5.4.12', tag: U, max: 64 },
  { name: 'businessCategory', oid: '2.5.4.15', tag: U, max: 128 },
  { name: 'postalCode', oid: '2.5.4.17', tag: U, max: 40 },
  { name: 'GN', oid: '2.5.4.42', tag: U, max: 64 },
  { name: 'initials', oid: '2.5.4.43', tag: U, max: 64 },
  { name: 'generationQualifier', oid: '2.5.4.44', tag: U, max: 64 },
  { name: 'dnQualifier', oid: '2.5.4.46', tag: P, max: 64 },
  { name: 'pseudonym', oid: '2.5.4.65', tag: U, max: 128 },
  { name: 'organizationIdentifier', oid: '2.5.4.97', tag: U, max: 64 },
  { name: 'UID', oid: '0.9.2342.19200300.100.1.1', tag: U, max: 256 },
  { name: 'DC', oid: '0.9.2342.19200300.100.1.25', tag: I, max: 63 },
  { name: 'emailAddress', oid: '1.2.840.113549.1.9.1', tag: I, max: 255 },
  { name: 'jurisdictionL', oid: '1.3.6.1.4.1.311.60.2.1.1', tag: U, max: 128 },
  { name: 'jurisdictionST', oid: '1.3.6.1.4.1.311.60.2.1.2', tag: U, max: 128 },
  { name: 'jurisdictionC', oid: '1.3.6.1.4.1.311.60.2.1.3', tag: P, max: 2, min: 2 },
];

/** Alternative spellings accepted on input (matched case-insensitively). */
const ALIASES: Readonly<Record<string, string>> = {
  commonname: 'CN',
  surname: 'SN',
  countryname: 'C',
  localityname: 'L',
  stateorprovincename: 'ST',
  s: 'ST',
  street: 'STREET',
  streetaddress: 'STREET',
  organizationname: 'O',
  organizationalunitname: 'OU',
  givenname: 'GN',
  userid: 'UID',
  domaincomponent: 'DC',
  email: 'emailAddress',
  e: 'emailAddress',
};

const BY_NAME = new Map<string, AttributeSpec>();
const BY_OID = new Map<string, AttributeSpec>();
for (const spec of SPECS) {
  BY_NAME.set(spec.name.toLowerCase(), spec);
  BY_OID.set(spec.oid, spec);
}
for (const [alias, name] of Object.entries(ALIASES)) BY_NAME.set(alias, BY_NAME.get(name.toLowerCase())!);

/** Longest value for an attribute type this CA does not know (ub-name). */
const UNKNOWN_MAX = 256;

/** The spec for a short name or dotted OID; unknown OIDs get a generic UTF8String spec. */
export function attributeSpec(type: string): AttributeSpec {
  const known = BY_NAME.get(type.toLowerCase()) ?? BY_OID.get(type);
  if (known) return known;
  if (DOTTED_OID.test(type)) return { name: type, oid: type, tag: U, max: UNKNOWN_MAX };
  throw new CaError('INVALID_NAME', `unknown attribute type "${type}" (use a known short name such as CN, O, C, or a dotted OID)`);
}

/** The short name for an OID, for formatting; the dotted OID when unknown. */
export function attributeName(oidValue: string): string {
  return BY_OID.get(oidValue)?.name ?? oidValue;
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
// eslint-disable-next-line no-control-regex
const IA5 = /^[\x00-\x7f]*$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Checks a value against its attribute's syntax and bounds. Control characters are refused
 * outright: NUL and friends in names are a classic way to make a certificate display as
 * something it is not.
 */
export function checkAttributeValue(spec: AttributeSpec, value: string): void {
  const where = `${spec.name}="${value.length > 40 ? value.slice(0, 40) + '...' : value}"`;
  if (value.length === 0) throw new CaError('INVALID_NAME', `${spec.name} must not be empty`);
  if (CONTROL.test(value)) throw new CaError('INVALID_NAME', `${spec.name} contains a control character`);
  if (LONE_SURROGATE.test(value)) throw new CaError('INVALID_NAME', `${spec.name} is not well-formed Unicode`);
  const chars = Array.from(value).length;
  if (chars > spec.max) throw new CaError('INVALID_NAME', `${where} is ${chars} characters; at most ${spec.max} are allowed`);
  if (spec.min !== undefined && chars < spec.min) {
    throw new CaError('INVALID_NAME', `${where} must be at least ${spec.min} characters`);
  }
  if (spec.tag === P && !PRINTABLE.test(value)) {
    throw new CaError('INVALID_NAME', `${where} must use only PrintableString characters (A-Z a-z 0-9 space '()+,-./:=?)`);
  }
  if (spec.tag === I && !IA5.test(value)) throw new CaError('INVALID_NAME', `${where} must be ASCII`);
  if ((spec.name === 'C' || spec.name === 'jurisdictionC') && !/^[A-Z]{2}$/.test(value)) {
    throw new CaError('INVALID_NAME', `${where} must be a two-letter upper-case ISO 3166 code`);
  }
}
