/**
 * A mistake in how p11 was called (unknown command or option, missing argument, a refused
 * --pin). Exits with status 2, so scripts can tell "you called it wrong" from "it failed".
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit statuses: 0 success, 1 the operation failed (or a signature is invalid), 2 usage error. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
