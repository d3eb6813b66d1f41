/**
 * The raw C baseline: bench/raw-sign.cc, compiled here on first use with the system C++
 * compiler (CXX, else g++, else c++) into a cache directory keyed by the source's hash, then
 * run once per measurement as its own process with N pthreads; for raw-c-woken, with a thread
 * those pthreads wake as a binding wakes its event loop; for raw-c-os-locks, with the module's own
 * locks.
 */
import { execFile, execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { signInput } from '../mechanisms';
import { packageRoot } from '../paths';
import { perSign } from '../per-sign';
import type { RunResult, RunSpec } from '../types';

function compilers(): string[] {
  return [process.env.CXX, 'g++', 'c++', 'clang++'].filter((c): c is string => !!c);
}

/** Compiles raw-sign.cc (once per source version) and returns the binary's path. */
export function buildRawSign(): string {
  const root = packageRoot();
  const source = path.join(root, 'bench', 'raw-sign.cc');
  const text = fs.readFileSync(source);
  // Its headers: the PKCS#11 types, every generated constants header (constants.h includes them)
  // and the binding's mutex functions.
  const generated = fs.readdirSync(path.join(root, 'native', 'generated')).filter((name) => name.endsWith('.h')).sort();
  const headers = ['pkcs11/types.h', 'loader/spinning_mutex.h', 'async/cpu_relax.h', ...generated.map((name) => `generated/${name}`)].map((h) =>
    fs.readFileSync(path.join(root, 'native', h)),
  );
  const hash = createHash('sha256').update(text);
  for (const h of headers) hash.update(h);
  const dir = path.join(os.tmpdir(), 'pkcs11-napi-bench-cache');
  fs.mkdirSync(dir, { recursive: true });
  const binary = path.join(dir, `raw-sign-${hash.digest('hex').slice(0, 16)}`);
  if (fs.existsSync(binary)) return binary;
  const errors: string[] = [];
  for (const cxx of compilers()) {
    try {
      const temp = `${binary}.${process.pid}.tmp`;
      execFileSync(cxx, ['-O2', '-std=c++17', '-pthread', `-I${path.join(root, 'native')}`, '-o', temp, source, '-ldl'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      fs.renameSync(temp, binary); // atomic: a concurrent bench never runs a half-written binary
      return binary;
    } catch (error) {
      errors.push(`${cxx}: ${(error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message}`);
    }
  }
  throw new Error(`cannot compile bench/raw-sign.cc:\n${errors.join('\n')}`);
}

export function runRawSign(binary: string, spec: RunSpec, env: NodeJS.ProcessEnv): Promise<RunResult> {
  const args = [
    '--module', spec.target.modulePath,
    '--token', spec.target.token,
    '--key-label', spec.keyLabel,
    '--mechanism', spec.mechanism,
    '--threads', String(spec.concurrency),
    '--warmup', String(spec.warmupMs / 1000),
    '--duration', String(spec.durationMs / 1000),
    '--data-hex', signInput(spec.mechanism).toString('hex'),
  ];
  if (spec.osLocking) args.push('--os-locking', '1');
  if (spec.wake) args.push('--wake-every', String(spec.wake.every), '--wake-work-us', String(spec.wake.workUs));
  return new Promise((resolve, reject) => {
    execFile(binary, args, { env: { ...env, RAW_SIGN_PIN: spec.target.pin }, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = JSON.parse(stdout.trim().split('\n').pop() ?? '');
      } catch {
        parsed = undefined;
      }
      if (!parsed || parsed.error || error) {
        const why = (parsed?.error as string) ?? error?.message ?? 'no output';
        reject(new Error(`raw C (${spec.mechanism}, ${spec.concurrency} threads): ${why}${stderr ? `\n${stderr.trim()}` : ''}`));
        return;
      }
      const latency = parsed.latencyMs as RunResult['latencyMs'];
      resolve({
        signs: parsed.signs as number,
        seconds: parsed.seconds as number,
        signsPerSec: parsed.signsPerSec as number,
        latencyMs: latency,
        rssBeforeMb: (parsed.rssBeforeKb as number) / 1024,
        rssAfterMb: (parsed.rssAfterKb as number) / 1024,
        wakeups: spec.wake ? (parsed.wakeups as number) : undefined,
        perSign: perSign(
          parsed.signs as number,
          (parsed.cpuSeconds as number) * 1e6,
          parsed.voluntarySwitches as number,
          parsed.involuntarySwitches as number,
        ),
      });
    });
  });
}
