/**
 * /healthz: healthy when the pool's breaker is closed and the HSM key signs a fresh digest now.
 * Reports unhealthy while draining, so load balancers stop sending traffic before shutdown.
 */
import { createHash, randomBytes } from 'crypto';

import type { SigningPool } from '../../lib/pool/signing-pool';

const PROBE_TIMEOUT_MS = 2_000;

export interface Health {
  ok: boolean;
  body: Record<string, unknown>;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no signature within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function checkHealth(pool: SigningPool, draining: boolean): Promise<Health> {
  if (draining) return { ok: false, body: { status: 'shutting-down' } };
  const stats = pool.stats();
  if (stats.breaker === 'open') return { ok: false, body: { status: 'unavailable', breaker: 'open' } };
  const started = process.hrtime.bigint();
  try {
    // A SHA-256 digest suits every default mechanism (CKM_ECDSA signs it; the others hash it again).
    await withTimeout(pool.sign(createHash('sha256').update(randomBytes(32)).digest()), PROBE_TIMEOUT_MS);
  } catch (error) {
    return { ok: false, body: { status: 'unavailable', breaker: pool.stats().breaker, reason: (error as Error).message } };
  }
  const signMs = Number(process.hrtime.bigint() - started) / 1e6;
  return { ok: true, body: { status: 'ok', breaker: 'closed', signMs: Math.round(signMs * 1000) / 1000, pool: { sessions: stats.sessions, inFlight: stats.inFlight, queued: stats.queued } } };
}
