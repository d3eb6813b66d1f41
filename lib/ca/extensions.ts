/**
 * Certificate extensions written directly as DER (RFC 5280 section 4.2): the ones that are
 * small, fixed-shape, or built per certificate (SKI, SAN). Each builder returns a complete
 * `Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }`.
 */
import { CaError } from './errors';
import { readTlv } from './der-reader';
import { TAG, boolean, explicit, implicitPrimitive, integer, lengthOfLength, namedBitString, oid, sequence, writeHeader } from './der-writer';
import { DOTTED_OID, EKU_OIDS, OID } from './oids';

/** An extension supplied by the caller: OID, criticality and the DER of the extension value. */
export interface ExtraExtension {
  oid: string;
  critical?: boolean;
  /** DER of the value that goes inside extnValue's OCTET STRING. */
  value: Buffer | Uint8Array;
}

export type KeyUsageName =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

const KEY_USAGE_BITS: Readonly<Record<KeyUsageName, number>> = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
};

/** DER value of BOOLEAN TRUE, the only criticality DER writes (FALSE is the DEFAULT and omitted). */
const CRITICAL = boolean(true);

/** An Extension with `value` (the DER inside extnValue), written with one allocation. */
export function extension(extnId: string, critical: boolean, value: Uint8Array): Buffer {
  const id = oid(extnId);
  const octetLength = 1 + lengthOfLength(value.length) + value.length;
  const length = id.length + (critical ? CRITICAL.length : 0) + octetLength;
  const out = Buffer.allocUnsafe(1 + lengthOfLength(length) + length);
  let at = writeHeader(out, 0, TAG.SEQUENCE, length);
  out.set(id, at);
  at += id.length;
  if (critical) {
    out.set(CRITICAL, at);
    at += CRITICAL.length;
  }
  at = writeHeader(out, at, TAG.OCTET_STRING, value.length);
  out.set(value, at);
  return out;
}

/** basicConstraints, always critical (RFC 5280 requires it for CAs; harmless for end entities). */
export function basicConstraintsExtension(ca: boolean, pathLen?: number): Buffer {
  const parts: Buffer[] = [];
  if (ca) parts.push(boolean(true));
  if (pathLen !== undefined) {
    if (!ca) throw new CaError('POLICY_VIOLATION', 'pathLen is only meaningful in a CA certificate');
    parts.push(integer(pathLen));
  }
  return extension(OID.basicConstraints, true, sequence(parts));
}

/** keyUsage, critical (RFC 5280 section 4.2.1.3: SHOULD be critical). */
export function keyUsageExtension(usages: readonly KeyUsageName[]): Buffer {
  if (usages.length === 0) throw new CaError('INVALID_ARGUMENT', 'keyUsage must name at least one usage');
  const bits = usages.map((u) => {
    const bit = KEY_USAGE_BITS[u];
    if (bit === undefined) throw new CaError('INVALID_ARGUMENT', `unknown key usage "${u}" (known: ${Object.keys(KEY_USAGE_BITS).join(', ')})`);
    return bit;
  });
  return extension(OID.keyUsage, true, namedBitString(bits));
}

/** The OID of an extended key usage name (serverAuth, clientAuth, ...) or a dotted OID. */
export function ekuOid(purpose: string): string {
  const known = EKU_OIDS[purpose];
  if (known) return known;
  if (DOTTED_OID.test(purpose)) return purpose;
  throw new CaError('INVALID_ARGUMENT', `unknown extended key usage "${purpose}" (known: ${Object.keys(EKU_OIDS).join(', ')}, or a dotted OID)`);
}

/** extKeyUsage, non-critical (as the CA/Browser Forum and most profiles expect). */
export function extendedKeyUsageExtension(purposes: readonly string[]): Buffer {
  if (purposes.length === 0) throw new CaError('INVALID_ARGUMENT', 'extendedKeyUsage must name at least one purpose');
  const oids = [...new Set(purposes.map(ekuOid))];
  return extension(OID.extKeyUsage, false, sequence(oids.map(oid)));
}

/** subjectKeyIdentifier, non-critical (RFC 5280 section 4.2.1.2). */
export function subjectKeyIdentifierExtension(keyId: Uint8Array): Buffer {
  const value = Buffer.allocUnsafe(2 + keyId.length);
  writeHeader(value, 0, TAG.OCTET_STRING, keyId.length);
  value.set(keyId, 2);
  return extension(OID.subjectKeyIdentifier, false, value);
}

/** authorityKeyIdentifier with only keyIdentifier [0], non-critical (RFC 5280 section 4.2.1.1). */
export function authorityKeyIdentifierExtension(keyId: Uint8Array): Buffer {
  return extension(OID.authorityKeyIdentifier, false, sequence([implicitPrimitive(0, keyId)]));
}

/** subjectAltName; critical exactly when the subject is empty (RFC 5280 section 4.2.1.6). */
export function subjectAltNameExtension(generalNames: Buffer, critical: boolean): Buffer {
  return extension(OID.subjectAltName, critical, generalNames);
}

/** Extensions the CA computes itself; callers cannot supply them as extras. */
const CA_MANAGED = new Set<string>([
  OID.basicConstraints,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.subjectAltName,
]);

/**
 * Validates caller-supplied extensions and encodes them. Refused: extensions the CA computes
 * (basicConstraints, SKI, AKI, SAN: so an end-entity profile can never be turned into a CA),
 * OIDs the profile already sets, duplicates, and values that are not one DER value.
 */
export function encodeExtraExtensions(extras: readonly ExtraExtension[] | undefined, profileOids: ReadonlySet<string>): Buffer[] {
  if (extras === undefined) return [];
  if (!Array.isArray(extras)) throw new CaError('INVALID_ARGUMENT', 'extensions must be an array of { oid, critical?, value }');
  if (extras.length > 20) throw new CaError('POLICY_VIOLATION', 'at most 20 extra extensions are allowed');
  const seen = new Set<string>();
  return extras.map((e) => {
    if (typeof e !== 'object' || e === null || typeof e.oid !== 'string' || !DOTTED_OID.test(e.oid)) {
      throw new CaError('INVALID_ARGUMENT', 'each extra extension needs a dotted oid');
    }
    if (CA_MANAGED.has(e.oid)) {
      throw new CaError('POLICY_VIOLATION', `extension ${e.oid} is set by the CA from the profile and request and cannot be supplied`);
    }
    if (profileOids.has(e.oid) || seen.has(e.oid)) throw new CaError('POLICY_VIOLATION', `extension ${e.oid} would appear twice`);
    seen.add(e.oid);
    if (!(e.value instanceof Uint8Array) || !isSingleDerValue(e.value)) {
      throw new CaError('INVALID_ARGUMENT', `extension ${e.oid}: value must be the DER of a single ASN.1 value`);
    }
    if (e.value.length > 4096) throw new CaError('POLICY_VIOLATION', `extension ${e.oid} is larger than 4096 bytes`);
    return extension(e.oid, e.critical === true, e.value);
  });
}

function isSingleDerValue(bytes: Uint8Array): boolean {
  try {
    return readTlv(bytes, 0).end === bytes.length;
  } catch {
    return false;
  }
}

/** `[3] EXPLICIT Extensions` around already-encoded Extension values. */
export function extensionsField(extensions: readonly Uint8Array[]): Buffer {
  return explicit(3, [sequence(extensions)]);
}
