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
import * as fs from 'fs';
import * as path from 'path';
import * as vm from 'vm';

import { checkTokenLabel, findSoftHsmModule as findInstalledSoftHsm, provisionSoftHsmToken } from '../../lib/softhsm/provision';

export const DEFAULT_TOKEN_LABEL = 'pkcs11-napi-test';
export const DEFAULT_SO_PIN = 'so-pin-1234';
export const DEFAULT_USER_PIN = 'user-pin-1234';

const ENSURE_DEPS_HINT =
  'Run `bash scripts/ensure-system-deps.sh` to install SoftHSM2, or set PKCS11_MODULE to the path of a PKCS#11 module.';

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
 * the usual install locations are searched (lib/softhsm/provision.ts).
 */
export function findSoftHsmModule(): string {
  const fromEnv = nonEmptyEnv('PKCS11_MODULE');
  if (fromEnv === undefined) return findInstalledSoftHsm();
  if (!isFile(fromEnv)) {
    throw new Error(`PKCS11_MODULE is set to '${fromEnv}', but no such file exists. ${ENSURE_DEPS_HINT}`);
  }
  return fromEnv;
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

/** What provisionSoftHsmToken's addToken does for each token this helper created. */
const addTokenOf = new WeakMap<TestToken, (label: string) => void>();

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
    label: checkTokenLabel(label, 'PKCS11_TOKEN_LABEL'),
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
  const label = checkTokenLabel(opts?.label ?? DEFAULT_TOKEN_LABEL);
  if (nonEmptyEnv('PKCS11_MODULE') !== undefined) return externalToken();

  // The project's own provisioner: a fresh directory, its softhsm2.conf, and the token.
  const created = provisionSoftHsmToken({ label, soPin: DEFAULT_SO_PIN, userPin: DEFAULT_USER_PIN });
  const previousConf = realProcess().env.SOFTHSM2_CONF;
  setEnv('SOFTHSM2_CONF', created.conf);
  let cleaned = false;
  const token: TestToken = {
    modulePath: created.modulePath,
    dir: created.dir,
    conf: created.conf,
    label,
    soPin: created.soPin,
    userPin: created.userPin,
    // A fresh dir holds exactly this token (plus SoftHSM2's one empty slot, which has no token).
    slotIndexHint: 0,
    external: false,
    cleanup(): void {
      if (cleaned) return;
      cleaned = true;
      created.cleanup();
      // Do not leave SOFTHSM2_CONF pointing at a deleted dir (unless someone re-pointed it since).
      if (realProcess().env.SOFTHSM2_CONF === created.conf) setEnv('SOFTHSM2_CONF', previousConf);
    },
  };
  addTokenOf.set(token, created.addToken);
  return token;
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
  checkTokenLabel(label);
  const addToken = addTokenOf.get(token);
  if (addToken === undefined) {
    throw new TypeError('addEmptySlotToken(token, label): token must be a TestToken from createTestToken()');
  }
  const tokensDir = path.join(token.dir, 'tokens');
  if (!token.conf || !fs.existsSync(token.conf) || !fs.existsSync(tokensDir)) {
    throw new Error(`addEmptySlotToken: token dir '${token.dir}' does not exist (was cleanup() already called?)`);
  }

  const before = new Set(fs.readdirSync(tokensDir));
  addToken(label);
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
