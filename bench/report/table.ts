/**
 * The human summary: one table per mechanism. Throughput columns for every load and the ratios
 * per point; latency, event-loop and memory columns for ours-pool (the JSON has them for all).
 */
import { MECHANISMS } from '../mechanisms';
import type { MechanismName } from '../mechanisms';
import type { PerSign } from '../per-sign';
import type { Point } from '../runner';

const num = (n: number | undefined, digits = 0) =>
  n === undefined || Number.isNaN(n) ? '-' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Context switches per signature, voluntary/involuntary. */
const switches = (per: PerSign | undefined) => (per ? `${num(per.voluntarySwitches, 2)}/${num(per.involuntarySwitches, 2)}` : '-');

function render(rows: string[][], rightAlign: boolean[]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) => r.map((cell, c) => (rightAlign[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd())
    .join('\n');
}

export function mechanismTable(mechanism: MechanismName, keyDescription: string, points: Point[], repeat: number): string {
  const m = MECHANISMS[mechanism];
  const header = [
    'conc',
    'raw C/s',
    'pkcs11js/s',
    'pool/s',
    'ours-raw/s',
    'pool÷C',
    'pool÷js',
    'raw÷C',
    'p50 ms',
    'p99 ms',
    'max ms',
    'ELU',
    'ELU js',
    'ELD p99',
    'cores',
    'µs/sig C',
    'µs/sig',
    'sw/sig C',
    'sw/sig',
    'RSS MB',
  ];
  const mine = points.filter((x) => x.mechanism === mechanism);
  // raw-c-woken is measured only on request; its two columns follow raw C's when it was.
  const woken = mine.some((p) => p.loads['raw-c-woken']);
  if (woken) header.splice(2, 0, 'C woken/s', 'pool÷Cw');
  // raw-c-os-locks likewise: raw C with the module's own locks, right after raw C.
  const osLocks = mine.some((p) => p.loads['raw-c-os-locks']);
  if (osLocks) header.splice(2, 0, 'C OS-lock/s');
  const rows = [header];
  for (const p of mine) {
    const pool = p.loads['ours-pool'];
    const row = [
      String(p.concurrency),
      num(p.loads['raw-c']?.signsPerSec),
      num(p.loads.pkcs11js?.signsPerSec),
      num(pool?.signsPerSec),
      num(p.loads['ours-raw']?.signsPerSec),
      num(p.ratios.poolVsRawC, 2),
      num(p.ratios.poolVsPkcs11js, 2),
      num(p.ratios.oursRawVsRawC, 2),
      num(pool?.latencyMs.p50, 3),
      num(pool?.latencyMs.p99, 3),
      num(pool?.latencyMs.max, 2),
      num(pool?.elu, 2),
      num(p.loads.pkcs11js?.elu, 2),
      num(pool?.eldP99Ms, 2),
      num(pool?.ourCores, 2),
      num(p.loads['raw-c']?.perSign?.cpuMicros, 1),
      num(pool?.perSign?.cpuMicros, 1),
      switches(p.loads['raw-c']?.perSign),
      switches(pool?.perSign),
      pool ? `${num(pool.rssBeforeMb)}→${num(pool.rssAfterMb)}` : '-',
    ];
    if (woken) row.splice(2, 0, num(p.loads['raw-c-woken']?.signsPerSec), num(p.ratios.poolVsRawCWoken, 2));
    if (osLocks) row.splice(2, 0, num(p.loads['raw-c-os-locks']?.signsPerSec));
    rows.push(row);
  }
  const title = `${m.title} — ${m.ckmName}, ${keyDescription} — signs/s, median of ${repeat}`;
  return `${title}\n${render(rows, header.map((_, i) => i > 0))}`;
}

export const TABLE_LEGEND = [
  'pool = SigningPool.sign(); ours-raw = module.native.sign() one session per client; raw C = bench/raw-sign.cc, one pthread per client.',
  'Latency, ELU (main-thread event-loop utilization), ELD p99 (event-loop delay, ms), cores (CPU used by the load, all threads) and RSS',
  'are ours-pool\'s; ELU js is pkcs11js\'s. µs/sig (CPU time of the load process per signature, all threads) and sw/sig',
  '(its context switches per signature, voluntary/involuntary) are over the measured window, for raw C (C) and the pool.',
  'C woken (when measured): raw C whose threads also wake one more thread every --wake-every signatures, as a binding',
  'wakes its event loop; pool÷Cw compares the pool with that. C OS-lock (when measured): raw C letting the module use its',
  'own OS locks instead of the mutex functions the binding and raw C hand it.',
].join('\n');
