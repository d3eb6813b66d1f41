/** The shapes passed between the orchestrator, the load processes and the reports. */
import type { MechanismName } from './mechanisms';
import type { PerSign } from './per-sign';

/**
 * raw-c: the C baseline; raw-c-woken: the same loop waking one more thread as a binding wakes its
 * event loop (raw-sign.cc, Listen); raw-c-os-locks: raw C with the module's own locks instead of
 * the binding's mutex functions (native/loader/spinning_mutex.h); pkcs11js: the other binding; ours-pool: SigningPool;
 * ours-raw: module.native.sign.
 */
export type LoadName = 'raw-c' | 'raw-c-woken' | 'raw-c-os-locks' | 'pkcs11js' | 'ours-pool' | 'ours-raw';
export const LOAD_NAMES: readonly LoadName[] = ['raw-c', 'raw-c-woken', 'raw-c-os-locks', 'pkcs11js', 'ours-pool', 'ours-raw'];
/** The loads a run measures unless --loads names others; raw-c-woken and raw-c-os-locks explain, on request. */
export const DEFAULT_LOADS: readonly LoadName[] = ['raw-c', 'pkcs11js', 'ours-pool', 'ours-raw'];
/** The raw-c-woken loop: a signal after every `every` signatures, `workUs` µs of work for each. */
export interface WakeModel {
  every: number;
  workUs: number;
}

/** Where the keys live. The PIN travels over IPC or an environment variable, never argv. */
export interface Target {
  modulePath: string;
  token: string;
  pin: string;
}

/** One measurement: one load, one mechanism, one concurrency, one window. */
export interface RunSpec {
  target: Target;
  mechanism: MechanismName;
  keyLabel: string;
  /** DER SubjectPublicKeyInfo (base64): Node loads verify one signature per run with it. */
  spkiBase64: string;
  concurrency: number;
  /** Ours only: load the module with RTLD_DEEPBIND (see loads/ours-module.ts). */
  deepBind?: boolean;
  /** raw-c-woken only. */
  wake?: WakeModel;
  /** raw-c-os-locks only: C_Initialize without the binding's mutex functions. */
  osLocking?: boolean;
  warmupMs: number;
  durationMs: number;
}

export interface RunResult {
  signs: number;
  seconds: number;
  signsPerSec: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Main-thread event-loop utilization over the window (Node loads only). */
  elu?: number;
  /** monitorEventLoopDelay p99 over the window, minus the timer period, in ms (Node loads only). */
  eldP99Ms?: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  /** Cores other processes (not this benchmark's) kept busy during the run; Linux only. */
  otherCores?: number;
  /**
   * Cores the benchmark's own processes (the load, its threads, the p11-kit server) kept busy
   * during the run, setup and warm-up included; Linux only. Below the core count means threads
   * waited (hand-offs, locks), not that the machine was full.
   */
  ourCores?: number;
  /** 1, or more when a run disturbed by other processes was measured again. */
  attempts?: number;
  /** The load process's CPU time and context switches per signature over the window (per-sign.ts). */
  perSign?: PerSign;
  /** raw-c-woken: how often its listener thread was woken in the window. */
  wakeups?: number;
  /** Our loads: the engine's view of the module's calls at the end of the window (engineInfo()). */
  engine?: EngineState;
}

/** What decides the engine's limit and the pool's polling, read from engineInfo(). */
export interface EngineState {
  computeBound: boolean;
  blockedShare: number;
  callLimit: number;
  averageCallMicros: number;
  threads: number;
  /** How much higher the workers' nice value is (setWorkerNice, --worker-nice). */
  workerNice: number;
  /** Whether the workers yield between calls while calls are queued (setWorkerYield, --worker-yield). */
  workerYield: boolean;
  /** How many times they did since the load process started. */
  workerYields: number;
}
