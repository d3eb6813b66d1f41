import type { Module } from '../module/module';
import type { Mechanism, Pin } from '../native/types';
import type { Pkcs11Uri } from '../uri/pkcs11-uri';
import type { KeyLocator } from './key-binding';

export interface SigningPoolOptions {
  module: Module;
  /** The token: a PKCS#11 URI or a token label. Must match exactly one token. */
  token: string | Pkcs11Uri;
  /** The signing key: a PKCS#11 URI or { label, id }. Must match exactly one private key. */
  key: KeyLocator;
  /** The user PIN. Wrong or locked PINs are never retried. */
  pin?: Pin;
  /** Sessions (default: min(token session limit, max(4, 2 × cores))). */
  size?: number;
  /** Requests allowed to wait for a session (default 10,000); past it sign() rejects at once. */
  maxQueue?: number;
  /** Per-request deadline in ms, queueing included (default 30,000). */
  timeoutMs?: number;
  /** Mechanism when sign() is given none (default: CKM_ECDSA, CKM_SHA256_RSA_PKCS or CKM_EDDSA). */
  mechanism?: Mechanism;
  /** How often a tripped breaker probes the device (default 1,000 ms). */
  probeIntervalMs?: number;
  /**
   * Requests handed to one session at a time (default 2). The binding runs a session's calls one
   * after another on its own threads, so a second request waits there instead of in JS and
   * starts without a round trip through the event loop.
   */
  pipelineDepth?: number;
  /**
   * When the device comes back but calls are still stuck inside the module (default: never).
   * The breaker re-initialises the module only once the module-wide calls have returned; a
   * network client wedged on a dead connection (p11-kit-client 0.24 can leave calls waiting
   * forever) never returns them. After this many ms the pool re-initialises anyway and abandons
   * those calls; requests still waiting on them are rejected then (HsmUnavailableError), and the
   * engine threads they hold are replaced. Finalising under running calls is undefined behaviour
   * in PKCS#11: set it only for modules that survive it.
   */
  abandonStuckCallsAfterMs?: number;
  /**
   * How long the event loop is kept turning for a call's answer (default 250 µs; 0 never). With
   * at most one call in flight per core (never on one core), and calls that take less than this
   * inside the module (engineInfo().averageCallMicros) and compute rather than wait
   * (engineInfo().computeBound), the pool polls for the answer
   * instead of letting the JS thread sleep until the engine wakes it (lib/pool/busy-poll.ts):
   * lower latency at low concurrency, paid for with the JS thread's CPU while it waits.
   */
  busyPollMicros?: number;
}

export interface PoolStats {
  sessions: number;
  /** Sessions being opened for waiting requests (open, log in, find the key). */
  opening: number;
  idle: number;
  inFlight: number;
  queued: number;
  done: number;
  failed: number;
  retried: number;
  timedOut: number;
  rejected: number;
  breaker: 'closed' | 'open';
  /** Calls into the module given up on when it was re-initialised (see abandonStuckCallsAfterMs). */
  abandonedCalls: number;
  latencyMs: { p50: number; p99: number; max: number };
}

/** TypeErrors naming the option, before any session is opened. */
export function checkOptions(options: SigningPoolOptions): void {
  if (!options || typeof options !== 'object') throw new TypeError('options must be an object');
  for (const [name, value] of [
    ['size', options.size],
    ['maxQueue', options.maxQueue],
    ['timeoutMs', options.timeoutMs],
    ['pipelineDepth', options.pipelineDepth],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < (name === 'maxQueue' ? 0 : 1))) {
      throw new TypeError(`options.${name} must be a positive integer`);
    }
  }
  const poll = options.busyPollMicros;
  if (poll !== undefined && (typeof poll !== 'number' || !Number.isFinite(poll) || poll < 0)) {
    throw new TypeError('options.busyPollMicros must be a number of microseconds, 0 or more');
  }
}
