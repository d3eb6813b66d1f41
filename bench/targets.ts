/**
 * The performance targets, judged from the run's medians. "Ours" is the SigningPool, the API an
 * application uses; best = the highest median over the concurrency sweep. Nothing here is
 * asserted anywhere: the bench reports PASS or MISS, people decide.
 */
import type { MechanismName } from './mechanisms';
import type { Point } from './runner';
import type { LoadName } from './types';

export interface TargetResult {
  name: string;
  /** null: the run lacks the data (mechanism or concurrency 1 not measured). */
  pass: boolean | null;
  detail: string;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function best(points: Point[], mechanism: MechanismName, load: LoadName): Point | undefined {
  let top: Point | undefined;
  for (const p of points) {
    if (p.mechanism !== mechanism) continue;
    const value = p.loads[load]?.signsPerSec;
    if (value !== undefined && (!top || value > top.loads[load]!.signsPerSec)) top = p;
  }
  return top;
}

function ratioTarget(name: string, ours: number | undefined, base: number | undefined, threshold: number, what: string): TargetResult {
  if (ours === undefined || base === undefined || base <= 0) return { name, pass: null, detail: 'not measured in this run' };
  const ratio = ours / base;
  return { name, pass: ratio >= threshold, detail: `${ratio.toFixed(3)} (ours ${fmt(ours)} vs ${what} ${fmt(base)} signs/s)` };
}

export function evaluateTargets(points: Point[], rsaTitle: string): TargetResult[] {
  const results: TargetResult[] = [];
  const poolPeak = best(points, 'ecdsa', 'ours-pool');
  const rawPeak = best(points, 'ecdsa', 'raw-c');
  const jsPeak = best(points, 'ecdsa', 'pkcs11js');
  const peak = poolPeak?.loads['ours-pool'];

  results.push(
    ratioTarget('ECDSA peak ≥ 0.95 × raw C best', peak?.signsPerSec, rawPeak?.loads['raw-c']?.signsPerSec, 0.95, 'raw C'),
  );
  results.push(
    peak?.elu === undefined
      ? { name: 'ECDSA main-thread ELU ≤ 0.25 at our peak', pass: null, detail: 'not measured in this run' }
      : {
          name: 'ECDSA main-thread ELU ≤ 0.25 at our peak',
          pass: peak.elu <= 0.25,
          detail: `${peak.elu.toFixed(3)} at concurrency ${poolPeak!.concurrency}`,
        },
  );
  const single = points.find((p) => p.mechanism === 'ecdsa' && p.concurrency === 1);
  results.push(
    ratioTarget(
      'ECDSA one in flight ≥ 0.85 × raw C single-thread',
      single?.loads['ours-pool']?.signsPerSec,
      single?.loads['raw-c']?.signsPerSec,
      0.85,
      'raw C',
    ),
  );
  results.push(
    ratioTarget('ECDSA peak ≥ 1.3 × pkcs11js best async', peak?.signsPerSec, jsPeak?.loads.pkcs11js?.signsPerSec, 1.3, 'pkcs11js'),
  );
  for (const mechanism of ['rsa-pkcs', 'rsa-pss'] as const) {
    results.push(
      ratioTarget(
        `${rsaTitle} ${mechanism === 'rsa-pkcs' ? 'PKCS#1 v1.5' : 'PSS'} peak ≥ 0.97 × raw C best`,
        best(points, mechanism, 'ours-pool')?.loads['ours-pool']?.signsPerSec,
        best(points, mechanism, 'raw-c')?.loads['raw-c']?.signsPerSec,
        0.97,
        'raw C',
      ),
    );
  }
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
