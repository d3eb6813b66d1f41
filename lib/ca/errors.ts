/**
 * One error type for everything the CA refuses, with a stable `code` so callers (and
 * provisioning APIs) can map refusals to responses without parsing messages.
 */

export type CaErrorCode =
  /** An argument has the wrong shape or is out of range. */
  | 'INVALID_ARGUMENT'
  /** A distinguished name could not be parsed or breaks a bound (RFC 4514 / RFC 5280). */
  | 'INVALID_NAME'
  /** A subjectAltName entry is malformed or not allowed by the profile. */
  | 'INVALID_SAN'
  /** The CSR is not well-formed DER PKCS#10. */
  | 'CSR_MALFORMED'
  /** The CSR's self-signature does not verify. */
  | 'CSR_SIGNATURE_INVALID'
  /** A signature algorithm that this CA does not accept. */
  | 'UNSUPPORTED_ALGORITHM'
  /** A public key type, curve or size that this CA does not certify. */
  | 'UNSUPPORTED_KEY'
  /** The HSM key does not match the CA certificate. */
  | 'KEY_MISMATCH'
  /** The signer's private key may not sign (CKA_SIGN is false). */
  | 'SIGNER_CANNOT_SIGN'
  /** The HSM returned something that is not a signature of the expected shape. */
  | 'SIGNATURE_FAILED'
  /** The request breaks the profile or the chain's constraints (CA flag, pathLen, validity...). */
  | 'POLICY_VIOLATION'
  /** A certificate handed to the CA (its own, or its chain) is malformed or inconsistent. */
  | 'CERTIFICATE_INVALID'
  /** No unused serial number could be found (the registry kept refusing). */
  | 'SERIAL_EXHAUSTED';

export class CaError extends Error {
  readonly code: CaErrorCode;

  constructor(code: CaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message);
    this.name = 'CaError';
    this.code = code;
    if (options && 'cause' in options) (this as { cause?: unknown }).cause = options.cause;
  }
}

/** Wraps a lower-level failure (a parser's message) into a CaError with context. */
export function wrapError(code: CaErrorCode, context: string, cause: unknown): CaError {
  if (cause instanceof CaError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  // A TypeError or RangeError from inside the DER decoder (asn1js reading a malformed value) is
  // a statement about the input, not a bug to chase: keep its text, not the engine error itself.
  const name = (cause as Error | undefined)?.name;
  const kept = name === 'TypeError' || name === 'RangeError' ? new Error(`malformed DER: ${detail}`) : cause;
  return new CaError(code, `${context}: ${detail}`, { cause: kept });
}
