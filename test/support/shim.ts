/**
 * Test support: the fault-injecting PKCS#11 module (test/shim/*.cc).
 *
 * The shim is a real PKCS#11 module that forwards every call to a target module
 * (SoftHSM2 by default) and injects faults named in a control file, which it
 * re-reads whenever it changes, so a test can change faults while calls run.
 *
 *   const shimPath = buildShim();
 *   const control = new ShimControl();
 *   applyShimEnv(control);                  // before load()/C_Initialize
 *   control.set({ 'fail.C_Login': 'CKR_PIN_LOCKED' });
 *   m.load(shimPath); m.C_Initialize(); ...
 *
 * Control keys (values: decimal or 0x-hex numbers; CKR values also by name):
 *   fail.<C_Fn>=<CKR>          every call of C_Fn returns that CKR without forwarding
 *   fail.<C_Fn>.after=<N>      ... only once N calls of C_Fn have succeeded (since the rule changed)
 *   fail.<C_Fn>.count=<K>      ... only K times, then back to normal
 *   fail.<C_Fn>.forward=1      ... but forward the call first and answer the CKR instead of the
 *                              target's answer, so the target's state moves on as after a real
 *                              failed call (e.g. a C_Sign failure ends the signing operation, as
 *                              the standard says; without .forward it stays active in the target).
 *                              Not combined with lie.buffer on the same call
 *   delay.<C_Fn>=<ms>, delay.all=<ms>   sleep before forwarding
 *   hang.<C_Fn>=1              block inside C_Fn until the key is removed or set to 0
 *   hang.<C_Fn>.count=<K>      ... only the next K calls of C_Fn (since the rule changed) hang,
 *                              the later ones go through; a count alone switches the rule on.
 *                              A call already hanging stays until the rule is off (its keys
 *                              removed, or hang.<C_Fn>=0)
 *   hang.max=<ms>              end any hang after this long anyway (a safety net for tests)
 *   down=1, down.rv=<CKR>      everything but C_GetFunctionList/C_GetInterface/C_Finalize
 *                              answers CKR_DEVICE_REMOVED (or down.rv)
 *   lie.buffer=1               C_Sign/C_SignFinal/C_Encrypt/C_Decrypt/C_Digest/C_WrapKey/
 *                              C_GetAttributeValue: the first call of an operation given an output
 *                              buffer answers CKR_BUFFER_TOO_SMALL with the true length + 16
 *   handles.offset=<n>         added to every slot ID, session and object handle handed out
 *   initialize.cantlock=1      C_Initialize with CKF_OS_LOCKING_OK answers CKR_CANT_LOCK
 *   initialize.refusemutexes=1 C_Initialize given mutex functions answers CKR_CANT_LOCK
 *   initialize.exercisemutexes=1  C_Initialize given mutex functions first uses them (misuse
 *                              included, and two threads counting under one lock) and records
 *                              the answers in mutexCheck
 *   initialize.already=1       C_Initialize forwards, then answers CKR_CRYPTOKI_ALREADY_INITIALIZED
 *   interface=1                C_GetInterface serves the shim's list (otherwise it answers
 *                              CKR_FUNCTION_NOT_SUPPORTED, which callers treat as absent)
 *   stats.always=1             write the statistics after every call
 *
 * Statistics (ShimStats) are written on C_Initialize/C_Finalize/C_OpenSession/
 * C_CloseSession/C_CloseAllSessions, whenever a fault is injected, and at exit.
 * Counters restart when the shim sees a new FAULT_SHIM_CONTROL/FAULT_SHIM_STATS
 * pair (at load or C_Initialize), i.e. per ShimControl.
 *
 * The shim keeps itself loaded for the rest of the process (its state must
 * outlive one load of the module); module loads that follow see a fresh control
 * file through the environment.
 */
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { findSoftHsmModule, setRealEnv } from './softhsm';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const SHIM_DIR = path.join(REPO_ROOT, 'test', 'shim');
const GENERATED_DIR = path.join(REPO_ROOT, 'native', 'generated');
const generated = (extension: string): string[] =>
  fs
    .readdirSync(GENERATED_DIR)
    .filter((name) => name.endsWith(extension))
    .sort()
    .map((name) => path.join(GENERATED_DIR, name));
// The shim uses the addon's generated lookups (return-value names, attribute kinds).
const SOURCES = [
  path.join(SHIM_DIR, 'fault_shim.cc'),
  path.join(SHIM_DIR, 'fault_shim_state.cc'),
  path.join(SHIM_DIR, 'mutex_check.cc'),
  ...generated('.cc'),
];
// Headers only feed the cache key.
const HEADERS = [path.join(SHIM_DIR, 'fault_shim.h'), path.join(REPO_ROOT, 'native', 'pkcs11', 'types.h'), ...generated('.h')];

let builtPath: string | undefined;

function compilerArgs(output: string): string[] {
  return [
    '-std=c++17',
    '-shared',
    '-fPIC',
    '-O1',
    '-fvisibility=hidden',
    '-Wall',
    '-Wextra',
    '-o',
    output,
    ...SOURCES,
    '-ldl',
    '-lpthread',
  ];
}

/**
 * Compiles the shim (once per set of sources: the result is cached in
 * os.tmpdir()/pkcs11-napi-shim-<hash>/, shared by parallel Jest workers) and
 * returns the path of the .so.
 */
export function buildShim(): string {
  if (builtPath !== undefined && fs.existsSync(builtPath)) return builtPath;
  const compiler = process.env.CXX && process.env.CXX.trim() !== '' ? process.env.CXX.trim() : 'g++';
  const hash = crypto.createHash('sha256');
  hash.update(compiler + '\0' + compilerArgs('OUT').join(' ') + '\0');
  for (const file of [...SOURCES, ...HEADERS]) {
    hash.update(file + '\0');
    hash.update(fs.readFileSync(file));
  }
  const dir = path.join(os.tmpdir(), `pkcs11-napi-shim-${hash.digest('hex').slice(0, 16)}`);
  const output = path.join(dir, 'fault_shim.so');
  if (!fs.existsSync(output)) {
    fs.mkdirSync(dir, { recursive: true });
    // Another worker may be compiling the same sources: each compiles to its own name and the
    // rename is atomic, so the .so is never seen half written.
    const temp = path.join(dir, `fault_shim.so.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
    try {
      execFileSync(compiler, compilerArgs(temp), { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      try {
        fs.rmSync(temp, { force: true });
      } catch {
        // nothing to remove
      }
      throw new Error(`building the fault shim with ${compiler} failed: ${e.stderr?.trim() || e.message}`);
    }
    fs.renameSync(temp, output);
  }
  builtPath = output;
  return output;
}

export interface ShimFaultCounts {
  total: number;
  fail: number;
  down: number;
  delay: number;
  hang: number;
  lieBuffer: number;
  cantLock: number;
  alreadyInitialized: number;
}

/**
 * initialize.exercisemutexes: the CK_RV each use of the caller's mutex functions returned
 * (xNull: called with a null pointer; unlockUnlocked/unlockAgain: unlocking a mutex nobody
 * holds), and two threads each adding 200,000 to a counter under one mutex.
 */
export interface MutexCheck {
  createNull: number;
  lockNull: number;
  unlockNull: number;
  destroyNull: number;
  create: number;
  unlockUnlocked?: number;
  lock?: number;
  unlock?: number;
  unlockAgain?: number;
  threads?: number;
  counter?: number;
  counterExpected?: number;
  counterError?: number;
  destroy?: number;
}

/** The JSON the shim writes to FAULT_SHIM_STATS. */
export interface ShimStats {
  pid: number;
  /** The module the shim forwards to. */
  target: string;
  /** How the caller obtained the shim's function list (null: not yet, for this control file). */
  servedVia: 'C_GetInterface' | 'C_GetFunctionList' | null;
  /** Whether the target is initialised (by a forwarded C_Initialize). */
  targetInitialized: boolean;
  /** Sessions open in the target: opened minus closed (one by one, per slot, or by C_Finalize). */
  openSessions: number;
  sessionsOpened: number;
  sessionsClosed: number;
  /** Calls per function name (only functions called at least once), faults included. */
  calls: Record<string, number>;
  faults: ShimFaultCounts;
  faultsByFunction: Record<string, number>;
  /** CK_C_INITIALIZE_ARGS.flags of every C_Initialize received (null: called with NULL). */
  initializeFlags: Array<number | null>;
  /** For each of those, whether it came with all four mutex functions (CreateMutex …). */
  initializeMutexes: boolean[];
  /** What the mutex functions answered under initialize.exercisemutexes (null: not run). */
  mutexCheck: MutexCheck | null;
  /** handles.offset in effect, as 0x-hex (exact above 2^53). */
  handleOffset: string;
  /** How many versions of the control file the shim has read. */
  controlLoads: number;
  statsWrites: number;
  /** Control-file lines the shim did not understand. */
  controlWarnings: string[];
}

/** One control file + statistics file, in a directory of its own. */
export class ShimControl {
  readonly dir: string;
  readonly controlPath: string;
  readonly statsPath: string;
  private values = new Map<string, string>();
  private generation = 0;
  private lastMtimeMs = 0;
  private readonly ownsDir: boolean;

  constructor(dir?: string) {
    this.ownsDir = dir === undefined;
    this.dir = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'pkcs11-napi-shimctl-'));
    fs.mkdirSync(this.dir, { recursive: true });
    this.controlPath = path.join(this.dir, 'control.txt');
    this.statsPath = path.join(this.dir, 'stats.json');
    this.write();
  }

  /** Adds or changes keys (the others stay). A change reaches the shim at its next call. */
  set(values: Record<string, string | number>): void {
    for (const [key, value] of Object.entries(values)) {
      if (!/^[A-Za-z0-9_.]+$/.test(key)) throw new Error(`ShimControl.set: bad key '${key}'`);
      const text = typeof value === 'number' ? String(value) : value;
      if (/[\r\n]/.test(text)) throw new Error(`ShimControl.set: value of '${key}' has a line break`);
      this.values.set(key, text);
    }
    this.write();
  }

  /** Removes keys. */
  unset(...keys: string[]): void {
    for (const key of keys) this.values.delete(key);
    this.write();
  }

  /** Removes every key: the shim forwards everything unchanged. */
  clear(): void {
    this.values.clear();
    this.write();
  }

  /** The current keys, as written to the control file. */
  get current(): Record<string, string> {
    return Object.fromEntries(this.values);
  }

  /** The last statistics the shim wrote; throws when it has written none yet. */
  stats(): ShimStats {
    let text: string;
    try {
      text = fs.readFileSync(this.statsPath, 'utf8');
    } catch {
      throw new Error(
        `the fault shim has written no statistics to ${this.statsPath} yet ` +
          '(they are written on C_Initialize/C_Finalize, session open/close and injected faults; ' +
          'set stats.always=1 for every call)',
      );
    }
    return JSON.parse(text) as ShimStats;
  }

  /** Polls stats() until `predicate` holds (e.g. a call is now hanging). */
  async waitForStats(predicate: (stats: ShimStats) => boolean, timeoutMs = 5000): Promise<ShimStats> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let last: ShimStats | undefined;
      try {
        last = this.stats();
      } catch {
        last = undefined;
      }
      if (last !== undefined && predicate(last)) return last;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for fault-shim statistics; last: ${JSON.stringify(last)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** FAULT_SHIM_TARGET/CONTROL/STATS for the process environment (see applyShimEnv). */
  env(target: string = findSoftHsmModule()): Record<string, string> {
    return {
      FAULT_SHIM_TARGET: target,
      FAULT_SHIM_CONTROL: this.controlPath,
      FAULT_SHIM_STATS: this.statsPath,
    };
  }

  /** Removes the directory (when this object created it). */
  cleanup(): void {
    if (this.ownsDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private write(): void {
    this.generation += 1;
    const lines = [`generation=${this.generation}`, ...[...this.values].map(([k, v]) => `${k}=${v}`), ''];
    const temp = `${this.controlPath}.tmp-${process.pid}`;
    fs.writeFileSync(temp, lines.join('\n'));
    // File timestamps come from a coarse clock, and a renamed-over inode number may be reused:
    // give every version its own mtime so the shim's stat() check can't miss a change.
    this.lastMtimeMs = Math.max(Date.now(), this.lastMtimeMs + 1);
    const when = new Date(this.lastMtimeMs);
    fs.utimesSync(temp, when, when);
    fs.renameSync(temp, this.controlPath);
  }
}

/**
 * Puts control.env() into the real process environment (native code can't see Jest's
 * process.env copy). Call before load()/C_Initialize of the shim.
 */
export function applyShimEnv(control: ShimControl, target?: string): void {
  for (const [name, value] of Object.entries(control.env(target))) setRealEnv(name, value);
}
