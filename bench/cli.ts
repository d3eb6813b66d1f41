/**
 * `npm run bench [-- options]`: argument parsing and the entry point. The work is in bench.ts.
 */
import * as path from 'path';

import { MECHANISM_NAMES, MechanismName } from './mechanisms';
import { packageRoot } from './paths';
import { DEFAULT_LOADS, LOAD_NAMES, LoadName, WakeModel } from './types';

export interface BenchOptions {
  modulePath?: string;
  token?: string;
  pinSource?: string;
  keyLabels: string[];
  mechanisms: MechanismName[];
  /** One list for every mechanism; unset = the defaults below. */
  concurrency?: number[];
  durationMs: number;
  warmupMs: number;
  repeat: number;
  /** Head-to-head rounds per ratio target after the sweep (head-to-head.ts); 0: none. */
  rounds: number;
  loads: LoadName[];
  remote: boolean;
  soak?: number;
  json: boolean;
  outDir: string;
  uvThreads?: number;
  engineThreads?: number;
  /** setWorkerNice for our load processes; undefined keeps the binding's default. */
  workerNice?: number;
  /** setWorkerYield for our load processes; undefined keeps the binding's default (on). */
  workerYield?: boolean;
  wake: WakeModel;
  cpuProf: boolean;
  deepBind: boolean;
}

/**
 * The full sweep for ECDSA, the mechanism the targets are about; a shorter one for the others,
 * which keeps the default run (4 loads × 3 repeats × 2 s windows) under about ten minutes.
 */
export const FULL_SWEEP = [1, 2, 4, 8, 16, 32, 64];
export const SHORT_SWEEP = [1, 4, 16, 64];
export const defaultSweep = (mechanism: MechanismName) => (mechanism === 'ecdsa' ? FULL_SWEEP : SHORT_SWEEP);

const USAGE = `Usage: npm run bench -- [options]

Measures signatures per second on a PKCS#11 token: raw C (the token's limit), pkcs11js, and
ours (SigningPool, and the one-hop native.sign), over a concurrency sweep.

Token (default: a fresh SoftHSM2 token in a temp dir, with keys generated for the run):
  --module PATH            a PKCS#11 module to measure instead
  --token LABEL            its token
  --pin-source SRC         the user PIN: file:/path, a path, or env:NAME
  --key-label L[,L...]     existing private key(s), at most one per kind (EC, RSA, Ed25519)
  --remote                 SoftHSM2 behind 'p11-kit server', through p11-kit-client.so

What and how long:
  --mechanisms LIST        ${MECHANISM_NAMES.join(',')} (default: all; the ones the token
                           lacks are skipped)
  --concurrency LIST       requests in flight, e.g. 1,4,64 (default: ${FULL_SWEEP.join(',')} for
                           ecdsa, ${SHORT_SWEEP.join(',')} for the rest)
  --duration S             measured window per run (default 2)
  --warmup S               warm-up before each window (default 0.3, at most half the window)
  --repeat N               repeats of the sweep; medians are reported (default 3)
  --rounds N               then, per ratio target, N rounds of ours and the baseline back to
                           back at the concurrencies the sweep found best; the target is judged
                           on the median of the rounds' ratios (default 5; 0: judge on the sweep)
  --loads LIST             ${LOAD_NAMES.join(',')}
                           (default: ${DEFAULT_LOADS.join(',')})
  --wake-every N           raw-c-woken: its signing threads wake one more thread after every
                           N signatures, as a binding wakes its event loop (default 32, our
                           engine's batch)
  --wake-work-us U         raw-c-woken: µs that thread works per signal it reads (default 0)
  --uv-threads N           UV_THREADPOOL_SIZE for pkcs11js (default: our engine's thread count)
  --engine-threads N       our engine's thread count (setThreadCount; default max(8, 2 × cores))
  --worker-nice N          how much higher our workers' nice value is (setWorkerNice, 0-19; default 0)
  --worker-yield on|off    whether our workers yield their core between calls while computing
                           calls are queued (setWorkerYield; default on)
  --deep-bind              load the module into ours with RTLD_DEEPBIND: a module linked to the
                           system OpenSSL (SoftHSM2) then uses it, as in raw C, instead of Node's
  --soak N                 instead of the sweep: N signatures through the pool at concurrency 64,
                           RSS and open sessions before and after

Output:
  --json                   stdout carries only the results file's path (the report goes to stderr)
  --out DIR                where results JSON and SVG charts go (default bench/results)
  --cpu-prof               write V8 CPU profiles of the Node load processes into DIR
`;

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function positive(name: string, value: string, integer: boolean): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'}, got '${value}'`);
  }
  return n;
}

export function parseArgs(argv: string[]): BenchOptions {
  const options: BenchOptions = {
    keyLabels: [],
    mechanisms: [...MECHANISM_NAMES],
    durationMs: 2000,
    warmupMs: 300,
    repeat: 3,
    rounds: 5,
    loads: [...DEFAULT_LOADS],
    wake: { every: 32, workUs: 0 },
    remote: false,
    json: false,
    outDir: path.join(packageRoot(), 'bench', 'results'),
    cpuProf: false,
    deepBind: false,
  };
  let warmupGiven = false;
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const next = (): string => {
      if (value !== undefined) return value;
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '--module':
        options.modulePath = path.resolve(next());
        break;
      case '--token':
        options.token = next();
        break;
      case '--pin-source':
        options.pinSource = next();
        break;
      case '--key-label':
        options.keyLabels.push(...list(next()));
        break;
      case '--mechanisms': {
        const names = list(next());
        for (const n of names) if (!MECHANISM_NAMES.includes(n as MechanismName)) throw new Error(`unknown mechanism '${n}'`);
        options.mechanisms = names as MechanismName[];
        break;
      }
      case '--concurrency':
        options.concurrency = [...new Set(list(next()).map((v) => positive('--concurrency', v, true)))].sort((a, b) => a - b);
        break;
      case '--duration':
        options.durationMs = positive('--duration', next(), false) * 1000;
        break;
      case '--warmup': {
        const v = Number(next());
        if (!Number.isFinite(v) || v < 0) throw new Error('--warmup must be a number ≥ 0');
        options.warmupMs = v * 1000;
        warmupGiven = true;
        break;
      }
      case '--repeat':
        options.repeat = positive('--repeat', next(), true);
        break;
      case '--rounds': {
        const v = next();
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new Error(`--rounds must be an integer ≥ 0, got '${v}'`);
        options.rounds = n;
        break;
      }
      case '--loads': {
        const names = list(next());
        for (const n of names) if (!LOAD_NAMES.includes(n as LoadName)) throw new Error(`unknown load '${n}'`);
        options.loads = names as LoadName[];
        break;
      }
      case '--wake-every':
        options.wake.every = positive('--wake-every', next(), true);
        break;
      case '--wake-work-us': {
        const v = next();
        const us = Number(v);
        if (!Number.isFinite(us) || us < 0) throw new Error(`--wake-work-us must be a number ≥ 0, got '${v}'`);
        options.wake.workUs = us;
        break;
      }
      case '--uv-threads':
        options.uvThreads = positive('--uv-threads', next(), true);
        break;
      case '--engine-threads':
        options.engineThreads = positive('--engine-threads', next(), true);
        break;
      case '--worker-nice': {
        const v = next();
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > 19) throw new Error(`--worker-nice must be an integer from 0 to 19, got '${v}'`);
        options.workerNice = n;
        break;
      }
      case '--worker-yield': {
        const v = next();
        if (v !== 'on' && v !== 'off') throw new Error(`--worker-yield must be 'on' or 'off', got '${v}'`);
        options.workerYield = v === 'on';
        break;
      }
      case '--remote':
        options.remote = true;
        break;
      case '--soak':
        options.soak = positive('--soak', next(), true);
        break;
      case '--json':
        options.json = true;
        break;
      case '--out':
        options.outDir = path.resolve(next());
        break;
      case '--cpu-prof':
        options.cpuProf = true;
        break;
      case '--deep-bind':
        options.deepBind = true;
        break;
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default:
        throw new Error(`unknown option '${arg}' (see --help)`);
    }
  }
  if (!warmupGiven) options.warmupMs = Math.min(options.warmupMs, options.durationMs / 2);
  const named = [options.modulePath, options.token, options.pinSource].filter((v) => v !== undefined).length;
  if (named > 0 && (named < 3 || options.keyLabels.length === 0)) {
    throw new Error('--module needs --token, --pin-source and --key-label');
  }
  if (options.modulePath && options.remote) throw new Error('--remote serves its own SoftHSM2 token; it does not combine with --module');
  return options;
}

if (require.main === module) {
  let options: BenchOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    process.exit(2);
  }
  import('./bench')
    .then(({ runBench }) => runBench(options))
    .then(
      (code) => process.exit(code),
      (error) => {
        process.stderr.write(`bench: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
        process.exit(1);
      },
    );
}
