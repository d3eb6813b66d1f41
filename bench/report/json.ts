/** The machine-readable result: everything measured, every raw sample, and how it was run. */
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** 2026-01-31T12-00-00Z: sortable, and legal in file names everywhere. */
export function timestamp(date = new Date()): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

export function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    totalMemoryMb: Math.round(os.totalmem() / (1024 * 1024)),
    loadAverage: os.loadavg(),
  };
}

/**
 * Which code was measured: the commit, whether tracked files differed from it, and the hash of
 * the native addon (the engine changes between runs while it is being tuned).
 */
export function buildInfo(root: string): Record<string, unknown> {
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    } catch {
      return undefined;
    }
  };
  const addon = path.join(root, 'build', 'Release', 'pkcs11_napi.node');
  let addonSha256: string | undefined;
  try {
    addonSha256 = createHash('sha256').update(fs.readFileSync(addon)).digest('hex').slice(0, 16);
  } catch {
    addonSha256 = undefined;
  }
  const status = git('status', '--porcelain', '--untracked-files=no');
  return { commit: git('rev-parse', 'HEAD'), trackedChanges: status === undefined ? undefined : status.length > 0, addon, addonSha256 };
}

/** Writes `<dir>/<stamp>.json`; returns its path. */
export function writeJson(dir: string, stamp: string, results: unknown): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${stamp}.json`);
  fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  return file;
}

/** Writes `<dir>/<stamp>-<name>.svg` next to the JSON; returns its path. */
export function writeSvg(dir: string, stamp: string, name: string, svg: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${stamp}-${name}.svg`);
  fs.writeFileSync(file, svg);
  return file;
}
