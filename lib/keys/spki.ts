/**
 * SubjectPublicKeyInfo (RFC 5280 section 4.1) to and from PKCS#11 public key attributes,
 * for EC named curves (RFC 5480), RSA (RFC 3279) and Ed25519 (RFC 8410).
 */
import {
  DerError,
  TAG_NULL,
  TAG_OCTET_STRING,
  TAG_OID,
  TAG_SEQUENCE,
  decodeOid,
  derBitString,
  derNull,
  derOctetString,
  derOid,
  derSequence,
  derUnsignedInteger,
  expectTag,
  readBitStringBytes,
  readChildren,
  readOnly,
  readTlv,
  readUnsignedInteger,
} from '../asn1/der';

const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
const OID_ED25519 = '1.3.101.112';

interface Curve {
  name: string;
  /** DER OBJECT IDENTIFIER, exactly as CKA_EC_PARAMS holds it. */
  params: Buffer;
  /** Field size in bytes. */
  size: number;
}

const CURVES: readonly Curve[] = [
  { name: 'P-256', params: Buffer.from('06082a8648ce3d030107', 'hex'), size: 32 },
  { name: 'P-384', params: Buffer.from('06052b81040022', 'hex'), size: 48 },
  { name: 'P-521', params: Buffer.from('06052b81040023', 'hex'), size: 66 },
];

const ED25519_OID_PARAMS = Buffer.from('06032b6570', 'hex');
const ED25519_NAME_PARAMS = Buffer.from('130c656477617264733235353139', 'hex'); // PrintableString "edwards25519"
const ED25519_KEY_SIZE = 32;

export type PublicKeyAttributes =
  | { keyType: 'ec'; ecParams: Buffer; ecPoint: Buffer /* DER OCTET STRING wrapped */ }
  | { keyType: 'rsa'; modulus: Buffer; publicExponent: Buffer }
  | { keyType: 'ed25519'; ecParams: Buffer; ecPoint: Buffer /* DER OCTET STRING wrapped */ };

/** The named curve for a CKA_EC_PARAMS value, or undefined (explicit parameters are not supported). */
export function curveForParams(ecParams: Buffer): Curve | undefined {
  return CURVES.find((c) => c.params.equals(ecParams));
}

/** True for either Ed25519 CKA_EC_PARAMS form: the curve name or the RFC 8410 OID. */
export function isEd25519Params(ecParams: Buffer): boolean {
  return ecParams.equals(ED25519_OID_PARAMS) || ecParams.equals(ED25519_NAME_PARAMS);
}

export function ecPublicKeyToSpki(ecParams: Buffer, ecPoint: Buffer): Buffer {
  const curve = curveForParams(ecParams);
  if (!curve) throw new DerError('SPKI: CKA_EC_PARAMS is not the OID of P-256, P-384 or P-521');
  const point = uncompressedPoint(ecPoint, curve);
  return derSequence(derSequence(derOid(OID_EC_PUBLIC_KEY), curve.params), derBitString(point));
}

export function rsaPublicKeyToSpki(modulus: Buffer, publicExponent: Buffer): Buffer {
  if (isZero(modulus)) throw new DerError('SPKI: RSA modulus is empty or zero');
  if (isZero(publicExponent)) throw new DerError('SPKI: RSA public exponent is empty or zero');
  const rsaPublicKey = derSequence(derUnsignedInteger(modulus), derUnsignedInteger(publicExponent));
  return derSequence(derSequence(derOid(OID_RSA_ENCRYPTION), derNull()), derBitString(rsaPublicKey));
}

export function ed25519PublicKeyToSpki(ecPoint: Buffer): Buffer {
  const key = unwrapOctetString(ecPoint, ED25519_KEY_SIZE, () => true);
  if (!key) throw new DerError(`SPKI: Ed25519 CKA_EC_POINT must be ${ED25519_KEY_SIZE} bytes, raw or in an OCTET STRING`);
  // RFC 8410: the parameters are absent for Ed25519.
  return derSequence(derSequence(derOid(OID_ED25519)), derBitString(key));
}

/** Parses an SPKI into the attributes a PKCS#11 public key object carries. */
export function spkiToPublicKeyAttributes(spki: Buffer): PublicKeyAttributes {
  const outer = readOnly(spki, TAG_SEQUENCE, 'SubjectPublicKeyInfo');
  const [algorithm, subjectPublicKey, ...extra] = readChildren(outer.value);
  if (!algorithm || !subjectPublicKey || extra.length > 0) {
    throw new DerError('SPKI: SubjectPublicKeyInfo must hold exactly an AlgorithmIdentifier and a BIT STRING');
  }
  expectTag(algorithm, TAG_SEQUENCE, 'AlgorithmIdentifier');
  const [oidTlv, params, ...more] = readChildren(algorithm.value);
  if (!oidTlv || more.length > 0) throw new DerError('SPKI: malformed AlgorithmIdentifier');
  expectTag(oidTlv, TAG_OID, 'algorithm OBJECT IDENTIFIER');
  const algorithmOid = decodeOid(oidTlv.value);
  const keyBytes = readBitStringBytes(subjectPublicKey, 'subjectPublicKey');

  switch (algorithmOid) {
    case OID_EC_PUBLIC_KEY: {
      if (!params || params.tag !== TAG_OID) throw new DerError('SPKI: EC key without a namedCurve parameter');
      const ecParams = algorithm.value.subarray(params.start, params.end);
      const curve = curveForParams(ecParams);
      if (!curve) throw new DerError(`SPKI: unsupported EC curve ${decodeOid(params.value)}`);
      if (keyBytes.length !== 1 + 2 * curve.size || keyBytes[0] !== 0x04) {
        throw new DerError(`SPKI: ${curve.name} public key must be an uncompressed point of ${1 + 2 * curve.size} bytes`);
      }
      return { keyType: 'ec', ecParams: Buffer.from(ecParams), ecPoint: derOctetString(keyBytes) };
    }
    case OID_RSA_ENCRYPTION: {
      if (!params || params.tag !== TAG_NULL || params.value.length !== 0) {
        throw new DerError('SPKI: rsaEncryption parameters must be NULL');
      }
      const rsaKey = readOnly(keyBytes, TAG_SEQUENCE, 'RSAPublicKey');
      const ints = readChildren(rsaKey.value);
      if (ints.length !== 2) throw new DerError('SPKI: RSAPublicKey must hold exactly a modulus and an exponent');
      const modulus = readUnsignedInteger(ints[0], 'RSA modulus');
      const publicExponent = readUnsignedInteger(ints[1], 'RSA public exponent');
      if (isZero(modulus) || isZero(publicExponent)) throw new DerError('SPKI: RSA modulus or exponent is zero');
      return { keyType: 'rsa', modulus: Buffer.from(modulus), publicExponent: Buffer.from(publicExponent) };
    }
    case OID_ED25519: {
      if (params) throw new DerError('SPKI: Ed25519 AlgorithmIdentifier must not have parameters');
      if (keyBytes.length !== ED25519_KEY_SIZE) throw new DerError(`SPKI: Ed25519 key must be ${ED25519_KEY_SIZE} bytes`);
      // The OID form is what SoftHSM and PKCS#11 3.0 modules generally produce.
      return { keyType: 'ed25519', ecParams: Buffer.from(ED25519_OID_PARAMS), ecPoint: derOctetString(keyBytes) };
    }
    default:
      throw new DerError(`SPKI: unsupported public key algorithm ${algorithmOid}`);
  }
}

export function spkiToPem(der: Buffer): string {
  if (!Buffer.isBuffer(der)) throw new TypeError('spkiToPem: der must be a Buffer');
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PUBLIC KEY-----\n${lines.join('\n')}\n-----END PUBLIC KEY-----\n`;
}

/** DER from the first `label` block of RFC 7468 text (strict base64, surrounding text ignored). */
export function pemToDer(pem: string, label: string): Buffer {
  if (!/^[A-Z0-9]+( [A-Z0-9]+)*$/.test(label)) throw new DerError('PEM: invalid label');
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  const from = pem.indexOf(begin);
  if (from < 0) throw new DerError(`PEM: no "${begin}" line`);
  const to = pem.indexOf(end, from + begin.length);
  if (to < 0) throw new DerError(`PEM: no "${end}" line`);
  const body = pem.slice(from + begin.length, to).replace(/[ \t\r\n]/g, '');
  if (body.length === 0 || body.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(body)) {
    throw new DerError(`PEM: the ${label} body is not valid base64`);
  }
  const der = Buffer.from(body, 'base64');
  // Buffer's decoder tolerates non-zero pad bits; re-encoding catches them.
  if (der.toString('base64') !== body) throw new DerError(`PEM: the ${label} body is not canonical base64`);
  return der;
}

/** A point of a curve, raw (04||X||Y) or wrapped in a DER OCTET STRING; unwrapped and checked. */
function uncompressedPoint(ecPoint: Buffer, curve: Curve): Buffer {
  const length = 1 + 2 * curve.size;
  const point = unwrapOctetString(ecPoint, length, (p) => p[0] === 0x04);
  if (!point) {
    throw new DerError(`SPKI: CKA_EC_POINT is not an uncompressed ${curve.name} point (${length} bytes starting 04), raw or in an OCTET STRING`);
  }
  return point;
}

/**
 * Accepts `length` raw bytes, or an OCTET STRING with exactly such content. The two forms
 * never have the same total length, so the choice is unambiguous.
 */
function unwrapOctetString(value: Buffer, length: number, ok: (content: Buffer) => boolean): Buffer | undefined {
  if (value.length === length) return ok(value) ? Buffer.from(value) : undefined;
  if (value.length === 0 || value[0] !== TAG_OCTET_STRING) return undefined;
  let tlv;
  try {
    tlv = readTlv(value, 0);
  } catch {
    return undefined;
  }
  if (tlv.end !== value.length || tlv.value.length !== length || !ok(tlv.value)) return undefined;
  return Buffer.from(tlv.value);
}

function isZero(b: Buffer): boolean {
  for (const byte of b) if (byte !== 0) return false;
  return true;
}
