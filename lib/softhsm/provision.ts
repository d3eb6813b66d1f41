import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * Throw-away SoftHSM2 tokens for demos, benchmarks and tests: a fresh directory with its own
 * softhsm2.conf, initialised with softhsm2-util. SoftHSM2 reads SOFTHSM2_CONF when the module is
 * initialised, so set it (token.env) in the environment before loading the module.
 */

/** Where distributions and Homebrew install libsofthsm2, in search order. */
export const SOFTHSM_MODULE_PATHS: readonly string[] = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
  '/opt/homebrew/lib/softhsm/libsofthsm2.so',
];

const INSTALL_HINT = 'Install SoftHSM2 (`bash scripts/ensure-system-deps.sh` on Debian/Ubuntu, `brew install softhsm` on macOS).';

/** The SoftHSM2 module's path, or a clear error listing where it looked. */
export function findSoftHsmModule(): string {
  for (const candidate of SOFTHSM_MODULE_PATHS) {
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error(`SoftHSM2 (libsofthsm2.so) not found; tried ${SOFTHSM_MODULE_PATHS.join(', ')}. ${INSTALL_HINT}`);
}

export interface SoftHsmToken {
  modulePath: string;
  dir: string;
  conf: string;
  label: string;
  soPin: string;
  userPin: string;
  /** Environment the module must see: { SOFTHSM2_CONF }. */
  env: Record<string, string>;
  /** Initialises one more token in the same directory (a second slot). */
  addToken(label: string): void;
  /** Removes the directory. Idempotent. */
  cleanup(): void;
}

export interface ProvisionOptions {
  label?: string;
  soPin?: string;
  userPin?: string;
  /** Parent directory for the token directory (default: the OS temp directory). */
  parent?: string;
}

export function provisionSoftHsmToken(options: ProvisionOptions = {}): SoftHsmToken {
  const label = options.label ?? 'pkcs11-napi';
  const soPin = options.soPin ?? 'so-pin-1234';
  const userPin = options.userPin ?? 'user-pin-1234';
  if (Buffer.byteLength(label) > 32 || label.length === 0) throw new TypeError('label must be 1 to 32 bytes');
  const modulePath = findSoftHsmModule();
  const dir = fs.mkdtempSync(path.join(options.parent ?? os.tmpdir(), 'pkcs11-napi-'));
  const tokens = path.join(dir, 'tokens');
  fs.mkdirSync(tokens);
  const conf = path.join(dir, 'softhsm2.conf');
  fs.writeFileSync(
    conf,
    `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
  );
  const env = { SOFTHSM2_CONF: conf };
  const initToken = (tokenLabel: string) => {
    try {
      // stdin is closed: softhsm2-util prompts (and would wait forever) when a PIN is refused.
      execFileSync(
        'softhsm2-util',
        ['--init-token', '--free', '--label', tokenLabel, '--so-pin', soPin, '--pin', userPin],
        { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
      throw new Error(`softhsm2-util could not initialise token '${tokenLabel}': ${stderr || (error as Error).message}. ${INSTALL_HINT}`);
    }
  };
  try {
    initToken(label);
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    modulePath,
    dir,
    conf,
    label,
    soPin,
    userPin,
    env,
    addToken: initToken,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
