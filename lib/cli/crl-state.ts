/**
 * The CA keeps revocations in memory; the CLI runs once per command, so `crl --state FILE`
 * keeps them (and the last CRL number) in a JSON file between runs.
 */
import { promises as fs } from 'fs';

import type { RevocationEntry, RevocationReason } from '../ca/crl';
import { writeFileAtomic } from './files';

export interface CrlState {
  revocations: RevocationEntry[];
  lastCrlNumber: bigint;
}

interface StoredState {
  version: 1;
  lastCrlNumber: string;
  revocations: Array<{ serial: string; reason: RevocationReason; date: string; invalidityDate?: string }>;
}

export async function loadCrlState(path: string | undefined): Promise<CrlState> {
  if (path === undefined) return { revocations: [], lastCrlNumber: 0n };
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { revocations: [], lastCrlNumber: 0n };
    throw new Error(`cannot read the CRL state ${path} (${(error as NodeJS.ErrnoException).code})`);
  }
  let stored: StoredState;
  try {
    stored = JSON.parse(text) as StoredState;
    if (stored.version !== 1 || !Array.isArray(stored.revocations) || !/^[0-9]+$/.test(stored.lastCrlNumber)) throw new Error('unexpected shape');
  } catch (error) {
    throw new Error(`the CRL state ${path} is not a p11 state file: ${(error as Error).message}`);
  }
  return {
    lastCrlNumber: BigInt(stored.lastCrlNumber),
    revocations: stored.revocations.map((r) => ({
      serial: r.serial,
      reason: r.reason,
      date: new Date(r.date),
      ...(r.invalidityDate ? { invalidityDate: new Date(r.invalidityDate) } : {}),
    })),
  };
}

export async function saveCrlState(path: string, state: CrlState): Promise<void> {
  const stored: StoredState = {
    version: 1,
    lastCrlNumber: state.lastCrlNumber.toString(),
    revocations: state.revocations.map((r) => ({
      serial: r.serial,
      reason: r.reason,
      date: r.date.toISOString(),
      ...(r.invalidityDate ? { invalidityDate: r.invalidityDate.toISOString() } : {}),
    })),
  };
  await writeFileAtomic(path, `${JSON.stringify(stored, null, 2)}\n`);
}
