/**
 * Validity periods (RFC 5280 section 4.1.2.5): not-before backdated a little for clock skew
 * between the CA and relying parties, not-after bounded by the profile and never past the
 * issuer's own not-after. Times are whole seconds: UTCTime through 2049, GeneralizedTime after.
 */
import { CaError } from './errors';
import { TAG, sequence } from './der-writer';

const DAY_MS = 86_400_000;

/** How long a certificate should live: a number of days (fractions allowed), or explicit bounds. */
export interface ValidityRequest {
  /** Lifetime from now, in days; `1 / 24` is one hour. */
  validityDays?: number;
  /** Explicit not-after (instead of validityDays). */
  notAfter?: Date;
  /** Explicit not-before; default now minus the CA's backdate. */
  notBefore?: Date;
}

export interface ValidityPolicy {
  now: Date;
  backdateSeconds: number;
  defaultDays: number;
  maxDays: number;
  issuerNotBefore?: Date;
  issuerNotAfter?: Date;
  /** What to do when the request runs past the issuer's not-after. */
  overflow: 'clamp' | 'reject';
}

function wholeSeconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

// Time values must be representable: UTCTime covers 1950-2049, GeneralizedTime up to 9999.
const MIN_MS = Date.UTC(1950, 0, 1);
const MAX_MS = Date.UTC(10000, 0, 1) - 1000;

/** Milliseconds of a Date argument, checked to be valid and in range (number checks: this runs per certificate). */
function dateMs(d: unknown, what: string): number {
  const ms = d instanceof Date ? d.getTime() : NaN;
  if (Number.isNaN(ms)) throw new CaError('INVALID_ARGUMENT', `${what} must be a valid Date`);
  if (ms < MIN_MS || ms > MAX_MS) throw new CaError('INVALID_ARGUMENT', `${what} must fall in the years 1950-9999`);
  return ms;
}

/** The validity window for a request under a policy. */
export function computeValidity(req: ValidityRequest, policy: ValidityPolicy): { notBefore: Date; notAfter: Date } {
  const now = wholeSeconds(policy.now.getTime());
  if (req.validityDays !== undefined && req.notAfter !== undefined) {
    throw new CaError('INVALID_ARGUMENT', 'give either validityDays or notAfter, not both');
  }
  let notBefore = req.notBefore !== undefined ? wholeSeconds(dateMs(req.notBefore, 'notBefore')) : now - policy.backdateSeconds * 1000;
  if (policy.issuerNotBefore && notBefore < policy.issuerNotBefore.getTime()) notBefore = policy.issuerNotBefore.getTime();

  let notAfter: number;
  if (req.notAfter !== undefined) {
    notAfter = wholeSeconds(dateMs(req.notAfter, 'notAfter'));
  } else {
    const days = req.validityDays ?? policy.defaultDays;
    if (typeof days !== 'number' || !Number.isFinite(days) || days <= 0) {
      throw new CaError('INVALID_ARGUMENT', `validityDays must be a positive number, got ${String(days)}`);
    }
    notAfter = wholeSeconds(now + days * DAY_MS);
  }
  if (notAfter - now > policy.maxDays * DAY_MS) {
    throw new CaError('POLICY_VIOLATION', `the requested validity exceeds this profile's maximum of ${policy.maxDays} days`);
  }
  if (policy.issuerNotAfter && notAfter > policy.issuerNotAfter.getTime()) {
    if (policy.overflow === 'reject') {
      throw new CaError('POLICY_VIOLATION', `the requested not-after is past the issuer's not-after (${policy.issuerNotAfter.toISOString()})`);
    }
    notAfter = policy.issuerNotAfter.getTime();
  }
  if (notAfter <= now || notAfter <= notBefore) {
    throw new CaError('POLICY_VIOLATION', `the validity window is empty (not-before ${new Date(notBefore).toISOString()}, not-after ${new Date(notAfter).toISOString()}); is the issuer expired?`);
  }
  if (notBefore < MIN_MS || notAfter > MAX_MS) throw new CaError('INVALID_ARGUMENT', 'the validity must fall in the years 1950-9999');
  return { notBefore: new Date(notBefore), notAfter: new Date(notAfter) };
}

function put2(out: Buffer, at: number, n: number): void {
  out[at] = 0x30 + Math.floor(n / 10);
  out[at + 1] = 0x30 + (n % 10);
}

/**
 * UTCTime (1950-2049) or GeneralizedTime, `...Z`, whole seconds, written digit by digit.
 * `generalized` forces GeneralizedTime (e.g. for invalidityDate, which is always one).
 */
export function encodeTime(date: Date, generalized = false): Buffer {
  const year = date.getUTCFullYear();
  const utc = !generalized && year >= 1950 && year <= 2049;
  const digits = utc ? 12 : 14;
  const out = Buffer.allocUnsafe(3 + digits);
  out[0] = utc ? TAG.UTC_TIME : TAG.GENERALIZED_TIME;
  out[1] = digits + 1;
  let at = 2;
  if (!utc) {
    put2(out, at, Math.floor(year / 100));
    at += 2;
  }
  put2(out, at, year % 100);
  put2(out, at + 2, date.getUTCMonth() + 1);
  put2(out, at + 4, date.getUTCDate());
  put2(out, at + 6, date.getUTCHours());
  put2(out, at + 8, date.getUTCMinutes());
  put2(out, at + 10, date.getUTCSeconds());
  out[at + 12] = 0x5a; // 'Z'
  return out;
}

/** Validity ::= SEQUENCE { notBefore Time, notAfter Time }. */
export function encodeValidity(notBefore: Date, notAfter: Date): Buffer {
  return sequence([encodeTime(notBefore), encodeTime(notAfter)]);
}

/** Parses a DER UTCTime/GeneralizedTime content (as found in certificates) to a Date. */
export function decodeTime(tag: number, text: string): Date {
  const m = tag === TAG.UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) throw new CaError('CERTIFICATE_INVALID', `"${text}" is not a DER time`);
  let year = Number(m[1]);
  if (tag === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}
