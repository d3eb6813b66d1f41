/**
 * The performance targets, judged from the run. "Ours" is the SigningPool, the API an application
 * uses; best = the concurrency with the highest median over the sweep, or the winner of a
 * play-off between the concurrencies close to it (play-off.ts). A ratio target is judged
 * on its head-to-head rounds when the run has them (head-to-head.ts), otherwise on the sweep's
 * medians; both are printed. Nothing here is asserted anywhere: the bench reports PASS or MISS,
 * people decide.
 */
import type { Duel } from './head-to-head';
import type { PlayOff } from './play-off';
import { whole } from './report/format';
import type { MechanismName } from './mechanisms';
import type { Point } from './runner';
import type { LoadName } from './types';

export interface TargetResult {
  name: string;
  /** null: the run lacks the data (mechanism or concurrency 1 not measured). */
  pass: boolean | null;
  detail: string;
}

/** One side of a ratio target: a load at a concurrency the sweep (and a play-off) chose. */
export interface Contender {
  load: LoadName;
  concurrency: number;
  /** 'best': the load's best concurrency (play-off.ts may revise it); 'fixed': the target names it. */
  picked: 'best' | 'fixed';
}

/** A target of the form "ours ≥ threshold × baseline". */
export interface RatioTarget {
  name: string;
  mechanism: MechanismName;
  threshold: number;
  ours: Contender;
  base: Contender;
}

/**
 * The concurrency at which `load` did best for `mechanism`: the play-off's winner when there was
 * one (play-off.ts), else the highest median of the sweep.
 */
function best(points: Point[], mechanism: MechanismName, load: LoadName, playOffs: PlayOff[] = []): Contender | undefined {
  const played = playOffs.find((p) => p.mechanism === mechanism && p.load === load);
  if (played !== undefined) return { load, concurrency: played.winner, picked: 'best' };
  let top: Point | undefined;
  for (const p of points) {
    if (p.mechanism !== mechanism) continue;
    const value = p.loads[load]?.signsPerSec;
    if (value !== undefined && (!top || value > top.loads[load]!.signsPerSec)) top = p;
  }
  return top && { load, concurrency: top.concurrency, picked: 'best' };
}

function at(points: Point[], mechanism: MechanismName, load: LoadName, concurrency: number): Contender | undefined {
  const point = points.find((p) => p.mechanism === mechanism && p.concurrency === concurrency);
  return point?.loads[load] ? { load, concurrency, picked: 'fixed' } : undefined;
}

function signsPerSec(points: Point[], mechanism: MechanismName, c: Contender): number | undefined {
  return points.find((p) => p.mechanism === mechanism && p.concurrency === c.concurrency)?.loads[c.load]?.signsPerSec;
}

const PEAK = 'ECDSA peak ≥ 0.95 × raw C best';
const ONE_IN_FLIGHT = 'ECDSA one in flight ≥ 0.85 × raw C single-thread';
const VS_PKCS11JS = 'ECDSA peak ≥ 1.3 × pkcs11js best async';
const rsaName = (rsaTitle: string, mechanism: 'rsa-pkcs' | 'rsa-pss') =>
  `${rsaTitle} ${mechanism === 'rsa-pkcs' ? 'PKCS#1 v1.5' : 'PSS'} peak ≥ 0.97 × raw C best`;

/**
 * The run's ratio targets with the contenders its sweep (and any play-offs) picked; the ones it
 * lacks data for are left out.
 */
export function ratioTargets(points: Point[], rsaTitle: string, playOffs: PlayOff[] = []): RatioTarget[] {
  const targets: RatioTarget[] = [];
  const add = (name: string, mechanism: MechanismName, threshold: number, ours?: Contender, base?: Contender) => {
    if (ours && base) targets.push({ name, mechanism, threshold, ours, base });
  };
  const poolPeak = best(points, 'ecdsa', 'ours-pool', playOffs);
  add(PEAK, 'ecdsa', 0.95, poolPeak, best(points, 'ecdsa', 'raw-c', playOffs));
  add(ONE_IN_FLIGHT, 'ecdsa', 0.85, at(points, 'ecdsa', 'ours-pool', 1), at(points, 'ecdsa', 'raw-c', 1));
  add(VS_PKCS11JS, 'ecdsa', 1.3, poolPeak, best(points, 'ecdsa', 'pkcs11js', playOffs));
  for (const mechanism of ['rsa-pkcs', 'rsa-pss'] as const) {
    add(
      rsaName(rsaTitle, mechanism),
      mechanism,
      0.97,
      best(points, mechanism, 'ours-pool', playOffs),
      best(points, mechanism, 'raw-c', playOffs),
    );
  }
  return targets;
}

/**
 * A ratio to three places, or more where three would put it on the wrong side of `threshold`: a
 * median of 0.84988 against 0.85 read "MISS 0.850" (2026-12-07), and now reads 0.8499.
 */
export function ratioText(ratio: number, threshold: number): string {
  for (let places = 3; places < 8; places++) {
    const text = ratio.toFixed(places);
    if (Number(text) >= threshold === ratio >= threshold) return text;
  }
  return String(ratio);
}

function judgeRatio(points: Point[], target: RatioTarget, duel: Duel | undefined): TargetResult {
  const ours = signsPerSec(points, target.mechanism, target.ours)!;
  const base = signsPerSec(points, target.mechanism, target.base)!;
  const sweepRatio = base > 0 ? ours / base : 0;
  const sweep =
    `sweep medians ${ratioText(sweepRatio, target.threshold)} (ours ${whole(ours)} at c=${target.ours.concurrency} vs ` +
    `${target.base.load} ${whole(base)} at c=${target.base.concurrency} signs/s)`;
  if (duel === undefined || duel.rounds.length === 0) {
    return { name: target.name, pass: sweepRatio >= target.threshold, detail: sweep };
  }
  const rounds = duel.rounds.map((r) => r.ratio.toFixed(2)).join(', ');
  return {
    name: target.name,
    pass: duel.ratio >= target.threshold,
    detail: `${ratioText(duel.ratio, target.threshold)} head to head (median of ${duel.rounds.length} rounds: ${rounds}); ${sweep}`,
  };
}

export function evaluateTargets(points: Point[], rsaTitle: string, duels: Duel[] = [], playOffs: PlayOff[] = []): TargetResult[] {
  const targets = ratioTargets(points, rsaTitle, playOffs);
  const judged = (name: string): TargetResult => {
    const target = targets.find((t) => t.name === name);
    if (target === undefined) return { name, pass: null, detail: 'not measured in this run' };
    return judgeRatio(points, target, duels.find((d) => d.name === name));
  };
  const poolPeak = best(points, 'ecdsa', 'ours-pool', playOffs);
  const peak = poolPeak && points.find((p) => p.mechanism === 'ecdsa' && p.concurrency === poolPeak.concurrency)?.loads['ours-pool'];
  const results: TargetResult[] = [judged(PEAK)];
  results.push(
    peak?.elu === undefined
      ? { name: 'ECDSA main-thread ELU ≤ 0.25 at our peak', pass: null, detail: 'not measured in this run' }
      : {
          name: 'ECDSA main-thread ELU ≤ 0.25 at our peak',
          pass: peak.elu <= 0.25,
          detail: `${peak.elu.toFixed(3)} at concurrency ${poolPeak!.concurrency}`,
        },
  );
  results.push(judged(ONE_IN_FLIGHT), judged(VS_PKCS11JS));
  results.push(judged(rsaName(rsaTitle, 'rsa-pkcs')), judged(rsaName(rsaTitle, 'rsa-pss')));
  results.push(
    peak?.eldP99Ms === undefined
      ? { name: 'ECDSA event-loop delay p99 < 2 ms at our peak', pass: null, detail: 'not measured in this run' }
      : {
          name: 'ECDSA event-loop delay p99 < 2 ms at our peak',
          pass: peak.eldP99Ms < 2,
          detail: `${peak.eldP99Ms.toFixed(2)} ms at concurrency ${poolPeak!.concurrency}`,
        },
  );
  return results;
}

export function formatTargets(results: TargetResult[]): string {
  return results
    .map((r) => `${r.pass === null ? 'n/a ' : r.pass ? 'PASS' : 'MISS'}  ${r.name}: ${r.detail}`)
    .join('\n');
}
