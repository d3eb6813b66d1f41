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
 * - process exit while a call that close() gave up on is still inside the module (behind the
 *   fault shim, which loads SoftHSM2 only at C_Initialize, hung for 400 ms): the exit waits for
 *   it before SoftHSM2's exit handlers run (they were registered after the addon's barrier, and
 *   the call crashed in SoftHSM2), and nothing finalises the module under them.
 *
 * The child scripts are plain JS on test/support/child-kit.js, which loads the addon as
 * lib/binding.ts does (node-gyp-build from the package root, so scripts/sanitize.sh's ASan build
 * applies to them too).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { ShimControl, buildShim } from './support/shim';
import { createTestToken, TestToken } from './support/softhsm';

const ROOT = path.resolve(__dirname, '..');

jest.setTimeout(60_000);

/** Common prelude: the addon, an error class, the module on the token, a logged-in session and a P-256 key. */
function prelude(token: TestToken): string {
  return `
'use strict';
const crypto = require('crypto');
const kit = require(${JSON.stringify(path.join(ROOT, 'test', 'support', 'child-kit.js'))});
const { C } = kit;
const report = (value) => process.stdout.write('REPORT ' + JSON.stringify(value) + '\\n');
const open = () => kit.openToken(${JSON.stringify(token.modulePath)}, ${JSON.stringify(token.label)});
const loggedInSession = (p11, slot) => kit.openSession(p11, slot, ${JSON.stringify(token.userPin)});
function keyPair(p11, session) {
  const pair = kit.ecKeyPair(p11, session);
  return { ...pair, key: kit.ecPublicKey(p11, session, pair.publicKey) };
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

function runChild(dir: string, token: TestToken, body: string, nodeArgs: string[] = [], env: Record<string, string> = {}): ChildRun {
  const script = path.join(dir, `child-${Math.random().toString(36).slice(2)}.js`);
  fs.writeFileSync(script, prelude(token) + body);
  const run = spawnSync(process.execPath, [...nodeArgs, script], {
    env: { ...process.env, SOFTHSM2_CONF: token.conf, ...env },
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

  test('process.exit(0) while a call given up by close() is still inside the module: it returns during exit, and the module is not finalised under its exit handlers', () => {
    const shimPath = buildShim();
    const control = new ShimControl();
    try {
      control.set({ 'hang.C_Sign.count': 1, 'hang.max': 400 });
      const body = `
const { p11, slot } = kit.openToken(${JSON.stringify(shimPath)}, ${JSON.stringify(token.label)});
const session = loggedInSession(p11, slot);
const { privateKey } = keyPair(p11, session);
p11.sign(session, C.CKM_ECDSA, privateKey, digest).catch(() => {});
setTimeout(() => {
  // The call hangs: close() gives up on it at once and keeps the initialisation for it.
  const { drained } = p11.close({ timeoutMs: 0 });
  report({ drained, inside: p11.callsInFlight });
  process.exit(0);
}, 100);
`;
      const run = runChild(dir, token, body, [], control.env());
      expect({ status: run.status, signal: run.signal, stderr: run.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
      expect(run.report).toEqual({ drained: false, inside: 0 });
      const stats = control.stats();
      expect({ hangs: stats.faults.hang, signs: stats.calls.C_Sign, finalized: stats.calls.C_Finalize ?? 0 }).toEqual({
        hangs: 1,
        signs: 1,
        finalized: 0,
      });
    } finally {
      control.cleanup();
    }
  });
});
