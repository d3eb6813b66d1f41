/**
 * Errors as HTTP answers. Callers get a JSON body { error: { code, message } } with a stable
 * code: the CaError code for a request the CA refuses (4xx), pool codes for an HSM that is busy
 * (429) or unavailable (503). Unexpected errors are 500 without details (those go to the log).
 */
import { CaError } from '../../lib/ca';
import type { CaErrorCode } from '../../lib/ca';
import { Pkcs11Error } from '../../lib/errors';
import { HsmUnavailableError, PoolClosedError, QueueFullError, RequestTimeoutError } from '../../lib/pool/errors';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** CaError codes that describe the request, not the CA: the client can fix them. */
const CLIENT_CA_ERRORS: ReadonlySet<CaErrorCode> = new Set<CaErrorCode>([
  'INVALID_ARGUMENT',
  'INVALID_NAME',
  'INVALID_SAN',
  'CSR_MALFORMED',
  'CSR_SIGNATURE_INVALID',
  'UNSUPPORTED_ALGORITHM',
  'UNSUPPORTED_KEY',
  'POLICY_VIOLATION',
]);

export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  const http = classify(error);
  // The original error stays attached for the log; the client sees only the HttpError's message.
  (http as { cause?: unknown }).cause = error;
  return http;
}

function classify(error: unknown): HttpError {
  if (error instanceof CaError) {
    return CLIENT_CA_ERRORS.has(error.code)
      ? new HttpError(400, error.code, error.message)
      : new HttpError(500, error.code, 'the CA could not issue the certificate');
  }
  // Back-pressure: the client should slow down and retry.
  if (error instanceof QueueFullError) return new HttpError(429, error.code, 'the signing queue is full; retry shortly', { 'Retry-After': '1' });
  if (error instanceof HsmUnavailableError) return new HttpError(503, error.code, 'the HSM is unavailable', { 'Retry-After': '5' });
  if (error instanceof RequestTimeoutError) return new HttpError(503, error.code, 'the HSM did not sign in time', { 'Retry-After': '1' });
  if (error instanceof PoolClosedError) return new HttpError(503, 'SHUTTING_DOWN', 'the service is shutting down', { 'Retry-After': '1' });
  if (error instanceof Pkcs11Error) return new HttpError(500, 'HSM_ERROR', `the HSM failed: ${error.name}`);
  return new HttpError(500, 'INTERNAL', 'internal error');
}
