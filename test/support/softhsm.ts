/**
 * Test support: real SoftHSM2 tokens in throw-away directories.
 *
 * Every test file that needs an HSM calls `createTestToken()` (typically in
 * `beforeAll`) and `token.cleanup()` (in `afterAll`). Nothing is mocked: the
 * binding loads the real libsofthsm2 and talks to a token that lives in a
 * fresh temp dir created here.
 *
 * Pointing the suite at another PKCS#11 module: set PKCS11_MODULE (plus
 * PKCS11_TOKEN_LABEL, PKCS11_SO_PIN, PKCS11_USER_PIN and optionally
 * PKCS11_LIBRARY_PARAMETERS). `createTestToken()` then returns a descriptor
 * of that existing token (`external: true`) and creates nothing.
 *
 * Missing system packages (SoftHSM2 etc.) are installed by
 * scripts/ensure-system-deps.sh, which `npm test` runs first.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vm from 'vm';

export const DEFAULT_TOKEN_LABEL = 'pkcs11-napi-test';
export const DEFAULT_SO_PIN = 'so-pin-1234';
export const DEFAULT_USER_PIN = 'user-pin-1234';

const ENSURE_DEPS_HINT =
  'Run `bash scripts/ensure-system-deps.sh` to install SoftHSM2, or set PKCS11_MODULE to the path of a PKCS#11 module.';

/** Where distributions and Homebrew put libsofthsm2, in search order. */
export const SOFTHSM_MODULE_PATHS: readonly string[] = Array.from(
  new Set([
    '/usr/lib/softhsm/libsofthsm2.so',
    '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
    '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
    '/usr/local/lib/softhsm/libsofthsm2.so',
    '/opt/homebrew/lib/softhsm/libsofthsm2.so',
  ]),
);

export interface TestToken {
  /** Absolute path of the PKCS#11 module to load. */
  modulePath: string;
  /** Value for CK_C_INITIALIZE_ARGS.LibraryParameters (NSS-style modules); undefined for SoftHSM2. */
  libraryParameters?: string;
  /** Temp dir owning this token (softhsm2.conf + tokens/). '' for external tokens. */
  dir: string;
  /** Path of the softhsm2.conf this token lives in. '' for external tokens. */
  conf: string;
  /** Token label (CK_TOKEN_INFO.label without the space padding). */
  label: string;
  soPin: string;
  userPin: string;
  /**
   * Index into C_GetSlotList(tokenPresent=true) where the token is expected
   * to be. Only set when it is known (a fresh dir holding exactly one token);
   * tests should still look the token up by label.
   */
  slotIndexHint?: number;
  /** True when the token comes from PKCS11_MODULE & co. rather than a fresh SoftHSM2 dir. */
  external: boolean;
  /** Remove everything this helper created for the token. Idempotent; no-op for external tokens. */
  cleanup(): void;
}

function nonEmptyEnv(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Locate the SoftHSM2 PKCS#11 module. PKCS11_MODULE (if set) wins, otherwise
 * the usual install locations are searched.
 */
export function findSoftHsmModule(): string {
  const fromEnv = nonEmptyEnv('PKCS11_MODULE');
  if (fromEnv !== undefined) {
    if (!isFile(fromEnv)) {
      throw new Error(`PKCS11_MODULE is set to '${fromEnv}', but no such file exists. ${ENSURE_DEPS_HINT}`);
    }
    return fromEnv;
  }
  for (const candidate of SOFTHSM_MODULE_PATHS) {
    if (isFile(candidate)) return candidate;
  }
  throw new Error(
    `SoftHSM2 PKCS#11 module (libsofthsm2.so) not found. Tried:\n` +
      SOFTHSM_MODULE_PATHS.map((p) => `  ${p}`).join('\n') +
      `\n${ENSURE_DEPS_HINT}`,
  );
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * The real `process` object of this Node process.
 *
 * Jest runs each test file in a vm sandbox whose `process.env` is a plain
 * *copy* of the environment: assigning to it does not call setenv(), so the
 * getenv("SOFTHSM2_CONF") inside libsofthsm2's C_Initialize would never see
 * it. Code evaluated with vm.runInThisContext runs in Node's main context,
 * whose `process` is the real one. Outside Jest this is simply `process`.
 */
function realProcess(): NodeJS.Process {
  try {
    const p: unknown = vm.runInThisContext('process');
    if (typeof p === 'object' && p !== null && 'env' in p) return p as NodeJS.Process;
  } catch {
    // fall through
  }
  return process;
}

/**
 * Set (or with `undefined`, unset) an env var both in Jest's sandboxed
 * `process.env` and in the real C environment that native code (getenv in a
 * PKCS#11 module, e.g. SOFTHSM2_CONF or p11-kit-client's
 * P11_KIT_SERVER_ADDRESS) reads. A plain `process.env.X = ...` inside a Jest
 * test does NOT reach native code.
 */
export function setRealEnv(name: string, value: string | undefined): void {
  setEnv(name, value);
}

function setEnv(name: string, value: string | undefined): void {
  for (const env of new Set([process.env, realProcess().env])) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
}

function validateLabel(label: unknown, what: string): string {
  if (typeof label !== 'string') {
    throw new TypeError(`${what} must be a string, got ${label === null ? 'null' : typeof label}`);
  }
  if (label.length === 0) throw new RangeError(`${what} must not be empty`);
  const bytes = Buffer.byteLength(label, 'utf8');
  if (bytes > 32) {
    throw new RangeError(`${what} '${label}' is ${bytes} bytes in UTF-8; PKCS#11 token labels hold at most 32`);
  }
  if (label !== label.trim()) {
    throw new RangeError(`${what} '${label}' must not start or end with spaces (PKCS#11 pads labels with spaces)`);
  }
  return label;
}

function validatePin(pin: string, what: string): void {
  // softhsm2-util prompts interactively for PINs outside 4..255 characters.
  if (pin.length < 4 || pin.length > 255) {
    throw new RangeError(`${what} must be 4-255 characters for SoftHSM2, got ${pin.length}`);
  }
}

function runSoftHsmUtil(args: string[], conf: string): string {
  try {
    return execFileSync('softhsm2-util', args, {
      env: { ...process.env, SOFTHSM2_CONF: conf },
      // stdin ignored: softhsm2-util must never sit waiting for a PIN prompt.
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      timeout: 30_000,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { status?: number | null; signal?: string | null; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error(`softhsm2-util not found on PATH. ${ENSURE_DEPS_HINT}`);
    }
    const shownArgs = args.map((a, i) => (args[i - 1] === '--so-pin' || args[i - 1] === '--pin' ? '***' : a));
    const details = [
      e.status !== undefined && e.status !== null ? `exit status ${e.status}` : undefined,
      e.signal ? `signal ${e.signal}` : undefined,
      e.stderr && e.stderr.trim() ? `stderr: ${e.stderr.trim()}` : undefined,
      e.stdout && e.stdout.trim() ? `stdout: ${e.stdout.trim()}` : undefined,
    ].filter((x): x is string => x !== undefined);
    throw new Error(
      `softhsm2-util ${shownArgs.join(' ')} failed (SOFTHSM2_CONF=${conf})` +
        (details.length ? `: ${details.join('; ')}` : `: ${e.message}`),
    );
  }
}

function initFreeToken(conf: string, label: string, soPin: string, userPin: string): void {
  runSoftHsmUtil(['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', userPin], conf);
}

function externalToken(): TestToken {
  const modulePath = findSoftHsmModule(); // validates PKCS11_MODULE points at a file
  const label = nonEmptyEnv('PKCS11_TOKEN_LABEL');
  const soPin = nonEmptyEnv('PKCS11_SO_PIN');
  const userPin = nonEmptyEnv('PKCS11_USER_PIN');
  const missing = [
    label === undefined ? 'PKCS11_TOKEN_LABEL' : undefined,
    soPin === undefined ? 'PKCS11_SO_PIN' : undefined,
    userPin === undefined ? 'PKCS11_USER_PIN' : undefined,
  ].filter((x): x is string => x !== undefined);
  if (label === undefined || soPin === undefined || userPin === undefined) {
    throw new Error(
      `PKCS11_MODULE is set (${modulePath}), so the tests use an existing token, but ${missing.join(', ')} ` +
        `${missing.length === 1 ? 'is' : 'are'} not set. Set them, or unset PKCS11_MODULE to test against a fresh SoftHSM2 token.`,
    );
  }
  return {
    modulePath,
    libraryParameters: nonEmptyEnv('PKCS11_LIBRARY_PARAMETERS'),
    dir: '',
    conf: '',
    label: validateLabel(label, 'PKCS11_TOKEN_LABEL'),
    soPin,
    userPin,
    external: true,
    cleanup(): void {
      // The token belongs to whoever configured PKCS11_MODULE; leave it alone.
    },
  };
}

/**
 * Create a fresh SoftHSM2 token in a new temp dir and point SOFTHSM2_CONF at
 * it (in the real process environment, so libsofthsm2 sees it).
 *
 * SoftHSM2 reads SOFTHSM2_CONF in C_Initialize: call this before the module
 * is initialised. Only one SoftHSM2 configuration is active per process, so
 * the most recent call wins; cleanup() restores the previous SOFTHSM2_CONF.
 *
 * With PKCS11_MODULE set, returns the externally configured token instead
 * (`external: true`; opts.label is ignored).
 */
export function createTestToken(opts?: { label?: string }): TestToken {
  if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
    throw new TypeError(`createTestToken(opts): opts must be an object, got ${opts === null ? 'null' : typeof opts}`);
  }
  // Validate the arguments even when they end up unused (external token), so bad calls fail the same way everywhere.
  const label = validateLabel(opts?.label ?? DEFAULT_TOKEN_LABEL, 'token label');
  if (nonEmptyEnv('PKCS11_MODULE') !== undefined) return externalToken();

  const soPin = DEFAULT_SO_PIN;
  const userPin = DEFAULT_USER_PIN;
  validatePin(soPin, 'SO PIN');
  validatePin(userPin, 'user PIN');
  const modulePath = findSoftHsmModule();

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pkcs11-napi-'));
  const conf = path.join(dir, 'softhsm2.conf');
  const previousConf = realProcess().env.SOFTHSM2_CONF;
  let envChanged = false;
  let cleaned = false;

  const cleanup = (): void => {
    if (cleaned) return;
    cleaned = true;
    fs.rmSync(dir, { recursive: true, force: true });
    // Do not leave SOFTHSM2_CONF pointing at a deleted dir (unless someone re-pointed it since).
    if (envChanged && realProcess().env.SOFTHSM2_CONF === conf) setEnv('SOFTHSM2_CONF', previousConf);
  };

  try {
    const tokensDir = path.join(dir, 'tokens');
    fs.mkdirSync(tokensDir);
    fs.writeFileSync(
      conf,
      [
        '# Generated by test/support/softhsm.ts for one test run; deleted by cleanup().',
        `directories.tokendir = ${tokensDir}`,
        'objectstore.backend = file',
        'log.level = ERROR',
        'slots.removable = false',
        '',
      ].join('\n'),
    );
    setEnv('SOFTHSM2_CONF', conf);
    envChanged = true;
    initFreeToken(conf, label, soPin, userPin);
  } catch (err) {
    cleanup();
    throw err;
  }

  return {
    modulePath,
    dir,
    conf,
    label,
    soPin,
    userPin,
    // A fresh dir holds exactly this token (plus SoftHSM2's one empty slot, which has no token).
    slotIndexHint: 0,
    external: false,
    cleanup,
  };
}

/**
 * Initialise one more token (in SoftHSM2's free slot) in the same dir as
 * `token`, with the same PINs, so a test can work with two tokens. Must be
 * called before the module is initialised (SoftHSM2 scans tokens at
 * C_Initialize).
 *
 * The returned token's cleanup() removes only the new token's files; the
 * original token's cleanup() removes the whole dir, both tokens included.
 */
export function addEmptySlotToken(token: TestToken, label: string): TestToken {
  if (typeof token !== 'object' || token === null) {
    throw new TypeError('addEmptySlotToken(token, label): token must be a TestToken from createTestToken()');
  }
  if (token.external) {
    throw new Error(
      'addEmptySlotToken: cannot add a token to an external module (PKCS11_MODULE is set); ' +
        'tests needing two tokens should skip when token.external is true.',
    );
  }
  validateLabel(label, 'token label');
  const tokensDir = path.join(token.dir, 'tokens');
  if (!token.conf || !fs.existsSync(token.conf) || !fs.existsSync(tokensDir)) {
    throw new Error(`addEmptySlotToken: token dir '${token.dir}' does not exist (was cleanup() already called?)`);
  }

  const before = new Set(fs.readdirSync(tokensDir));
  initFreeToken(token.conf, label, token.soPin, token.userPin);
  const created = fs.readdirSync(tokensDir).filter((name) => !before.has(name));

  return {
    modulePath: token.modulePath,
    libraryParameters: token.libraryParameters,
    dir: token.dir,
    conf: token.conf,
    label,
    soPin: token.soPin,
    userPin: token.userPin,
    // Slot order among several tokens depends on directory listing order: look it up by label.
    slotIndexHint: undefined,
    external: false,
    cleanup(): void {
      for (const name of created) fs.rmSync(path.join(tokensDir, name), { recursive: true, force: true });
    },
  };
}
