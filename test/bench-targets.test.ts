// How the benchmark judges its targets (bench/targets.ts, bench/head-to-head.ts), on made-up
// medians: which concurrencies the sweep picks for each side, that a target with head-to-head
// rounds is judged on their median and not on the sweep, and the rounds' alternating order.
// The numbers are invented on purpose; bench-smoke.test.ts runs the real thing on SoftHSM2.
import { describe, expect, test } from '@jest/globals';

import { runDuels } from '../bench/head-to-head';
import type { Point } from '../bench/runner';
import { contenders, playOff, PLAY_OFF_ROUNDS } from '../bench/play-off';
import { evaluateTargets, ratioTargets, ratioText } from '../bench/targets';
import type { LoadName, RunResult } from '../bench/types';

const run = (signsPerSec: number, extra: Partial<RunResult> = {}) => ({
  repeats: 3,
  signs: signsPerSec * 2,
  seconds: 2,
  signsPerSec,
  latencyMs: { p50: 1, p99: 2, max: 3 },
  rssBeforeMb: 60,
  rssAfterMb: 61,
  ...extra,
});

function ecdsa(concurrency: number, rates: Partial<Record<LoadName, number>>): Point {
  const loads: Point['loads'] = {};
  for (const [load, rate] of Object.entries(rates)) {
    loads[load as LoadName] = run(rate!, load === 'ours-pool' ? { elu: 0.1, eldP99Ms: 1.2 } : {});
  }
  return { mechanism: 'ecdsa', concurrency, loads, ratios: {} };
}

// Raw C's best median is its lucky point at 4 in flight; ours peaks at 64.
const POINTS: Point[] = [
  ecdsa(1, { 'raw-c': 12_000, pkcs11js: 7_000, 'ours-pool': 10_500 }),
  ecdsa(4, { 'raw-c': 19_000, pkcs11js: 13_000, 'ours-pool': 13_000 }),
  ecdsa(64, { 'raw-c': 17_500, pkcs11js: 11_000, 'ours-pool': 17_000 }),
];

describe('bench targets', () => {
  test('a ratio is shown to three places, or to as many more as keep it on its side of the threshold', () => {
    expect(ratioText(0.8974, 0.85)).toBe('0.897');
    expect(ratioText(0.84988, 0.85)).toBe('0.8499'); // 0.850 would read as a pass
    expect(ratioText(0.949996, 0.95)).toBe('0.949996'); // 0.950, 0.9500 and 0.95000 all would
    expect(ratioText(0.85, 0.85)).toBe('0.850');
    expect(ratioText(0.8504, 0.85)).toBe('0.850');
    // In the judged detail too: a median a hair under the threshold.
    const points: Point[] = [ecdsa(1, { 'raw-c': 100_000, 'ours-pool': 84_988 })];
    const [, , oneInFlight] = evaluateTargets(points, 'RSA-2048');
    expect(oneInFlight).toMatchObject({ name: 'ECDSA one in flight ≥ 0.85 × raw C single-thread', pass: false });
    expect(oneInFlight.detail).toBe('sweep medians 0.8499 (ours 84,988 at c=1 vs raw-c 100,000 at c=1 signs/s)');
  });

  test('each ratio target pits ours at its best concurrency against the baseline at its own', () => {
    const targets = ratioTargets(POINTS, 'RSA-2048');
    expect(targets.map((t) => [t.name, t.ours, t.base])).toEqual([
      ['ECDSA peak ≥ 0.95 × raw C best', { load: 'ours-pool', concurrency: 64, picked: 'best' }, { load: 'raw-c', concurrency: 4, picked: 'best' }],
      [
        'ECDSA one in flight ≥ 0.85 × raw C single-thread',
        { load: 'ours-pool', concurrency: 1, picked: 'fixed' },
        { load: 'raw-c', concurrency: 1, picked: 'fixed' },
      ],
      ['ECDSA peak ≥ 1.3 × pkcs11js best async', { load: 'ours-pool', concurrency: 64, picked: 'best' }, { load: 'pkcs11js', concurrency: 4, picked: 'best' }],
    ]);
  });

  test('without rounds a target is judged on the sweep medians; with rounds, on their median', async () => {
    const sweepOnly = evaluateTargets(POINTS, 'RSA-2048');
    expect(sweepOnly[0]).toMatchObject({ name: 'ECDSA peak ≥ 0.95 × raw C best', pass: false });
    expect(sweepOnly[0].detail).toBe('sweep medians 0.895 (ours 17,000 at c=64 vs raw-c 19,000 at c=4 signs/s)');

    // Rounds where the two sides ran back to back: ours 0.96, 0.94 and 0.97 of the baseline.
    const rates: Record<string, number[]> = { 'ours-pool': [17_280, 16_920, 17_460], 'raw-c': [18_000, 18_000, 18_000] };
    const order: string[] = [];
    const measure = async (load: LoadName, step: { mechanism: string; concurrency: number }) => {
      order.push(`${load}@${step.concurrency}`);
      const rate = load === 'ours-pool' || load === 'raw-c' ? rates[load].shift()! : 1;
      const cpuMicros = load === 'raw-c' ? 89 : 93;
      return run(rate, { perSign: { cpuMicros, voluntarySwitches: 0.1, involuntarySwitches: 0.05 } }) as RunResult;
    };
    const [peak] = ratioTargets(POINTS, 'RSA-2048');
    const rounds: number[] = [];
    const duels = await runDuels([peak], 3, measure, (_target, round) => rounds.push(round));
    expect(order).toEqual(['ours-pool@64', 'raw-c@4', 'raw-c@4', 'ours-pool@64', 'ours-pool@64', 'raw-c@4']);
    expect(rounds).toEqual([0, 1, 2]);
    expect(duels[0].rounds.map((r) => r.ratio.toFixed(2))).toEqual(['0.96', '0.94', '0.97']);
    expect(duels[0].ratio).toBeCloseTo(0.96, 10);
    // Each round keeps what a signature cost each side, the baseline's from the baseline's run.
    expect(duels[0].rounds.map((r) => [r.oursPerSign?.cpuMicros, r.basePerSign?.cpuMicros])).toEqual([
      [93, 89],
      [93, 89],
      [93, 89],
    ]);

    const judged = evaluateTargets(POINTS, 'RSA-2048', duels);
    expect(judged[0].pass).toBe(true);
    expect(judged[0].detail).toBe(
      '0.960 head to head (median of 3 rounds: 0.96, 0.94, 0.97); sweep medians 0.895 (ours 17,000 at c=64 vs raw-c 19,000 at c=4 signs/s)',
    );
    // Targets without rounds keep their sweep verdict; RSA was not measured at all.
    expect(judged[2]).toMatchObject({ name: 'ECDSA one in flight ≥ 0.85 × raw C single-thread', pass: true });
    expect(judged[2].detail).toMatch(/^sweep medians 0\.875/);
    expect(judged.filter((t) => t.name.startsWith('RSA-2048')).map((t) => t.pass)).toEqual([null, null]);
    expect(judged.map((t) => t.name)).toEqual([
      'ECDSA peak ≥ 0.95 × raw C best',
      'ECDSA main-thread ELU ≤ 0.25 at our peak',
      'ECDSA one in flight ≥ 0.85 × raw C single-thread',
      'ECDSA peak ≥ 1.3 × pkcs11js best async',
      'RSA-2048 PKCS#1 v1.5 peak ≥ 0.97 × raw C best',
      'RSA-2048 PSS peak ≥ 0.97 × raw C best',
      'ECDSA event-loop delay p99 < 2 ms at our peak',
    ]);
  });

  test("near-ties in the sweep play off; the winner is each side's best, for the rounds and the targets at our peak", async () => {
    // Ours' medians at 16 and 64 are within 5%, 8 is not; raw C's best stands alone.
    const points: Point[] = [
      ecdsa(8, { 'raw-c': 18_000, 'ours-pool': 15_000 }),
      ecdsa(16, { 'raw-c': 21_000, 'ours-pool': 19_200 }),
      ecdsa(64, { 'raw-c': 19_000, 'ours-pool': 19_100 }),
    ];
    points[2].loads['ours-pool']!.elu = 0.06;
    expect(contenders(points, 'ecdsa', 'ours-pool')).toEqual([16, 64]);
    expect(contenders(points, 'ecdsa', 'raw-c')).toEqual([16]);
    expect(contenders(points, 'ecdsa', 'pkcs11js')).toEqual([]);

    const order: number[] = [];
    const rates: Record<number, number[]> = { 16: [18_900, 19_000], 64: [19_800, 19_700] };
    const result = await playOff('ecdsa', 'ours-pool', [16, 64], async (concurrency) => {
      order.push(concurrency);
      return rates[concurrency].shift()!;
    });
    expect(order).toEqual([16, 64, 64, 16]); // the order rotates from round to round
    expect(order.length).toBe(2 * PLAY_OFF_ROUNDS);
    expect(result).toEqual({
      mechanism: 'ecdsa',
      load: 'ours-pool',
      sweepBest: 16,
      candidates: [16, 64],
      runs: { 16: [18_900, 19_000], 64: [19_800, 19_700] },
      winner: 64,
    });

    const [peak] = ratioTargets(points, 'RSA-2048', [result]);
    expect([peak.ours, peak.base]).toEqual([
      { load: 'ours-pool', concurrency: 64, picked: 'best' },
      { load: 'raw-c', concurrency: 16, picked: 'best' },
    ]);
    const judged = evaluateTargets(points, 'RSA-2048', [], [result]);
    expect(judged[0].detail).toBe('sweep medians 0.910 (ours 19,100 at c=64 vs raw-c 21,000 at c=16 signs/s)');
    expect(judged[1].detail).toBe('0.060 at concurrency 64'); // ELU at the play-off's winner
    // A lone candidate is not played: no runs, itself the winner.
    const alone = await playOff('ecdsa', 'raw-c', [16], async () => {
      throw new Error('not measured');
    });
    expect([alone.winner, alone.runs]).toEqual([16, { 16: [] }]);
  });
});
