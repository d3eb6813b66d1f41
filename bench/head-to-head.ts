/**
 * Head-to-head rounds for the ratio targets. The sweep compares medians of runs minutes apart,
 * and on a shared VM the machine's speed moves by tens of percent within minutes (raw C's own
 * medians differ by a quarter between neighbouring concurrencies); "raw C's best" is then the
 * highest of several noisy medians, which favours the baseline. So after the sweep each ratio
 * target is measured again: ours at the concurrency where its median was best and the baseline at
 * its own best (or at the one the target names), back to back, which one goes first alternating,
 * for N rounds. A round's ratio compares two runs seconds apart; the target is judged on the
 * median of the rounds' ratios.
 */
import { median } from './runner';
import type { MechanismName } from './mechanisms';
import type { RatioTarget } from './targets';
import type { PerSign } from './per-sign';
import type { EngineState, LoadName, RunResult } from './types';

export interface DuelRound {
  ours: number;
  base: number;
  ratio: number;
  oursFirst: boolean;
  /** Ours' event-loop utilization (near 1: the pool polled for answers) and engine state. */
  oursElu?: number;
  oursEngine?: EngineState;
  /**
   * Each side's CPU time and context switches a signature over its window: a ratio under the
   * target with as much CPU a signature on both sides lost on idle cores or a slower spell of the
   * machine, not on what each signature costs.
   */
  oursPerSign?: PerSign;
  basePerSign?: PerSign;
}

export interface Duel extends RatioTarget {
  rounds: DuelRound[];
  /** Median of the rounds' ratios. */
  ratio: number;
}

export type Measure = (load: LoadName, step: { mechanism: MechanismName; concurrency: number }) => Promise<RunResult>;

export async function runDuels(
  targets: RatioTarget[],
  rounds: number,
  measure: Measure,
  onRound: (target: RatioTarget, round: number, result: DuelRound) => void,
): Promise<Duel[]> {
  const duels: Duel[] = [];
  for (const target of targets) {
    const done: DuelRound[] = [];
    for (let round = 0; round < rounds; round++) {
      const oursFirst = round % 2 === 0;
      const run = (side: 'ours' | 'base') =>
        measure(target[side].load, { mechanism: target.mechanism, concurrency: target[side].concurrency });
      let ours: RunResult;
      let base: RunResult;
      if (oursFirst) {
        ours = await run('ours');
        base = await run('base');
      } else {
        base = await run('base');
        ours = await run('ours');
      }
      const result = {
        ours: ours.signsPerSec,
        base: base.signsPerSec,
        ratio: base.signsPerSec > 0 ? ours.signsPerSec / base.signsPerSec : 0,
        oursFirst,
        oursElu: ours.elu,
        oursEngine: ours.engine,
        oursPerSign: ours.perSign,
        basePerSign: base.perSign,
      };
      done.push(result);
      onRound(target, round, result);
    }
    duels.push({ ...target, rounds: done, ratio: median(done.map((r) => r.ratio)) });
  }
  return duels;
}
