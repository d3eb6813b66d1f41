/**
 * Revocation and X.509 v2 CRLs (RFC 5280 section 5): a list of revoked serials with reason
 * and dates, and the TBSCertList built from it with the CRL number and AKI extensions.
 */
import { CaError } from './errors';
import { TAG, explicit, integer, sequence, unsignedInteger } from './der-writer';
import { extension } from './extensions';
import { OID } from './oids';
import { normalizeSerial } from './serials';
import { encodeTime } from './validity';

/** CRLReason (RFC 5280 section 5.3.1); removeFromCRL is for delta CRLs only and not accepted here. */
export type RevocationReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'cACompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'certificateHold'
  | 'privilegeWithdrawn'
  | 'aACompromise';

const REASON_CODES: Readonly<Record<RevocationReason, number>> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
  aACompromise: 10,
};

export interface RevocationEntry {
  /** Serial as lower-case hex of its magnitude. */
  serial: string;
  reason: RevocationReason;
  /** When the CA revoked it. */
  date: Date;
  /** When the key is known or suspected to have been compromised, if earlier. */
  invalidityDate?: Date;
}

export interface RevokeOptions {
  reason?: RevocationReason;
  /** Revocation date; default now. */
  date?: Date;
  invalidityDate?: Date;
}

function checkDate(d: Date | undefined, what: string): void {
  if (d !== undefined && (!(d instanceof Date) || Number.isNaN(d.getTime()))) throw new CaError('INVALID_ARGUMENT', `${what} must be a valid Date`);
}

/** The revoked serials of one CA, in revocation order. */
export class RevocationList {
  private readonly entries = new Map<string, RevocationEntry>();

  constructor(initial: readonly RevocationEntry[] = []) {
    for (const e of initial) this.revoke(e.serial, e, e.date);
  }

  /**
   * Records a revocation. Revoking again is allowed only to move a certificateHold to a final
   * reason; other repeats return the existing entry when identical and throw otherwise.
   */
  revoke(serial: string | Buffer, options: RevokeOptions, now: Date): RevocationEntry {
    const key = normalizeSerial(serial).toString('hex');
    const reason = options.reason ?? 'unspecified';
    if (!Object.prototype.hasOwnProperty.call(REASON_CODES, reason)) {
      throw new CaError('INVALID_ARGUMENT', `unknown revocation reason "${String(reason)}" (known: ${Object.keys(REASON_CODES).join(', ')})`);
    }
    checkDate(options.date, 'date');
    checkDate(options.invalidityDate, 'invalidityDate');
    const entry: RevocationEntry = { serial: key, reason, date: new Date(Math.floor((options.date ?? now).getTime() / 1000) * 1000) };
    if (options.invalidityDate) entry.invalidityDate = new Date(Math.floor(options.invalidityDate.getTime() / 1000) * 1000);
    const existing = this.entries.get(key);
    if (existing && existing.reason !== 'certificateHold') {
      if (existing.reason === entry.reason) return existing;
      throw new CaError('POLICY_VIOLATION', `serial ${key} is already revoked (${existing.reason}); only certificateHold can be changed`);
    }
    this.entries.set(key, entry);
    return entry;
  }

  /** Lifts a certificateHold: the serial leaves the next CRL. Other reasons are final. */
  release(serial: string | Buffer): void {
    const key = normalizeSerial(serial).toString('hex');
    const existing = this.entries.get(key);
    if (!existing) throw new CaError('INVALID_ARGUMENT', `serial ${key} is not revoked`);
    if (existing.reason !== 'certificateHold') throw new CaError('POLICY_VIOLATION', `serial ${key} is revoked for ${existing.reason}, which is final`);
    this.entries.delete(key);
  }

  get(serial: string | Buffer): RevocationEntry | undefined {
    return this.entries.get(normalizeSerial(serial).toString('hex'));
  }

  list(): RevocationEntry[] {
    return [...this.entries.values()].map((e) => ({ ...e }));
  }
}

/** One revokedCertificates entry; reasonCode is omitted for "unspecified", as RFC 5280 section 5.3.1 asks. */
function encodeEntry(e: RevocationEntry): Buffer {
  const extensions: Buffer[] = [];
  if (e.reason !== 'unspecified') extensions.push(extension(OID.crlReason, false, Buffer.from([TAG.ENUMERATED, 1, REASON_CODES[e.reason]])));
  if (e.invalidityDate) extensions.push(extension(OID.invalidityDate, false, encodeTime(e.invalidityDate, true)));
  const fields = [unsignedInteger(Buffer.from(e.serial, 'hex')), encodeTime(e.date)];
  if (extensions.length > 0) fields.push(sequence(extensions));
  return sequence(fields);
}

export interface CrlFields {
  signatureAlgorithm: Buffer;
  issuer: Buffer;
  /** The CA's AKI Extension (the issuer's key identifier). */
  authorityKeyIdentifier: Buffer;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: readonly RevocationEntry[];
}

/** DER TBSCertList, version v2 (INTEGER 1). */
export function assembleTbsCertList(f: CrlFields): Buffer {
  if (f.crlNumber < 0n || f.crlNumber >= 1n << 159n) throw new CaError('INVALID_ARGUMENT', 'the CRL number must fit in 20 octets');
  if (f.nextUpdate.getTime() <= f.thisUpdate.getTime()) throw new CaError('INVALID_ARGUMENT', 'nextUpdate must be after thisUpdate');
  const parts = [integer(1), f.signatureAlgorithm, f.issuer, encodeTime(f.thisUpdate), encodeTime(f.nextUpdate)];
  // An empty revokedCertificates must be absent, not an empty SEQUENCE.
  if (f.entries.length > 0) parts.push(sequence(f.entries.map(encodeEntry)));
  parts.push(explicit(0, [sequence([f.authorityKeyIdentifier, extension(OID.crlNumber, false, integer(f.crlNumber))])]));
  return sequence(parts);
}
