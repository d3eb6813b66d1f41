/**
 * What a POST /v1/certificates body asks for. Either a bare CSR (PEM, or DER as
 * application/pkcs10) or JSON { csr, sans?, profile?, validityDays? }. The CSR's signature is
 * verified here, before the request costs an HSM signature.
 *
 * Authorisation is out of scope for this example: it certifies the SANs the CSR (or the JSON)
 * asks for, within what the profile allows. A real service decides which identities a caller may
 * claim before this point.
 */
import { PROFILES, verifyCsr } from '../../lib/ca';
import type { ProfileName, SubjectAltNames, VerifiedCsr } from '../../lib/ca';
import { HttpError } from './http-errors';

export interface CertificateRequest {
  csr: VerifiedCsr;
  sans: SubjectAltNames;
  profile: ProfileName;
  validityDays?: number;
  /** The caller sent JSON and gets JSON back; otherwise PEM. */
  json: boolean;
}

const SAN_KINDS = ['dns', 'ip', 'uri', 'email'] as const;

function bad(message: string): HttpError {
  return new HttpError(400, 'INVALID_REQUEST', message);
}

function parseSans(value: unknown): SubjectAltNames | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('sans must be an object like {"dns": ["a.example"], "ip": ["192.0.2.1"]}');
  const sans: Record<string, string[]> = {};
  for (const [kind, list] of Object.entries(value)) {
    if (!(SAN_KINDS as readonly string[]).includes(kind)) throw bad(`sans.${kind} is not one of ${SAN_KINDS.join(', ')}`);
    if (!Array.isArray(list) || !list.every((v) => typeof v === 'string')) throw bad(`sans.${kind} must be an array of strings`);
    sans[kind] = list;
  }
  return sans;
}

function parseProfile(value: unknown, fallback: ProfileName): ProfileName {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !Object.prototype.hasOwnProperty.call(PROFILES, value)) {
    throw bad(`profile must be one of ${Object.keys(PROFILES).join(', ')}`);
  }
  return value as ProfileName;
}

function parseJson(body: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw bad('the body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('the body must be a JSON object');
  return value as Record<string, unknown>;
}

export function parseCertificateRequest(contentType: string | undefined, body: Buffer, defaultProfile: ProfileName): CertificateRequest {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (body.length === 0) throw bad('the body is empty: send a PEM CSR, or JSON {"csr": "..."}');
  if (type === 'application/json') {
    const request = parseJson(body);
    if (typeof request.csr !== 'string') throw bad('csr must be a PEM string');
    const validityDays = request.validityDays;
    if (validityDays !== undefined && (typeof validityDays !== 'number' || !(validityDays > 0))) throw bad('validityDays must be a positive number');
    // Shape checks first: they are cheap, and the CSR's signature check is not.
    const sans = parseSans(request.sans);
    const profile = parseProfile(request.profile, defaultProfile);
    const csr = verifyCsr(request.csr);
    return { csr, sans: sans ?? csr.requestedSans, profile, validityDays, json: true };
  }
  const pem = body.subarray(0, 64).toString('latin1').includes('-----BEGIN');
  if (!pem && type !== 'application/pkcs10') {
    throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send a PEM CSR, DER as application/pkcs10, or application/json');
  }
  const csr = verifyCsr(pem ? body.toString('latin1') : body);
  return { csr, sans: csr.requestedSans, profile: defaultProfile, json: false };
}
