/**
 * What one signature cost a load's own process over the measured window: CPU time and context
 * switches, all threads together (getrusage(RUSAGE_SELF) in raw C, process.resourceUsage() in
 * Node). Voluntary switches are threads going to sleep, each a wake-up to come; involuntary ones
 * are threads preempted, on a full machine mostly by those wake-ups.
 */
export interface PerSign {
  cpuMicros: number;
  voluntarySwitches: number;
  involuntarySwitches: number;
}

/** Per signature from the window's totals; undefined when nothing was signed. */
export function perSign(signs: number, cpuMicros: number, voluntary: number, involuntary: number): PerSign | undefined {
  if (!(signs > 0)) return undefined;
  return { cpuMicros: cpuMicros / signs, voluntarySwitches: voluntary / signs, involuntarySwitches: involuntary / signs };
}
