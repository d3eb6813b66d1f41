/** Base class of the pool's own errors (PKCS#11 failures stay Pkcs11Error). */
export class PoolError extends Error {
  override name = 'PoolError';
  /** A stable code: POOL_QUEUE_FULL, POOL_TIMEOUT, POOL_CLOSED, HSM_UNAVAILABLE. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message);
    this.code = code;
    if (options?.cause !== undefined) (this as Error & { cause?: unknown }).cause = options.cause;
  }
}

/** The bounded queue is full: the caller should shed load. */
export class QueueFullError extends PoolError {
  override name = 'QueueFullError';
  constructor(limit: number) {
    super('POOL_QUEUE_FULL', `the signing queue is full (${limit} requests waiting)`);
  }
}

/** The request's deadline passed. If it had reached the HSM, its result is discarded. */
export class RequestTimeoutError extends PoolError {
  override name = 'RequestTimeoutError';
  constructor(timeoutMs: number) {
    super('POOL_TIMEOUT', `the signing request did not complete within ${timeoutMs} ms`);
  }
}

export class PoolClosedError extends PoolError {
  override name = 'PoolClosedError';
  constructor() {
    super('POOL_CLOSED', 'the signing pool is closed');
  }
}

/** The device is gone (removed, not present, connection lost): failing fast until it is back. */
export class HsmUnavailableError extends PoolError {
  override name = 'HsmUnavailableError';
  constructor(reason: string, cause?: unknown) {
    super('HSM_UNAVAILABLE', `the HSM is unavailable: ${reason}`, { cause });
  }
}
