/**
 * Prebuilds, end to end: what `npm run prebuild` produces is what a user without a compiler
 * gets from the registry, and it works.
 *
 * beforeAll (the one native build in this file, ~15 s to ~1 min):
 *   copy the package as it would be published (package.json, CMakeLists.txt, native/, constants/,
 *   scripts/, dist/lib/ as built by `npm run build:ts`, which `npm test` runs first; plus a
 *   node_modules symlink to the checkout's) into a temp dir, run `npm run prebuild` there
 *   (scripts/prebuild.js → prebuildify → scripts/prebuild-cmake-adapter.js → cmake-js), then
 *   delete build/ so only prebuilds/ is left.
 *
 * test 1: node-gyp-build resolves to prebuilds/<platform>-<arch>/, dist/lib/index.js loads that
 *   file, and C_GetInfo on SoftHSM2 answers.
 * test 2: `npm pack` that copy, install the tarball into a fresh project with a PATH holding no
 *   compiler, cmake or make, then open a session on a fresh SoftHSM2 token, generate an EC P-256
 *   key pair and sign 32 bytes with the one-hop signSync (64-byte signature, verifies).
 *
 * Install scripts and npm 11 (see the test for details): npm 11 runs a dependency's install
 * script that no `allowScripts` policy covers, and warns afterwards ("install scripts not yet
 * covered by allowScripts"); `--strict-allow-scripts` turns that into an error, and a policy of
 * `{"pkcs11-napi": false}` or `--ignore-scripts` skips it. Our install script is
 * `node-gyp-build-test || cmake-js compile`: with a matching prebuild, node-gyp-build-test loads
 * it and nothing is compiled. With the script skipped, node-gyp-build still finds the prebuild
 * at require() time. The test installs both ways, each time with no compiler on PATH.
 *
 * Not run on Windows (no SoftHSM2 package, POSIX PATH games); CI's windows job builds and loads
 * its prebuild separately.
 */
import { spawnSync, SpawnSyncOptions } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { createTestToken, TestToken } from './support/softhsm';

const ROOT = path.resolve(__dirname, '..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const TUPLE = `${process.platform}-${process.arch}`;
const LIBC = process.platform === 'linux' ? (fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc') : undefined;
/** scripts/prebuild.js tags the libc on Linux only. */
const PREBUILD_FILE = LIBC ? `${PKG.name}.${LIBC}.node` : `${PKG.name}.node`;
/** Programs a native build would need; none may be reachable from the install's PATH. */
const BUILD_TOOLS = ['cmake', 'make', 'ninja', 'cc', 'c++', 'gcc', 'g++', 'clang', 'clang++'];
/** All an npm install of a prebuilt package needs: node (+ npm run via node), a shell, a few coreutils. */
const ALLOWED_TOOLS = ['sh', 'bash', 'env', 'cat', 'ls', 'mkdir', 'rm', 'cp', 'mv', 'chmod', 'ln', 'dirname', 'basename', 'uname', 'tr', 'sed', 'grep'];

const describePosix = process.platform === 'win32' ? describe.skip : describe;

interface RunResult {
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], opts: SpawnSyncOptions & { what: string }): RunResult {
  const r = spawnSync(file, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 10 * 60_000, ...opts });
  const stdout = String(r.stdout ?? '');
  const stderr = String(r.stderr ?? '');
  if (r.error || r.status !== 0) {
    const tail = (s: string): string => s.split('\n').slice(-60).join('\n');
    throw new Error(
      `${opts.what} failed (${r.error ? r.error.message : r.signal ? `signal ${r.signal}` : `exit status ${r.status}`})\n` +
        `--- stdout (tail) ---\n${tail(stdout)}\n--- stderr (tail) ---\n${tail(stderr)}`,
    );
  }
  return { stdout, stderr };
}

/** npm's CLI script, run with this node (so no `npm` on PATH is needed). */
function npmCli(): string {
  const candidates: string[] = [];
  if (process.env.npm_execpath) candidates.push(process.env.npm_execpath);
  candidates.push(path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'));
  const which = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) candidates.push(which.stdout.trim());
  for (const c of candidates) {
    try {
      const real = fs.realpathSync(c);
      if (path.basename(real) === 'npm-cli.js') return real;
    } catch {
      // next
    }
  }
  throw new Error(`cannot find npm-cli.js (tried ${candidates.join(', ')})`);
}

/** process.env minus npm's per-script variables (they describe the outer `npm test`, not our npm runs). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig', 'npm_config_registry']);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !keep.has(k.toLowerCase())) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** A directory of symlinks to node, a shell and some coreutils: a PATH on which no build can run. */
function makeNoCompilerPath(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.symlinkSync(process.execPath, path.join(dir, 'node'));
  for (const tool of ALLOWED_TOOLS) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
    const target = found.status === 0 ? found.stdout.trim() : '';
    if (target.startsWith('/')) fs.symlinkSync(target, path.join(dir, tool));
    else if (tool === 'sh') throw new Error('no sh on PATH');
  }
  return dir;
}

function softhsmEnv(token: TestToken, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return cleanEnv({ ...(token.conf ? { SOFTHSM2_CONF: token.conf } : {}), ...extra });
}

/** Child script: C_GetInfo through the package at argv[1], reporting which binary node-gyp-build picked. */
const GET_INFO_SCRIPT = `
const path = require('path');
const [dir, modulePath, libraryParameters] = process.argv.slice(1);
const gyp = require(require.resolve('node-gyp-build', { paths: [dir] }));
const resolved = gyp.resolve(dir);
const { PKCS11 } = require(path.join(dir, 'dist', 'lib', 'index.js'));
const loaded = Object.keys(require.cache).filter((f) => f.endsWith('.node'));
const p = new PKCS11();
p.load(modulePath);
p.C_Initialize(libraryParameters ? { libraryParameters } : undefined);
const info = p.C_GetInfo();
p.C_Finalize();
p.close();
console.log(JSON.stringify({ resolved, loaded, manufacturerID: info.manufacturerID }));
`;

/** Child script, run in the consumer project: require('pkcs11-napi'), EC P-256 key pair, signSync. */
const SIGN_SCRIPT = `
const crypto = require('crypto');
const path = require('path');
const [modulePath, label, userPin, libraryParameters] = process.argv.slice(1);
const m = require('pkcs11-napi');
const pkgRoot = path.dirname(require.resolve('pkcs11-napi/package.json'));
const resolved = require('node-gyp-build').resolve(pkgRoot);
const loaded = Object.keys(require.cache).filter((f) => f.endsWith('.node'));
const p = new m.PKCS11();
p.load(modulePath);
p.C_Initialize(libraryParameters ? { libraryParameters } : undefined);
try {
  const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === label);
  if (slot === undefined) throw new Error('no token labelled ' + label);
  const session = p.C_OpenSession(slot, m.CKF_SERIAL_SESSION | m.CKF_RW_SESSION);
  p.C_Login(session, m.CKU_USER, userPin);
  const P256 = Buffer.from('06082a8648ce3d030107', 'hex'); // DER OID 1.2.840.10045.3.1.7
  const { publicKey, privateKey } = p.C_GenerateKeyPair(
    session,
    m.CKM_EC_KEY_PAIR_GEN,
    [{ type: m.CKA_TOKEN, value: false }, { type: m.CKA_EC_PARAMS, value: P256 }, { type: m.CKA_VERIFY, value: true }],
    [{ type: m.CKA_TOKEN, value: false }, { type: m.CKA_PRIVATE, value: true }, { type: m.CKA_SIGN, value: true }],
  );
  const data = crypto.randomBytes(32);
  const signature = p.signSync(session, m.CKM_ECDSA, privateKey, data);
  const verified = p.verifySync(session, m.CKM_ECDSA, publicKey, data, signature);
  p.C_Logout(session);
  p.C_CloseSession(session);
  console.log(JSON.stringify({ resolved, loaded, signatureLength: signature.length, verified }));
} finally {
  p.C_Finalize();
  p.close();
}
`;

describePosix('prebuilds (npm run prebuild) and the packed package', () => {
  let work = '';
  let pkgDir = '';
  let token: TestToken | undefined;

  beforeAll(() => {
    token = createTestToken();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'pkcs11-napi-prebuild-'));
    pkgDir = path.join(work, 'package');
    fs.mkdirSync(pkgDir);

    const distLib = path.join(ROOT, 'dist', 'lib', 'index.js');
    if (!fs.existsSync(distLib)) {
      throw new Error(`${distLib} is missing: run \`npm run build:ts\` first (\`npm test\` does)`);
    }
    for (const entry of ['package.json', 'CMakeLists.txt', 'native', 'constants', 'scripts', 'README.md', 'LICENSE', '.gitignore', '.npmignore']) {
      const from = path.join(ROOT, entry);
      if (fs.existsSync(from)) fs.cpSync(from, path.join(pkgDir, entry), { recursive: true });
    }
    fs.cpSync(path.join(ROOT, 'dist', 'lib'), path.join(pkgDir, 'dist', 'lib'), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkgDir, 'node_modules'), 'junction');

    run(process.execPath, [npmCli(), 'run', 'prebuild'], { cwd: pkgDir, env: cleanEnv({}), what: 'npm run prebuild' });
    expect(fs.existsSync(path.join(pkgDir, 'build', 'Release'))).toBe(true); // it really built here
    fs.rmSync(path.join(pkgDir, 'build'), { recursive: true, force: true });
  }, 15 * 60_000);

  afterAll(() => {
    token?.cleanup();
    if (work && !process.env.PKCS11_NAPI_KEEP_TMP) fs.rmSync(work, { recursive: true, force: true });
  });

  test(`prebuilds/${TUPLE}/${PREBUILD_FILE} is what loads, with build/ gone`, () => {
    const prebuild = path.join(pkgDir, 'prebuilds', TUPLE, PREBUILD_FILE);
    expect(fs.readdirSync(path.join(pkgDir, 'prebuilds'))).toEqual([TUPLE]);
    expect(fs.readdirSync(path.join(pkgDir, 'prebuilds', TUPLE))).toEqual([PREBUILD_FILE]);
    expect(fs.existsSync(path.join(pkgDir, 'build'))).toBe(false);

    const t = token!;
    const out = run(process.execPath, ['-e', GET_INFO_SCRIPT, pkgDir, t.modulePath, t.libraryParameters ?? ''], {
      cwd: pkgDir,
      env: softhsmEnv(t),
      what: 'loading the prebuild',
    });
    const result = JSON.parse(out.stdout.trim().split('\n').pop()!) as { resolved: string; loaded: string[]; manufacturerID: string };
    expect(fs.realpathSync(result.resolved)).toBe(fs.realpathSync(prebuild));
    expect(result.loaded.map((f) => fs.realpathSync(f))).toEqual([fs.realpathSync(prebuild)]);
    if (!t.external) expect(result.manufacturerID.trim()).toBe('SoftHSM');
    else expect(result.manufacturerID.length).toBeGreaterThan(0);
  });

  test('npm pack → npm install with no compiler on PATH → EC P-256 signSync gives 64 bytes', () => {
    const t = token!;
    const npm = npmCli();

    // --ignore-scripts: skip `prepare` (npm run build:ts), which needs lib/ and tsconfig; dist/lib
    // is already in place. A real `npm publish` runs prepare first.
    const packed = run(process.execPath, [npm, 'pack', '--ignore-scripts', '--json', '--pack-destination', work], {
      cwd: pkgDir,
      env: cleanEnv({}),
      what: 'npm pack',
    });
    const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = info.files.map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining([
        `prebuilds/${TUPLE}/${PREBUILD_FILE}`,
        'package.json',
        'dist/lib/index.js',
        'dist/lib/index.d.ts',
        'CMakeLists.txt', // the from-source fallback still has what it needs
      ]),
    );
    expect(files.filter((f) => /^(build|node_modules|test|lib)\//.test(f))).toEqual([]);
    const tarball = path.join(work, info.filename);

    const bin = makeNoCompilerPath(path.join(work, 'no-compiler-bin'));
    const reachable = spawnSync('sh', ['-c', BUILD_TOOLS.map((b) => `command -v ${b}`).join('; ') + '; true'], {
      env: { PATH: bin },
      encoding: 'utf8',
    });
    expect(reachable.stdout.trim()).toBe(''); // sanity: a compile attempt would fail

    for (const mode of ['default', 'ignore-scripts'] as const) {
      const consumer = path.join(work, `consumer-${mode}`);
      fs.mkdirSync(consumer);
      fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: `consumer-${mode}`, version: '1.0.0', private: true }));
      // Dependencies (node-gyp-build, node-addon-api, cmake-js and its tree) come from the npm
      // cache, which installing this checkout filled; --prefer-offline only goes to the registry
      // for what is missing there.
      const args = [npm, 'install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'];
      // default: the install script runs (npm ≤ 11 without a policy; npm 11 warns afterwards);
      // node-gyp-build-test loads the prebuild, so `|| cmake-js compile` never runs.
      // ignore-scripts: what `allowScripts: {"pkcs11-napi": false}` or a stricter npm default
      // amounts to; the prebuild is found at require() time anyway.
      if (mode === 'ignore-scripts') args.push('--ignore-scripts');
      args.push(tarball);
      run(process.execPath, args, { cwd: consumer, env: cleanEnv({ PATH: bin }), what: `npm install (${mode})` });

      const installed = path.join(consumer, 'node_modules', PKG.name);
      expect(fs.existsSync(path.join(installed, 'build'))).toBe(false); // nothing was compiled
      const prebuild = path.join(installed, 'prebuilds', TUPLE, PREBUILD_FILE);
      expect(fs.existsSync(prebuild)).toBe(true);

      const out = run(process.execPath, ['-e', SIGN_SCRIPT, t.modulePath, t.label, t.userPin, t.libraryParameters ?? ''], {
        cwd: consumer,
        env: softhsmEnv(t, { PATH: bin }),
        what: `signing with the installed package (${mode})`,
      });
      const result = JSON.parse(out.stdout.trim().split('\n').pop()!) as {
        resolved: string;
        loaded: string[];
        signatureLength: number;
        verified: boolean;
      };
      expect(fs.realpathSync(result.resolved)).toBe(fs.realpathSync(prebuild));
      expect(result.loaded.map((f) => fs.realpathSync(f))).toEqual([fs.realpathSync(prebuild)]);
      expect(result.signatureLength).toBe(64);
      expect(result.verified).toBe(true);
    }
  }, 5 * 60_000);
});
