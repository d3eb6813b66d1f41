/**
 * Lifecycle in child processes (so a crash is a failed assertion, not a dead test runner):
 *
 * - garbage collection (node --expose-gc): 200 PKCS11 objects that each loaded and initialised
 *   the module (half with a session open, a third with an async call still running) are
 *   dropped and collected; the process stays healthy and a live object keeps working — its
 *   share of the initialisation is not finalised by the collected ones;
 * - process exit with work in flight: 5,000 signs queued, then process.exit(0) — straight
 *   away, after the first 100 results, from inside a result callback, and by letting the
 *   event loop drain — exits with code 0 and no signal, every time.
 *
 * The child scripts are plain JS loading the addon as lib/binding.ts does (node-gyp-build from
 * the package root, so scripts/sanitize.sh's ASan build applies to them too).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as C from '../lib/generated/constants';
import { createTestToken, TestToken } from './support/softhsm';

const ROOT = path.resolve(__dirname, '..');

jest.setTimeout(60_000);

/** Common prelude: the addon, an error class, the module on the token, a logged-in session and a P-256 key. */
function prelude(token: TestToken): string {
  return `
'use strict';
const crypto = require('crypto');
const binding = require(${JSON.stringify(path.join(ROOT, 'node_modules', 'node-gyp-build'))})(${JSON.stringify(ROOT)});
class Pkcs11Error extends Error {}
binding.setErrorClass(Pkcs11Error);
const MODULE = ${JSON.stringify(token.modulePath)};
const C = ${JSON.stringify({
    CKF_RW_SESSION: C.CKF_RW_SESSION,
    CKF_SERIAL_SESSION: C.CKF_SERIAL_SESSION,
    CKU_USER: C.CKU_USER,
    CKM_ECDSA: C.CKM_ECDSA,
    CKM_EC_KEY_PAIR_GEN: C.CKM_EC_KEY_PAIR_GEN,
    CKA_TOKEN: C.CKA_TOKEN,
    CKA_EC_PARAMS: C.CKA_EC_PARAMS,
    CKA_EC_POINT: C.CKA_EC_POINT,
    CKA_SIGN: C.CKA_SIGN,
    CKA_VERIFY: C.CKA_VERIFY,
  })};
const report = (value) => process.stdout.write('REPORT ' + JSON.stringify(value) + '\\n');
function open() {
  const p11 = new binding.PKCS11();
  p11.load(MODULE);
  p11.C_Initialize();
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label === ${JSON.stringify(token.label)});
  return { p11, slot };
}
function loggedInSession(p11, slot) {
  const session = p11.C_OpenSession(slot, C.CKF_RW_SESSION | C.CKF_SERIAL_SESSION);
  try { p11.C_Login(session, C.CKU_USER, ${JSON.stringify(token.userPin)}); } catch (e) { if (e.name !== 'CKR_USER_ALREADY_LOGGED_IN') throw e; }
  return session;
}
function keyPair(p11, session) {
  const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
  const pair = p11.C_GenerateKeyPair(session, C.CKM_EC_KEY_PAIR_GEN,
    [{ type: C.CKA_TOKEN, value: false }, { type: C.CKA_EC_PARAMS, value: P256 }, { type: C.CKA_VERIFY, value: true }],
    [{ type: C.CKA_TOKEN, value: false }, { type: C.CKA_SIGN, value: true }]);
  const [point] = p11.C_GetAttributeValue(session, pair.publicKey, [C.CKA_EC_POINT]);
  const spki = Buffer.concat([Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), point.value.subarray(2)]);
  const key = crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });
  return { ...pair, key };
}
const message = Buffer.from('lifecycle in a child');
const digest = crypto.createHash('sha256').update(message).digest();
const valid = (key, signature) => crypto.verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature);
`;
}

interface ChildRun {
  status: number | null;
  signal: string | null;
  report: unknown;
  stderr: string;
}

function runChild(dir: string, token: TestToken, body: string, nodeArgs: string[] = []): ChildRun {
  const script = path.join(dir, `child-${Math.random().toString(36).slice(2)}.js`);
  fs.writeFileSync(script, prelude(token) + body);
  const run = spawnSync(process.execPath, [...nodeArgs, script], {
    env: { ...process.env, SOFTHSM2_CONF: token.conf },
    encoding: 'utf8',
    timeout: 45_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const line = (run.stdout ?? '').split('\n').reverse().find((l) => l.startsWith('REPORT '));
  return { status: run.status, signal: run.signal, report: line ? JSON.parse(line.slice(7)) : undefined, stderr: (run.stderr ?? '').slice(-3000) };
}

describe('lifecycle in child processes', () => {
  let token: TestToken;
  let dir: string;
  beforeAll(() => {
    token = createTestToken({ label: 'lifecycle-process' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pkcs11-napi-lifecycle-'));
  });
  afterAll(() => {
    token?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('200 dropped PKCS11 objects (initialised, some with sessions and calls in flight) are collected; a live one keeps working', () => {
    const run = runChild(
      dir,
      token,
      `
(async () => {
  const live = open();
  const session = loggedInSession(live.p11, live.slot);
  const { privateKey, key } = keyPair(live.p11, session);
  let collected = 0;
  const registry = new FinalizationRegistry(() => { collected++; });
  const inFlight = [];
  (function dropMany() {
    for (let i = 0; i < 200; i++) {
      const { p11, slot } = open();
      if (i % 2 === 0) {
        const s = p11.C_OpenSession(slot, C.CKF_SERIAL_SESSION);
        // A third of them leave an async call running when they are dropped (its result is kept, the object is not).
        if (i % 3 === 0) inFlight.push(p11.C_GenerateRandomAsync(s, 32).then((r) => r.length, (e) => e.name));
      }
      registry.register(p11, i);
    }
  })();
  const randoms = await Promise.all(inFlight);
  for (let round = 0; round < 30 && collected < 200; round++) {
    global.gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // The live object's share of the initialisation survived the 200 finalisations.
  const info = live.p11.C_GetInfo();
  const signatures = await Promise.all(Array.from({ length: 50 }, () => live.p11.sign(session, C.CKM_ECDSA, privateKey, digest)));
  const syncSignature = live.p11.signSync(session, C.CKM_ECDSA, privateKey, digest);
  // A new object loads and initialises after all that.
  const fresh = open();
  const freshInfo = fresh.p11.C_GetInfo();
  fresh.p11.close();
  live.p11.close();
  report({
    collected,
    randoms: randoms.filter((r) => r === 32).length + '/' + randoms.length,
    liveInitialized: live.p11.initialized,
    manufacturer: info.manufacturerID,
    freshManufacturer: freshInfo.manufacturerID,
    validSignatures: signatures.filter((s) => valid(key, s)).length + (valid(key, syncSignature) ? 1 : 0),
  });
})().catch((e) => { report({ error: String(e && e.stack || e) }); process.exitCode = 2; });
`,
      ['--expose-gc'],
    );
    expect({ status: run.status, signal: run.signal, stderr: run.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    const report = run.report as Record<string, unknown>;
    expect(report.error).toBeUndefined();
    // Not vacuous: the objects really were collected (their native destructors ran).
    expect(report.collected).toBeGreaterThanOrEqual(150);
    expect(report).toMatchObject({ randoms: '34/34', manufacturer: expect.stringMatching(/SoftHSM/), freshManufacturer: expect.stringMatching(/SoftHSM/), validSignatures: 51 });
  });

  const exits: Array<[string, string]> = [
    ['right after queueing', 'process.exit(0);'],
    ['after the first 100 results', 'let n = 0; for (const p of promises) p.then(() => { if (++n === 100) process.exit(0); }, () => {});'],
    ['from inside a result callback, with a close() first', "promises[10].then(() => { p11.close({ timeoutMs: 0 }); process.exit(0); });"],
    ['by letting the event loop drain (no exit call)', "Promise.allSettled(promises).then((r) => report({ fulfilled: r.filter((x) => x.status === 'fulfilled').length }));"],
  ];
  for (const [when, code] of exits) {
    test(`process.exit(0) with 5,000 signs in flight, ${when}: exit code 0, no signal (5 runs)`, () => {
      const body = `
const { p11, slot } = open();
const sessions = Array.from({ length: 8 }, () => loggedInSession(p11, slot));
const { privateKey } = keyPair(p11, sessions[0]);
const promises = Array.from({ length: 5000 }, (_, i) => p11.sign(sessions[i % 8], C.CKM_ECDSA, privateKey, digest));
${code}
`;
      for (let i = 0; i < 5; i++) {
        const run = runChild(dir, token, body);
        expect({ run: i, status: run.status, signal: run.signal, stderr: run.stderr }).toEqual({ run: i, status: 0, signal: null, stderr: '' });
        if (when.startsWith('by letting')) expect(run.report).toEqual({ fulfilled: 5000 });
      }
    });
  }
});
