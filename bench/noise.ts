/**
 * Other people's CPU use during a run. A test suite started by someone else on a 2-core box
 * halves a run's numbers without any sign in them, so each run is bracketed by the machine's
 * busy time (/proc/stat) minus our own process tree's (the bench, its load processes, raw C, the
 * p11-kit server and its per-connection children). Runs disturbed past a threshold are flagged
 * and re-run. Linux only: elsewhere nothing is measured and nothing retried.
 */
import * as fs from 'fs';

/** A run is disturbed when other processes used more than this many cores on average. */
export const NOISY_CORES = 0.25;

export interface CpuMark {
  /** /proc/stat: ticks the machine was busy, and all ticks, summed over CPUs. */
  busy: number;
  total: number;
  cpus: number;
  /** CPU ticks of our process tree, reaped children included. */
  ours: number;
}

function readSafe(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** /proc/<pid>/stat: ppid, and utime+stime+cutime+cstime (fields 14-17). */
function pidStat(pid: number): { ppid: number; ticks: number } | undefined {
  const text = readSafe(`/proc/${pid}/stat`);
  if (!text) return undefined;
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' '); // comm may contain spaces
  // fields[0] is field 3 (state): field n is fields[n - 3].
  return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]) };
}

function treeTicks(roots: number[]): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = pidStat(Number(name));
    if (stat) stats.set(Number(name), stat);
  }
  const inTree = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      if (roots.includes(p)) return true;
      const s = stats.get(p);
      if (!s) return false;
      p = s.ppid;
    }
    return false;
  };
  let ticks = 0;
  for (const [pid, stat] of stats) if (inTree(pid)) ticks += stat.ticks;
  return ticks;
}

/** `roots`: our process tree's roots (this process, and the p11-kit server when there is one). */
export function mark(roots: number[]): CpuMark | undefined {
  const stat = readSafe('/proc/stat');
  if (!stat) return undefined;
  const lines = stat.split('\n');
  const [, ...values] = lines[0].trim().split(/\s+/);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = values.map(Number);
  return {
    busy: user + nice + system + irq + softirq,
    total: user + nice + system + idle + iowait + irq + softirq + (steal || 0),
    cpus: lines.filter((l) => /^cpu\d+ /.test(l)).length,
    ours: treeTicks(roots),
  };
}

/** Cores other processes kept busy, on average, between two marks. */
export function otherCores(start: CpuMark | undefined, end: CpuMark | undefined): number | undefined {
  if (!start || !end || end.total <= start.total) return undefined;
  const others = end.busy - start.busy - (end.ours - start.ours);
  return Math.max(0, (others / (end.total - start.total)) * end.cpus);
}

/** Cores our process tree kept busy, on average, between two marks (the run's whole CPU cost). */
export function ourCores(start: CpuMark | undefined, end: CpuMark | undefined): number | undefined {
  if (!start || !end || end.total <= start.total) return undefined;
  return ((end.ours - start.ours) / (end.total - start.total)) * end.cpus;
}

/** Waits (up to `maxMs`) until other processes leave the machine quiet for a 250 ms sample. */
export async function waitForQuiet(roots: number[], maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    const start = mark(roots);
    await new Promise((resolve) => setTimeout(resolve, 250));
    const cores = otherCores(start, mark(roots));
    if (cores === undefined || cores <= NOISY_CORES) return;
  }
}
