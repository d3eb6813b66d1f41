import * as C from '../generated/constants';
import type { Attribute, AttributeResult, Ulong } from '../native/types';
import {
  CERTIFICATE_TYPES,
  CertificateTypeName,
  KEY_TYPES,
  KeyTypeName,
  nameOf,
  OBJECT_CLASSES,
  ObjectClassName,
} from './names';

/**
 * A typed attribute template: attribute names as keys (CKA_EC_PARAMS → ecParams) and values of
 * the attribute's type. The compiler checks it; toAttributes() checks it again at run time,
 * since templates often come from configuration.
 */
export interface Template {
  class?: ObjectClassName | number;
  keyType?: KeyTypeName | number;
  certificateType?: CertificateTypeName | number;
  token?: boolean;
  private?: boolean;
  label?: string;
  application?: string;
  value?: Buffer;
  objectId?: Buffer;
  issuer?: Buffer;
  serialNumber?: Buffer;
  subject?: Buffer;
  id?: Buffer;
  trusted?: boolean;
  certificateCategory?: number;
  url?: string;
  checkValue?: Buffer;
  sensitive?: boolean;
  encrypt?: boolean;
  decrypt?: boolean;
  wrap?: boolean;
  unwrap?: boolean;
  sign?: boolean;
  signRecover?: boolean;
  verify?: boolean;
  verifyRecover?: boolean;
  derive?: boolean;
  startDate?: Date | null;
  endDate?: Date | null;
  modulus?: Buffer;
  modulusBits?: number;
  publicExponent?: Buffer;
  privateExponent?: Buffer;
  prime1?: Buffer;
  prime2?: Buffer;
  exponent1?: Buffer;
  exponent2?: Buffer;
  coefficient?: Buffer;
  publicKeyInfo?: Buffer;
  prime?: Buffer;
  subprime?: Buffer;
  base?: Buffer;
  valueBits?: number;
  valueLen?: number;
  extractable?: boolean;
  local?: boolean;
  neverExtractable?: boolean;
  alwaysSensitive?: boolean;
  keyGenMechanism?: number;
  modifiable?: boolean;
  copyable?: boolean;
  destroyable?: boolean;
  ecParams?: Buffer;
  ecPoint?: Buffer;
  alwaysAuthenticate?: boolean;
  wrapWithTrusted?: boolean;
  wrapTemplate?: Template;
  unwrapTemplate?: Template;
  deriveTemplate?: Template;
  allowedMechanisms?: number[];
}

export type AttributeName = keyof Template;

type Kind = 'bool' | 'ulong' | 'bytes' | 'string' | 'date' | 'template' | 'mechanisms' | 'class' | 'keyType' | 'certType';

/** Every attribute name with its CKA_ number and value kind: the run-time half of Template. */
const ATTRIBUTES: Record<AttributeName, [number, Kind]> = {
  class: [C.CKA_CLASS, 'class'],
  keyType: [C.CKA_KEY_TYPE, 'keyType'],
  certificateType: [C.CKA_CERTIFICATE_TYPE, 'certType'],
  token: [C.CKA_TOKEN, 'bool'],
  private: [C.CKA_PRIVATE, 'bool'],
  label: [C.CKA_LABEL, 'string'],
  application: [C.CKA_APPLICATION, 'string'],
  value: [C.CKA_VALUE, 'bytes'],
  objectId: [C.CKA_OBJECT_ID, 'bytes'],
  issuer: [C.CKA_ISSUER, 'bytes'],
  serialNumber: [C.CKA_SERIAL_NUMBER, 'bytes'],
  subject: [C.CKA_SUBJECT, 'bytes'],
  id: [C.CKA_ID, 'bytes'],
  trusted: [C.CKA_TRUSTED, 'bool'],
  certificateCategory: [C.CKA_CERTIFICATE_CATEGORY, 'ulong'],
  url: [C.CKA_URL, 'string'],
  checkValue: [C.CKA_CHECK_VALUE, 'bytes'],
  sensitive: [C.CKA_SENSITIVE, 'bool'],
  encrypt: [C.CKA_ENCRYPT, 'bool'],
  decrypt: [C.CKA_DECRYPT, 'bool'],
  wrap: [C.CKA_WRAP, 'bool'],
  unwrap: [C.CKA_UNWRAP, 'bool'],
  sign: [C.CKA_SIGN, 'bool'],
  signRecover: [C.CKA_SIGN_RECOVER, 'bool'],
  verify: [C.CKA_VERIFY, 'bool'],
  verifyRecover: [C.CKA_VERIFY_RECOVER, 'bool'],
  derive: [C.CKA_DERIVE, 'bool'],
  startDate: [C.CKA_START_DATE, 'date'],
  endDate: [C.CKA_END_DATE, 'date'],
  modulus: [C.CKA_MODULUS, 'bytes'],
  modulusBits: [C.CKA_MODULUS_BITS, 'ulong'],
  publicExponent: [C.CKA_PUBLIC_EXPONENT, 'bytes'],
  privateExponent: [C.CKA_PRIVATE_EXPONENT, 'bytes'],
  prime1: [C.CKA_PRIME_1, 'bytes'],
  prime2: [C.CKA_PRIME_2, 'bytes'],
  exponent1: [C.CKA_EXPONENT_1, 'bytes'],
  exponent2: [C.CKA_EXPONENT_2, 'bytes'],
  coefficient: [C.CKA_COEFFICIENT, 'bytes'],
  publicKeyInfo: [C.CKA_PUBLIC_KEY_INFO, 'bytes'],
  prime: [C.CKA_PRIME, 'bytes'],
  subprime: [C.CKA_SUBPRIME, 'bytes'],
  base: [C.CKA_BASE, 'bytes'],
  valueBits: [C.CKA_VALUE_BITS, 'ulong'],
  valueLen: [C.CKA_VALUE_LEN, 'ulong'],
  extractable: [C.CKA_EXTRACTABLE, 'bool'],
  local: [C.CKA_LOCAL, 'bool'],
  neverExtractable: [C.CKA_NEVER_EXTRACTABLE, 'bool'],
  alwaysSensitive: [C.CKA_ALWAYS_SENSITIVE, 'bool'],
  keyGenMechanism: [C.CKA_KEY_GEN_MECHANISM, 'ulong'],
  modifiable: [C.CKA_MODIFIABLE, 'bool'],
  copyable: [C.CKA_COPYABLE, 'bool'],
  destroyable: [C.CKA_DESTROYABLE, 'bool'],
  ecParams: [C.CKA_EC_PARAMS, 'bytes'],
  ecPoint: [C.CKA_EC_POINT, 'bytes'],
  alwaysAuthenticate: [C.CKA_ALWAYS_AUTHENTICATE, 'bool'],
  wrapWithTrusted: [C.CKA_WRAP_WITH_TRUSTED, 'bool'],
  wrapTemplate: [C.CKA_WRAP_TEMPLATE, 'template'],
  unwrapTemplate: [C.CKA_UNWRAP_TEMPLATE, 'template'],
  deriveTemplate: [C.CKA_DERIVE_TEMPLATE, 'template'],
  allowedMechanisms: [C.CKA_ALLOWED_MECHANISMS, 'mechanisms'],
};

const BY_NUMBER = new Map<number, AttributeName>(
  Object.entries(ATTRIBUTES).map(([name, [type]]) => [type, name as AttributeName]),
);

/** The CKA_ number of an attribute name. */
export function attributeType(name: AttributeName): number {
  const entry = ATTRIBUTES[name];
  if (!entry) throw new TypeError(`unknown attribute name '${String(name)}'`);
  return entry[0];
}

/** The attribute name of a CKA_ number, if it is one of the typed ones. */
export function attributeName(type: Ulong): AttributeName | undefined {
  return typeof type === 'number' ? BY_NUMBER.get(type) : undefined;
}

function fail(name: string, expected: string, value: unknown): never {
  throw new TypeError(`template.${name} must be ${expected} (got ${describe(value)})`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

function checkUlong(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(name, 'a non-negative integer', value);
  }
  return value;
}

function named(name: string, table: Record<string, number>, value: unknown): number {
  if (typeof value === 'string') {
    const number = table[value];
    if (number === undefined) fail(name, `one of ${Object.keys(table).join(', ')} or a number`, value);
    return number;
  }
  return checkUlong(name, value);
}

function convert(name: string, kind: Kind, value: unknown): Attribute['value'] {
  switch (kind) {
    case 'bool':
      if (typeof value !== 'boolean') fail(name, 'a boolean', value);
      return value;
    case 'ulong':
      return checkUlong(name, value);
    case 'class':
      return named(name, OBJECT_CLASSES, value);
    case 'keyType':
      return named(name, KEY_TYPES, value);
    case 'certType':
      return named(name, CERTIFICATE_TYPES, value);
    case 'bytes':
      if (!(value instanceof Uint8Array)) fail(name, 'a Buffer or Uint8Array', value);
      return value;
    case 'string':
      if (typeof value !== 'string') fail(name, 'a string', value);
      return value;
    case 'date':
      if (value === null) return null;
      if (!(value instanceof Date) || Number.isNaN(value.getTime())) fail(name, 'a valid Date or null', value);
      return value;
    case 'template':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(name, 'a template object', value);
      return toAttributes(value as Template, `${name}.`);
    case 'mechanisms':
      if (!Array.isArray(value)) fail(name, 'an array of mechanism types', value);
      return value.map((m, i) => checkUlong(`${name}[${i}]`, m));
  }
}

/** A typed template as the binding's [{ type, value }] list, checked value by value. */
export function toAttributes(template: Template, prefix = ''): Attribute[] {
  if (typeof template !== 'object' || template === null) throw new TypeError('template must be an object');
  const attributes: Attribute[] = [];
  for (const [name, value] of Object.entries(template)) {
    if (value === undefined) continue;
    const entry = ATTRIBUTES[name as AttributeName];
    if (!entry) throw new TypeError(`template.${prefix}${name} is not a known attribute name`);
    attributes.push({ type: entry[0], value: convert(prefix + name, entry[1], value) });
  }
  return attributes;
}

/** Attributes read back, as a typed template; names given as numbers come back under CKA_… keys. */
export function fromAttributes(results: AttributeResult[]): Template & Record<string, unknown> {
  const template: Record<string, unknown> = {};
  for (const result of results) {
    const name = attributeName(result.type);
    if (result.value === null) continue;
    if (name === undefined) {
      template[C.CKA_NAMES[Number(result.type)] ?? `CKA_0x${result.type.toString(16)}`] = result.value;
      continue;
    }
    const kind = ATTRIBUTES[name][1];
    if (kind === 'class') template[name] = nameOf(OBJECT_CLASSES, result.value as number);
    else if (kind === 'keyType') template[name] = nameOf(KEY_TYPES, result.value as number);
    else if (kind === 'certType') template[name] = nameOf(CERTIFICATE_TYPES, result.value as number);
    else if (kind === 'template') template[name] = fromAttributes(result.value as AttributeResult[]);
    else template[name] = result.value;
  }
  return template as Template & Record<string, unknown>;
}
