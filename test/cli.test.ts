/**
 * p11, end to end: the compiled CLI (dist/lib/cli/main.js, from `npm run build:ts`) run as a
 * child process against a fresh SoftHSM2 token, with OpenSSL as the independent judge of the
 * certificates and CRLs it makes.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { COMMANDS } from '../lib/cli/commands';
import { createTestToken, TestToken } from './support/softhsm';

const CLI = path.resolve(__dirname, '../dist/lib/cli/main.js');

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

let token: TestToken;
let dir: string;

/** Runs p11 with the token's environment (P11_PIN unless `env` overrides it). */
function p11(args: string[], options: { env?: Record<string, string | undefined>; input?: string | Buffer } = {}): Result {
  const env: Record<string, string | undefined> = {
    ...process.env,
    PKCS11_MODULE: token.modulePath,
    P11_PIN: token.userPin,
    ...(token.conf ? { SOFTHSM2_CONF: token.conf } : {}),
    ...options.env,
  };
  const r = spawnSync(process.execPath, [CLI, ...args], { env, input: options.input ?? '', encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** p11 that must succeed; failures show the CLI's stderr. */
function ok(args: string[], options?: Parameters<typeof p11>[1]): Result {
  const r = p11(args, options);
  if (r.status !== 0) throw new Error(`p11 ${args.join(' ')} exited ${r.status}\n${r.stderr}`);
  return r;
}

function openssl(args: string[]): Result {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string): string {
  return path.join(dir, name);
}

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build:ts' first`);
  token = createTestToken({ label: 'cli-test' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11-cli-test-'));
});

afterAll(() => {
  token?.cleanup();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const tokenUri = () => `pkcs11:token=${token.label}`;
const keyUri = (label: string) => `pkcs11:token=${token.label};object=${label}`;

describe('inspection commands', () => {
  test('info --json names the module and the token', () => {
    const info = JSON.parse(ok(['info', tokenUri(), '--json']).stdout);
    expect(info.modulePath).toBe(token.modulePath);
    expect(info.cryptokiVersion).toMatch(/^\d+\.\d+$/);
    expect(info.token.label).toBe(token.label);
  });

  test('slots --json lists the token with its URI', () => {
    const slots = JSON.parse(ok(['slots', '--json']).stdout) as Array<{ token?: { label: string }; uri?: string }>;
    const ours = slots.find((s) => s.token?.label === token.label);
    expect(ours?.uri).toMatch(new RegExp(`^pkcs11:token=${token.label};`));
  });

  test('mechanisms --json includes ECDSA with its flags', () => {
    const mechanisms = JSON.parse(ok(['mechanisms', tokenUri(), '--json']).stdout) as Array<{ name: string; flags: string[] }>;
    expect(mechanisms.find((m) => m.name === 'CKM_ECDSA')?.flags).toEqual(expect.arrayContaining(['sign', 'verify']));
  });

  test('random 32 prints 64 hex characters', () => {
    expect(ok(['random', '32', tokenUri()]).stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(ok(['random', '8', '--json']).stdout).value).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('keys, signing and verifying', () => {
  beforeAll(() => {
    ok(['keygen', tokenUri(), '--type', 'ec-p256', '--label', 'sig-key']);
  });

  test('keygen prints the new URIs and objects lists the key with them', () => {
    const made = JSON.parse(ok(['keygen', tokenUri(), '--type', 'ec-p256', '--label', 'listed', '--id', 'a1b2', '--json']).stdout);
    expect(made.privateKey).toMatch(/;object=listed;type=private;id=%A1%B2$/);
    const objects = JSON.parse(ok(['objects', `${tokenUri()};object=listed`, '--json']).stdout) as Array<Record<string, string>>;
    expect(objects.map((o) => o.class).sort()).toEqual(['privateKey', 'publicKey']);
    for (const o of objects) {
      expect(o).toMatchObject({ label: 'listed', id: 'a1b2', keyType: 'ec' });
      expect(o.uri).toMatch(/^pkcs11:token=cli-test;.*object=listed;type=(private|public);id=%A1%B2$/);
    }
    const text = ok(['objects', `${tokenUri()};type=private`]).stdout;
    expect(text).toContain('privateKey');
    expect(text).toContain(made.privateKey);
  });

  test('sign then verify round-trips; a tampered signature exits 1', () => {
    const message = file('message.txt');
    fs.writeFileSync(message, 'a message for the token\n');
    const signature = ok(['sign', '--key', keyUri('sig-key'), '--in', message]).stdout.trim();
    expect(signature).toMatch(/^[0-9a-f]{128}$/); // P-256 raw r||s
    const valid = p11(['verify', '--key', keyUri('sig-key'), '--in', message, '--signature', signature]);
    expect(valid.status).toBe(0);
    expect(valid.stdout).toContain('valid');

    const flipped = (parseInt(signature[10], 16) ^ 1).toString(16);
    const tampered = signature.slice(0, 10) + flipped + signature.slice(11);
    const invalid = p11(['verify', '--key', keyUri('sig-key'), '--in', message, '--signature', tampered, '--json']);
    expect(invalid.status).toBe(1);
    expect(JSON.parse(invalid.stdout).valid).toBe(false);

    // A signature over a digest hashed here verifies like one the token hashed; stdin works as input.
    ok(['sign', '--key', keyUri('sig-key'), '--hash', '--out', file('sig.bin')], { input: 'a message for the token\n' });
    expect(p11(['verify', '--key', keyUri('sig-key'), '--in', message, '--sig-file', file('sig.bin')]).status).toBe(0);
  });

  test('sign --count N signs N times', () => {
    const out = JSON.parse(ok(['sign', '--key', keyUri('sig-key'), '--count', '5', '--json'], { input: 'x' }).stdout);
    expect(out.signatures).toHaveLength(5);
    expect(new Set(out.signatures).size).toBe(5); // ECDSA signatures are randomised
  });
});

describe('certificate authority', () => {
  let serial: string;

  beforeAll(() => {
    ok(['keygen', tokenUri(), '--type', 'ec-p256', '--label', 'ca-key']);
  });

  test('ca init + ca issue from an openssl CSR: openssl verify accepts the leaf', () => {
    ok(['ca', 'init', '--key', keyUri('ca-key'), '--subject', 'CN=CLI Test Root,O=pkcs11-napi', '--days', '30', '--out', file('ca.pem')]);
    const req = openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('leaf.key'), '-subj', '/CN=www.example.test', '-out', file('req.pem')]);
    expect(req.status).toBe(0);
    const issued = JSON.parse(
      ok(['ca', 'issue', '--ca-cert', file('ca.pem'), '--key', keyUri('ca-key'), '--csr', file('req.pem'), '--profile', 'tls-server', '--san', 'dns:www.example.test,ip:192.0.2.7', '--out', file('leaf.pem'), '--json']).stdout,
    );
    serial = issued.serial;
    const verified = openssl(['verify', '-CAfile', file('ca.pem'), file('leaf.pem')]);
    expect(verified.stdout + verified.stderr).toContain('OK');
    expect(verified.status).toBe(0);
    const text = openssl(['x509', '-in', file('leaf.pem'), '-noout', '-text']).stdout;
    expect(text).toContain('DNS:www.example.test');
    expect(text).toContain('IP Address:192.0.2.7');
  });

  test('crl --revoke: openssl verify -crl_check then rejects the leaf', () => {
    const state = file('crl-state.json');
    const opensslSerial = openssl(['x509', '-in', file('leaf.pem'), '-noout', '-serial']).stdout.trim().split('=')[1];
    expect(opensslSerial.toLowerCase().replace(/^0+/, '')).toBe(serial.replace(/^0+/, ''));
    ok(['crl', '--ca-cert', file('ca.pem'), '--key', keyUri('ca-key'), '--revoke', `${opensslSerial}:keyCompromise`, '--state', state, '--out', file('crl.pem')]);
    const rejected = openssl(['verify', '-crl_check', '-CAfile', file('ca.pem'), '-CRLfile', file('crl.pem'), file('leaf.pem')]);
    expect(rejected.status).not.toBe(0);
    expect(rejected.stdout + rejected.stderr).toContain('certificate revoked');

    // The state carries the revocation and the CRL number into the next run.
    const next = JSON.parse(ok(['crl', '--ca-cert', file('ca.pem'), '--key', keyUri('ca-key'), '--state', state, '--json']).stdout);
    expect(next.crlNumber).toBe('2');
    expect(next.revoked).toEqual([expect.objectContaining({ serial, reason: 'keyCompromise' })]);
  });
});

describe('PINs', () => {
  const secretPin = 'not-the-pin-4711';

  test('--pin is refused without --insecure-pin-arg, and accepted (with a warning) with it', () => {
    const refused = p11(['objects', tokenUri(), '--pin', secretPin], { env: { P11_PIN: undefined } });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('--insecure-pin-arg');
    expect(refused.stderr).not.toContain(secretPin);

    const accepted = p11(['objects', tokenUri(), '--pin', token.userPin, '--insecure-pin-arg'], { env: { P11_PIN: undefined } });
    expect(accepted.status).toBe(0);
    expect(accepted.stderr).toContain('warning');
  });

  test('--pin-source file: logs in', () => {
    const pinFile = file('pin.txt');
    fs.writeFileSync(pinFile, `${token.userPin}\n`, { mode: 0o600 });
    const r = p11(['objects', tokenUri(), '--pin-source', `file:${pinFile}`], { env: { P11_PIN: undefined } });
    expect(r.status).toBe(0);
  });

  test('a wrong PIN exits 1, names CKR_PIN_INCORRECT, and never shows the PIN', () => {
    const fromEnv = p11(['objects', tokenUri()], { env: { P11_PIN: secretPin } });
    expect(fromEnv.status).toBe(1);
    expect(fromEnv.stderr).toContain('CKR_PIN_INCORRECT');
    expect(fromEnv.stderr).toContain('C_Login');
    expect(fromEnv.stderr + fromEnv.stdout).not.toContain(secretPin);

    const pinFile = file('wrong-pin.txt');
    fs.writeFileSync(pinFile, secretPin);
    const fromFile = p11(['sign', '--key', keyUri('sig-key'), '--pin-source', `file:${pinFile}`, '--json'], { env: { P11_PIN: undefined }, input: 'x' });
    expect(fromFile.status).toBe(1);
    expect(JSON.parse(fromFile.stderr).error).toMatchObject({ code: 'CKR_PIN_INCORRECT', function: 'C_Login' });
    expect(fromFile.stderr + fromFile.stdout).not.toContain(secretPin);
  });

  test('no PIN source and no terminal is a usage error', () => {
    const r = p11(['objects', tokenUri()], { env: { P11_PIN: undefined } });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--pin-source');
  });
});

describe('usage', () => {
  test('p11 --help lists every command', () => {
    const r = ok(['--help']);
    for (const command of COMMANDS) expect(r.stdout).toContain(command.name);
  });

  test.each(COMMANDS.map((c) => [c.name, c] as const))('p11 %s --help exits 0 and lists its options', (name, command) => {
    const r = ok([...name.split(' '), '--help']);
    expect(r.stdout).toContain(`p11 ${name}`);
    for (const option of Object.keys(command.options)) expect(r.stdout).toContain(`--${option}`);
  });

  test('an unknown command exits 2', () => {
    const r = p11(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
    expect(p11(['ca', 'frobnicate']).status).toBe(2);
  });

  test('an unknown option or a bad value exits 2', () => {
    expect(p11(['random', '32', '--bogus']).status).toBe(2);
    expect(p11(['random', 'many']).status).toBe(2);
    expect(p11(['keygen', '--type', 'dsa-1024', '--label', 'x']).status).toBe(2);
  });

  test('without any module it says where one comes from and exits 2', () => {
    const r = p11(['info'], { env: { PKCS11_MODULE: undefined } });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--module');
  });
});
