/**
 * Which concurrency is a load's best, for the head-to-head rounds. The sweep's medians of
 * neighbouring concurrencies are often closer than the machine's drift between them, and the
 * highest is then a matter of luck: in 2026-12-08T04-25-02Z the pool's medians at 16 and at 64
 * in flight differed by 0.2% (19,178 and 19,137 signs/s), the sweep picked 16, and at 16 the
 * pool's JS thread does half as much again per signature as at 64 (smaller batches). So every
 * concurrency whose median is within PLAY_OFF_MARGIN of the load's best (the best three at
 * most) plays off: each runs PLAY_OFF_ROUNDS times, in an order that rotates, and the highest
 * mean wins. Baselines play off the same way as ours. The rounds that judge a target are
 * measured afresh afterwards, so choosing by these runs does not favour the winner there.
 */
import type { MechanismName } from './mechanisms';
import type { Point } from './runner';
import type { LoadName } from './types';

export const PLAY_OFF_MARGIN = 0.05;
export const PLAY_OFF_ROUNDS = 2;
const MAX_CANDIDATES = 3;

export interface PlayOff {
  mechanism: MechanismName;
  load: LoadName;
  /** The sweep's pick, and the concurrencies that played off (best sweep median first). */
  sweepBest: number;
  candidates: number[];
  /** Signs per second of each run, by concurrency. */
  runs: Record<number, number[]>;
  winner: number;
}

/** Concurrencies whose sweep median for `load` is within the margin of its best, best first. */
export function contenders(points: Point[], mechanism: MechanismName, load: LoadName): number[] {
  const rated = points
    .filter((p) => p.mechanism === mechanism && p.loads[load] !== undefined)
    .map((p) => ({ concurrency: p.concurrency, rate: p.loads[load]!.signsPerSec }))
    .sort((a, b) => b.rate - a.rate);
  if (rated.length === 0) return [];
  const floor = rated[0].rate * (1 - PLAY_OFF_MARGIN);
  return rated
    .filter((r) => r.rate >= floor)
    .slice(0, MAX_CANDIDATES)
    .map((r) => r.concurrency);
}

export async function playOff(
  mechanism: MechanismName,
  load: LoadName,
  candidates: number[],
  measure: (concurrency: number) => Promise<number>,
): Promise<PlayOff> {
  const runs: Record<number, number[]> = Object.fromEntries(candidates.map((c) => [c, []]));
  if (candidates.length > 1) {
    for (let round = 0; round < PLAY_OFF_ROUNDS; round++) {
      const shift = round % candidates.length;
      for (const concurrency of [...candidates.slice(shift), ...candidates.slice(0, shift)]) {
        runs[concurrency].push(await measure(concurrency));
      }
    }
  }
  const mean = (c: number) => runs[c].reduce((sum, r) => sum + r, 0) / Math.max(1, runs[c].length);
  const winner = candidates.reduce((a, b) => (mean(b) > mean(a) ? b : a));
  return { mechanism, load, sweepBest: candidates[0], candidates, runs, winner };
}
