import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import {
  DEFAULT_SO_PIN,
  DEFAULT_TOKEN_LABEL,
  DEFAULT_USER_PIN,
  addEmptySlotToken,
  createTestToken,
  findSoftHsmModule,
  TestToken,
} from './support/softhsm';
import { provisionSoftHsmToken } from '../lib/softhsm/provision';

function showSlots(conf: string): string {
  return execFileSync('softhsm2-util', ['--show-slots'], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
}

/** Labels of initialised tokens as printed by `softhsm2-util --show-slots`. */
function initialisedLabels(conf: string): string[] {
  const labels: string[] = [];
  for (const block of showSlots(conf).split(/^Slot /m).slice(1)) {
    if (!/Initialized:\s+yes/.test(block)) continue;
    const m = /^\s*Label:\s*(.*?)\s*$/m.exec(block);
    if (m) labels.push(m[1]);
  }
  return labels;
}

/** SOFTHSM2_CONF as seen by the real C environment (a child inherits it), not Jest's sandboxed copy. */
function realEnvSoftHsmConf(): string {
  return execFileSync('sh', ['-c', 'printf %s "${SOFTHSM2_CONF-}"'], { encoding: 'utf8' });
}

describe('test/support/softhsm', () => {
  const created: TestToken[] = [];
  const make = (opts?: { label?: string }): TestToken => {
    const t = createTestToken(opts);
    created.push(t);
    return t;
  };
  afterAll(() => {
    for (const t of created) t.cleanup();
  });

  test('findSoftHsmModule returns an existing module file', () => {
    const modulePath = findSoftHsmModule();
    expect(fs.statSync(modulePath).isFile()).toBe(true);
  });

  test('findSoftHsmModule: a bad PKCS11_MODULE gives a clear error', () => {
    const saved = process.env.PKCS11_MODULE;
    process.env.PKCS11_MODULE = path.join(os.tmpdir(), 'definitely-not-a-pkcs11-module.so');
    try {
      expect(() => findSoftHsmModule()).toThrow(/PKCS11_MODULE is set to .*definitely-not-a-pkcs11-module\.so.*no such file/);
    } finally {
      if (saved === undefined) delete process.env.PKCS11_MODULE;
      else process.env.PKCS11_MODULE = saved;
    }
  });

  test('createTestToken returns a usable token descriptor', () => {
    const token = make();
    expect(fs.statSync(token.modulePath).isFile()).toBe(true);
    expect(token.label.length).toBeGreaterThan(0);
    expect(token.userPin.length).toBeGreaterThanOrEqual(4);
    expect(token.soPin.length).toBeGreaterThanOrEqual(4);

    if (token.external) {
      // PKCS11_MODULE points the suite at another module: there is no
      // softhsm2.conf of ours and softhsm2-util cannot inspect that token, so
      // the SoftHSM2-specific checks below do not apply.
      expect(token.dir).toBe('');
      expect(token.conf).toBe('');
      expect(() => token.cleanup()).not.toThrow();
      return;
    }

    expect(token.label).toBe(DEFAULT_TOKEN_LABEL);
    expect(token.soPin).toBe(DEFAULT_SO_PIN);
    expect(token.userPin).toBe(DEFAULT_USER_PIN);
    expect(token.slotIndexHint).toBe(0);
    expect(path.basename(token.dir)).toMatch(/^pkcs11-napi-/);
    expect(path.dirname(token.dir)).toBe(os.tmpdir());

    // The conf exists and points SoftHSM2 at this run's own tokens/ dir.
    expect(token.conf).toBe(path.join(token.dir, 'softhsm2.conf'));
    const conf = fs.readFileSync(token.conf, 'utf8');
    expect(conf).toMatch(new RegExp(`^directories\\.tokendir = ${escapeRe(path.join(token.dir, 'tokens'))}$`, 'm'));
    expect(conf).toMatch(/^objectstore\.backend = file$/m);
    expect(conf).toMatch(/^log\.level = ERROR$/m);
    expect(conf).toMatch(/^slots\.removable = false$/m);

    // SOFTHSM2_CONF is set in the real process environment (what libsofthsm2's
    // getenv() sees at C_Initialize), not only in Jest's copy of process.env.
    expect(process.env.SOFTHSM2_CONF).toBe(token.conf);
    expect(realEnvSoftHsmConf()).toBe(token.conf);

    // softhsm2-util sees exactly the freshly initialised token.
    expect(initialisedLabels(token.conf)).toEqual([token.label]);
  });

  test('a custom label is used', () => {
    const token = make({ label: 'custom label ✓' });
    if (token.external) {
      // External tokens keep the label from PKCS11_TOKEN_LABEL.
      expect(token.label).toBe(process.env.PKCS11_TOKEN_LABEL);
      return;
    }
    expect(token.label).toBe('custom label ✓');
    expect(initialisedLabels(token.conf)).toEqual(['custom label ✓']);
  });

  test('two calls produce two different dirs, and cleanup removes only its own', () => {
    const a = make();
    const b = make();
    if (a.external) {
      // Both describe the same externally configured token; nothing to create or remove.
      expect(b.external).toBe(true);
      expect(b.label).toBe(a.label);
      return;
    }
    expect(b.dir).not.toBe(a.dir);
    expect(b.conf).not.toBe(a.conf);
    expect(fs.existsSync(a.dir)).toBe(true);
    expect(fs.existsSync(b.dir)).toBe(true);

    // The most recent token is the active SoftHSM2 configuration.
    expect(realEnvSoftHsmConf()).toBe(b.conf);

    b.cleanup();
    expect(fs.existsSync(b.dir)).toBe(false);
    expect(fs.existsSync(a.dir)).toBe(true);
    // SOFTHSM2_CONF no longer points at the deleted dir: it is restored to what it was before b.
    expect(realEnvSoftHsmConf()).toBe(a.conf);
    expect(process.env.SOFTHSM2_CONF).toBe(a.conf);
    expect(() => b.cleanup()).not.toThrow(); // idempotent

    a.cleanup();
    expect(fs.existsSync(a.dir)).toBe(false);
  });

  test('addEmptySlotToken adds a second token in the same dir', () => {
    const first = make({ label: 'first' });
    if (first.external) {
      // An external module's tokens are not ours to create: the helper refuses clearly.
      expect(() => addEmptySlotToken(first, 'second')).toThrow(/external module/);
      return;
    }
    const second = addEmptySlotToken(first, 'second');
    expect(second.external).toBe(false);
    expect(second.dir).toBe(first.dir);
    expect(second.conf).toBe(first.conf);
    expect(second.label).toBe('second');
    expect(second.userPin).toBe(first.userPin);
    expect(initialisedLabels(first.conf).sort()).toEqual(['first', 'second']);

    // The second token's cleanup removes only that token.
    second.cleanup();
    expect(initialisedLabels(first.conf)).toEqual(['first']);

    first.cleanup();
    expect(fs.existsSync(first.dir)).toBe(false);
    expect(() => addEmptySlotToken(first, 'third')).toThrow(/does not exist/);
  });

  test('bad input gives clear errors', () => {
    expect(() => createTestToken({ label: '' })).toThrow(/must not be empty/);
    expect(() => createTestToken({ label: 'x'.repeat(33) })).toThrow(/at most 32/);
    expect(() => createTestToken({ label: 42 as unknown as string })).toThrow(/must be a string/);
    expect(() => createTestToken(null as unknown as { label?: string })).toThrow(/opts must be an object/);
  });
});

describe('lib/softhsm/provision (the provisioner the tests and the demo share)', () => {
  test('refuses bad labels and PINs before it creates anything', () => {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'provision-parent-'));
    try {
      expect(() => provisionSoftHsmToken({ parent, label: ' padded' })).toThrow(RangeError);
      expect(() => provisionSoftHsmToken({ parent, label: ' padded' })).toThrow(/must not start or end with spaces/);
      expect(() => provisionSoftHsmToken({ parent, userPin: '123' })).toThrow(/user PIN must be 4-255 characters/);
      expect(() => provisionSoftHsmToken({ parent, soPin: 7 as unknown as string })).toThrow(TypeError);
      expect(fs.readdirSync(parent)).toEqual([]);
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });

  test('a softhsm2-util failure names the command with its PINs masked, and its output', () => {
    const token = provisionSoftHsmToken({ label: 'masked', soPin: 'so-secret-9876', userPin: 'user-secret-5432' });
    token.cleanup(); // its softhsm2.conf is gone: softhsm2-util cannot start
    let message = '';
    try {
      token.addToken('second');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^softhsm2-util --init-token --free --label second --so-pin \*\*\* --pin \*\*\* failed/);
    expect(message).toContain(`SOFTHSM2_CONF=${token.conf}`);
    expect(message).toMatch(/exit status \d+/);
    expect(message).not.toContain('so-secret-9876');
    expect(message).not.toContain('user-secret-5432');
  });
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
