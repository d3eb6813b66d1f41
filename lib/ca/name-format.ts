/** DER Name back to structure and to an RFC 4514 string (for results, errors and policy checks). */
import { CaError } from './errors';
import { children, content, decodeOid, expectTag, readWhole } from './der-reader';
import { TAG } from './der-writer';
import { attributeName } from './name-attributes';

export interface DecodedAttribute {
  /** Short name when known (`CN`), else the dotted OID. */
  type: string;
  oid: string;
  /** The text for string types; the whole DER value otherwise. */
  value: string | Buffer;
}

function decodeString(tag: number, bytes: Buffer): string | undefined {
  switch (tag) {
    case TAG.UTF8_STRING:
      return bytes.toString('utf8');
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case 0x12: // NumericString
    case 0x1a: // VisibleString
    case 0x14: // TeletexString, read as Latin-1 as most software does
      return bytes.toString('latin1');
    case 0x1e: // BMPString: UTF-16BE
      return Buffer.from(bytes).swap16().toString('utf16le');
    default:
      return undefined;
  }
}

/** The RDNs of a DER Name in ASN.1 order (most significant first). */
export function decodeName(der: Buffer): DecodedAttribute[][] {
  try {
    const name = readWhole(der, TAG.SEQUENCE, 'Name');
    return children(der, name).map((rdn) => {
      expectTag(rdn, TAG.SET, 'RelativeDistinguishedName');
      return children(der, rdn).map((atv) => {
        expectTag(atv, TAG.SEQUENCE, 'AttributeTypeAndValue');
        const [type, value] = children(der, atv);
        expectTag(type, TAG.OID, 'attribute type');
        if (!value) throw new Error('attribute without a value');
        const oidValue = decodeOid(content(der, type));
        const text = value.tag === 0x1e && (value.end - value.contentStart) % 2 ? undefined : decodeString(value.tag, content(der, value));
        return { type: attributeName(oidValue), oid: oidValue, value: text ?? Buffer.from(der.subarray(value.start, value.end)) };
      });
    });
  } catch (e) {
    throw new CaError('INVALID_NAME', `malformed DER Name: ${(e as Error).message}`);
  }
}

function escapeValue(value: string): string {
  let out = value.replace(/["+,;<>\\]/g, (c) => '\\' + c);
  // eslint-disable-next-line no-control-regex
  out = out.replace(/[\x00-\x1f\x7f]/g, (c) => '\\' + c.charCodeAt(0).toString(16).padStart(2, '0'));
  if (out.startsWith(' ') || out.startsWith('#')) out = '\\' + out;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = out.slice(0, -1) + '\\ ';
  return out;
}

/** RFC 4514 string of a DER Name (most specific RDN first, e.g. `CN=x,O=y,C=GB`). */
export function formatName(der: Buffer): string {
  return decodeName(der)
    .reverse()
    .map((rdn) =>
      rdn
        .map((a) => `${a.type}=${typeof a.value === 'string' ? escapeValue(a.value) : '#' + a.value.toString('hex')}`)
        .join('+'),
    )
    .join(',');
}

/** Values of one attribute type (e.g. all CNs), in ASN.1 order. */
export function attributeValues(der: Buffer, oidValue: string): string[] {
  const out: string[] = [];
  for (const rdn of decodeName(der)) for (const a of rdn) if (a.oid === oidValue && typeof a.value === 'string') out.push(a.value);
  return out;
}
