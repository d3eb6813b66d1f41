/**
 * Certificate issuance rate, measured by bench/ca-issue.ts (owned by the CA work). When its
 * compiled form exports runCaBenchmark(options) we call it and keep whatever it returns;
 * otherwise the benchmark says so and carries on.
 */
import * as fs from 'fs';
import * as path from 'path';

import type { BenchKey } from './provision';
import type { KeyKind } from './mechanisms';
import type { Target } from './types';

/** What runCaBenchmark receives: the token and keys this run uses, and the run's pacing. */
export interface CaBenchmarkOptions {
  modulePath: string;
  token: string;
  pin: string;
  /** Key labels by kind (ec, rsa, ed25519), for the keys this run provisioned or was given. */
  keyLabels: Partial<Record<KeyKind, string>>;
  durationMs: number;
  warmupMs: number;
  /** The --concurrency list when given, else [1, 64]: the CA run should not double the bench's time. */
  concurrency: number[];
  repeat: number;
}

export type CaOutcome = { available: false } | { available: true; ok: true; result: unknown } | { available: true; ok: false; error: string };

export async function runCaIfAvailable(
  target: Target,
  keys: Partial<Record<KeyKind, BenchKey>>,
  pacing: { durationMs: number; warmupMs: number; concurrency: number[]; repeat: number },
): Promise<CaOutcome> {
  // Not written yet, not compiled, or not exporting the function yet: "not available", not a
  // failure. A file that exists but throws while loading is reported.
  const file = path.join(__dirname, 'ca-issue.js');
  if (!fs.existsSync(file)) return { available: false };
  let run: ((options: CaBenchmarkOptions) => unknown) | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const exported = require(file) as { runCaBenchmark?: unknown };
    if (typeof exported.runCaBenchmark === 'function') run = exported.runCaBenchmark as typeof run;
  } catch (error) {
    return { available: true, ok: false, error: `loading ca-issue.js: ${(error as Error).message}` };
  }
  if (!run) return { available: false };
  const keyLabels = Object.fromEntries(Object.entries(keys).map(([kind, key]) => [kind, key!.label]));
  try {
    const result = await run({ modulePath: target.modulePath, token: target.token, pin: target.pin, keyLabels, ...pacing });
    return { available: true, ok: true, result };
  } catch (error) {
    return { available: true, ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/** Numbers rounded for reading (the JSON keeps them exact). */
const compact = (value: unknown) =>
  JSON.stringify(value, (_, v) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(4)) : v));

/**
 * The result's shape belongs to ca-issue.ts: scalars go on the heading line, each element of an
 * array (rows) on a line of its own, anything else as compact JSON.
 */
export function formatCa(outcome: CaOutcome): string {
  if (!outcome.available) return 'CA benchmark: not available';
  if (!outcome.ok) return `CA benchmark: failed: ${outcome.error}`;
  const result = outcome.result;
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return `CA benchmark: ${compact(result)}`;
  const scalars: string[] = [];
  const lines: string[] = [];
  for (const [key, value] of Object.entries(result)) {
    if (Array.isArray(value)) lines.push(`  ${key}:`, ...value.map((item) => `    ${compact(item)}`));
    else if (value !== null && typeof value === 'object') lines.push(`  ${key}: ${compact(value)}`);
    else scalars.push(`${key}=${String(value)}`);
  }
  return [`CA benchmark${scalars.length ? ` (${scalars.join(', ')})` : ''}:`, ...lines].join('\n');
}
