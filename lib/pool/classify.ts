import { Pkcs11Error } from '../errors';

/**
 * What a failed request means for the pool:
 * - 'device': the device or the connection to it is gone; open the circuit breaker.
 * - 'session': this session is unusable; replace it (logging in again) and retry once.
 * - 'key': the key handle went stale; find the key again, check it, retry once.
 * - 'busy': the session still has an operation active; replace it and retry once.
 * - 'auth': the PIN is wrong or locked; never retried.
 * - 'request': the request itself is bad (data length, mechanism…); reject it, keep the session.
 */
export type Failure = 'device' | 'session' | 'key' | 'busy' | 'auth' | 'request';

const BY_NAME: Record<string, Failure> = {
  CKR_DEVICE_REMOVED: 'device',
  CKR_TOKEN_NOT_PRESENT: 'device',
  CKR_CRYPTOKI_NOT_INITIALIZED: 'device',
  CKR_TOKEN_NOT_RECOGNIZED: 'device',
  CKR_SESSION_HANDLE_INVALID: 'session',
  CKR_SESSION_CLOSED: 'session',
  CKR_USER_NOT_LOGGED_IN: 'session',
  CKR_DEVICE_ERROR: 'session',
  CKR_GENERAL_ERROR: 'session',
  CKR_OBJECT_HANDLE_INVALID: 'key',
  CKR_KEY_HANDLE_INVALID: 'key',
  CKR_OPERATION_ACTIVE: 'busy',
  // The binding gave up on a module that kept answering "too small": its operation is still active.
  CKR_BUFFER_TOO_SMALL: 'busy',
  CKR_PIN_INCORRECT: 'auth',
  CKR_PIN_LOCKED: 'auth',
  CKR_PIN_EXPIRED: 'auth',
  CKR_PIN_INVALID: 'auth',
  CKR_PIN_LEN_RANGE: 'auth',
};

// Calls that use no session. A device error from one of these says the device (or the
// connection to it, e.g. p11-kit-client after its server died) is gone, not one session.
const SESSIONLESS = new Set([
  'C_GetInfo',
  'C_GetSlotList',
  'C_GetSlotInfo',
  'C_GetTokenInfo',
  'C_GetMechanismList',
  'C_GetMechanismInfo',
  'C_OpenSession',
]);

export function classify(error: unknown): Failure {
  if (error instanceof Pkcs11Error) {
    const kind = BY_NAME[error.name] ?? 'request';
    if (kind === 'session' && SESSIONLESS.has(error.function)) return 'device';
    return kind;
  }
  // A TypeError is the binding refusing the request's own arguments (checked by name: the
  // binding's errors may come from another realm, e.g. under jest). Anything else that is not a
  // PKCS#11 answer (the binding refusing a closed module, say) means the device is out of reach.
  return (error as Error | undefined)?.name === 'TypeError' ? 'request' : 'device';
}
