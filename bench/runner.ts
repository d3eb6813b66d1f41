/**
 * The measurement schedule and its statistics. Every point (mechanism × concurrency) runs each
 * load back to back, in an order that rotates from one point to the next, so a slow drift of
 * the machine (thermal, a neighbour's job) never lands on the same load; the whole sweep is
 * repeated and each metric reported as the median over the repeats.
 */
import type { MechanismName } from './mechanisms';
import type { LoadName, RunResult } from './types';

export interface Plan {
  mechanisms: MechanismName[];
  concurrency: Record<string, number[]>; // by mechanism
  repeat: number;
  loads: LoadName[];
}

export interface Step {
  mechanism: MechanismName;
  concurrency: number;
  repeat: number;
  /** The loads of this point, in this point's rotated order. */
  loads: LoadName[];
}

export interface Sample {
  mechanism: MechanismName;
  concurrency: number;
  repeat: number;
  load: LoadName;
  /** Position in its point's order (0 = ran first). */
  position: number;
  result: RunResult;
}

export type Median = RunResult & { repeats: number };

export interface Point {
  mechanism: MechanismName;
  concurrency: number;
  loads: Partial<Record<LoadName, Median>>;
  /** Median signs/s of ours-pool (and ours-raw) divided by raw C's and pkcs11js's at this point. */
  ratios: {
    poolVsRawC?: number;
    poolVsPkcs11js?: number;
    oursRawVsRawC?: number;
    oursRawVsPkcs11js?: number;
    /** Against raw C waking a thread as often as a binding wakes its event loop (raw-c-woken). */
    poolVsRawCWoken?: number;
  };
}

/** Mechanism by mechanism, repeat by repeat, concurrency by concurrency; loads rotate each point. */
export function schedule(plan: Plan): Step[] {
  const steps: Step[] = [];
  let k = 0;
  for (const mechanism of plan.mechanisms) {
    for (let repeat = 0; repeat < plan.repeat; repeat++) {
      for (const concurrency of plan.concurrency[mechanism]) {
        const shift = k++ % plan.loads.length;
        steps.push({ mechanism, concurrency, repeat, loads: [...plan.loads.slice(shift), ...plan.loads.slice(0, shift)] });
      }
    }
  }
  return steps;
}

export async function runSchedule(
  steps: Step[],
  execute: (load: LoadName, step: Step) => Promise<RunResult>,
  onRun: (event: { step: Step; load: LoadName; index: number; done: boolean; result?: RunResult }) => void,
): Promise<Sample[]> {
  const samples: Sample[] = [];
  let index = 0;
  for (const step of steps) {
    for (const [position, load] of step.loads.entries()) {
      onRun({ step, load, index, done: false });
      const result = await execute(load, step);
      samples.push({ mechanism: step.mechanism, concurrency: step.concurrency, repeat: step.repeat, load, position, result });
      onRun({ step, load, index: index++, done: true, result });
    }
  }
  return samples;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function medianOf(results: RunResult[]): Median {
  const m = (pick: (r: RunResult) => number | undefined) => {
    const values = results.map(pick).filter((v): v is number => typeof v === 'number');
    return values.length ? median(values) : undefined;
  };
  // Each metric's own median: the reported p99 is the median p99, not the p99 of the median run.
  return {
    repeats: results.length,
    signs: m((r) => r.signs)!,
    seconds: m((r) => r.seconds)!,
    signsPerSec: m((r) => r.signsPerSec)!,
    latencyMs: { p50: m((r) => r.latencyMs.p50)!, p99: m((r) => r.latencyMs.p99)!, max: m((r) => r.latencyMs.max)! },
    elu: m((r) => r.elu),
    eldP99Ms: m((r) => r.eldP99Ms),
    rssBeforeMb: m((r) => r.rssBeforeMb)!,
    rssAfterMb: m((r) => r.rssAfterMb)!,
    otherCores: m((r) => r.otherCores),
    wakeups: m((r) => r.wakeups),
    ourCores: m((r) => r.ourCores),
    perSign: results.every((r) => r.perSign)
      ? {
          cpuMicros: m((r) => r.perSign?.cpuMicros)!,
          voluntarySwitches: m((r) => r.perSign?.voluntarySwitches)!,
          involuntarySwitches: m((r) => r.perSign?.involuntarySwitches)!,
        }
      : undefined,
  };
}

/** Medians per point, in plan order. */
export function summarize(plan: Plan, samples: Sample[]): Point[] {
  const points: Point[] = [];
  for (const mechanism of plan.mechanisms) {
    for (const concurrency of plan.concurrency[mechanism]) {
      const loads: Point['loads'] = {};
      for (const load of plan.loads) {
        const results = samples
          .filter((s) => s.mechanism === mechanism && s.concurrency === concurrency && s.load === load)
          .map((s) => s.result);
        if (results.length) loads[load] = medianOf(results);
      }
      if (Object.keys(loads).length === 0) continue;
      const ratio = (a?: Median, b?: Median) => (a && b && b.signsPerSec > 0 ? a.signsPerSec / b.signsPerSec : undefined);
      points.push({
        mechanism,
        concurrency,
        loads,
        ratios: {
          poolVsRawC: ratio(loads['ours-pool'], loads['raw-c']),
          poolVsPkcs11js: ratio(loads['ours-pool'], loads.pkcs11js),
          oursRawVsRawC: ratio(loads['ours-raw'], loads['raw-c']),
          oursRawVsPkcs11js: ratio(loads['ours-raw'], loads.pkcs11js),
          poolVsRawCWoken: ratio(loads['ours-pool'], loads['raw-c-woken']),
        },
      });
    }
  }
  return points;
}
