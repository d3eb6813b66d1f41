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
  '/usr/lib64/pkcs11/libsofthsm2.so',
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

/** Checks a token label: 1 to 32 bytes of UTF-8 (PKCS#11 pads labels to 32 with spaces). */
export function checkTokenLabel(label: unknown, what = 'token label'): string {
  if (typeof label !== 'string') {
    throw new TypeError(`${what} must be a string, got ${label === null ? 'null' : typeof label}`);
  }
  if (label.length === 0) throw new RangeError(`${what} must not be empty`);
  const bytes = Buffer.byteLength(label, 'utf8');
  if (bytes > 32) {
    throw new RangeError(`${what} '${label}' is ${bytes} bytes in UTF-8; PKCS#11 token labels hold at most 32`);
  }
  // The padding would make a label with spaces at its ends unfindable by its own name.
  if (label !== label.trim()) {
    throw new RangeError(`${what} '${label}' must not start or end with spaces (PKCS#11 pads labels with spaces)`);
  }
  return label;
}

function checkPin(pin: unknown, what: string): string {
  if (typeof pin !== 'string') throw new TypeError(`${what} must be a string, got ${pin === null ? 'null' : typeof pin}`);
  // Outside 4..255 characters softhsm2-util asks for the PIN on the terminal instead.
  if (pin.length < 4 || pin.length > 255) throw new RangeError(`${what} must be 4-255 characters for SoftHSM2, got ${pin.length}`);
  return pin;
}

/** Runs softhsm2-util against `conf`; a failure names the command (PINs masked), its status and output. */
function runSoftHsmUtil(args: string[], conf: string): void {
  try {
    execFileSync('softhsm2-util', args, {
      env: { ...process.env, SOFTHSM2_CONF: conf },
      // stdin is closed: softhsm2-util prompts (and would wait forever) when a PIN is refused.
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { status?: number | null; signal?: string | null; stdout?: Buffer; stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error(`softhsm2-util not found on PATH. ${INSTALL_HINT}`);
    const shown = args.map((arg, i) => (args[i - 1] === '--so-pin' || args[i - 1] === '--pin' ? '***' : arg));
    const details = [
      typeof e.status === 'number' ? `exit status ${e.status}` : undefined,
      e.signal ? `signal ${e.signal}` : undefined,
      e.stderr?.toString().trim() ? `stderr: ${e.stderr.toString().trim()}` : undefined,
      e.stdout?.toString().trim() ? `stdout: ${e.stdout.toString().trim()}` : undefined,
    ].filter((detail): detail is string => detail !== undefined);
    throw new Error(`softhsm2-util ${shown.join(' ')} failed (SOFTHSM2_CONF=${conf}): ${details.join('; ') || e.message}`);
  }
}

export function provisionSoftHsmToken(options: ProvisionOptions = {}): SoftHsmToken {
  const label = checkTokenLabel(options.label ?? 'pkcs11-napi');
  const soPin = checkPin(options.soPin ?? 'so-pin-1234', 'SO PIN');
  const userPin = checkPin(options.userPin ?? 'user-pin-1234', 'user PIN');
  const modulePath = findSoftHsmModule();
  const dir = fs.mkdtempSync(path.join(options.parent ?? os.tmpdir(), 'pkcs11-napi-'));
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  const tokens = path.join(dir, 'tokens');
  const conf = path.join(dir, 'softhsm2.conf');
  const addToken = (tokenLabel: string) => {
    runSoftHsmUtil(
      ['--init-token', '--free', '--label', checkTokenLabel(tokenLabel), '--so-pin', soPin, '--pin', userPin],
      conf,
    );
  };
  try {
    fs.mkdirSync(tokens);
    fs.writeFileSync(
      conf,
      `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
    );
    addToken(label);
  } catch (error) {
    cleanup();
    throw error;
  }
  return { modulePath, dir, conf, label, soPin, userPin, env: { SOFTHSM2_CONF: conf }, addToken, cleanup };
}
