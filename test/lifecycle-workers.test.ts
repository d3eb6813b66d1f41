/**
 * Lifecycle with worker_threads (in child processes, so a crash fails an assertion instead of
 * killing the test runner): 8 workers each run 20 cycles of load → C_Initialize → open a
 * session → log in → find the key → sign (async and sync) → verify → close, on the same
 * module, while the main thread signs without pause through its own PKCS11 object. Every
 * signature from every thread must verify in node:crypto, no call may fail, the main thread's
 * module must stay initialised through the workers' 160 closes, and the process exits 0.
 * Then workers in a process whose main thread never loads the addon: Node unloads an addon with
 * the last environment that loaded it, while the engine's threads may still be ending (or inside
 * a module call, when the worker is terminated with signs in flight).
 */
import { spawnSync } from 'child_process';
import type { SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { createTestToken, TestToken } from './support/softhsm';

const ROOT = path.resolve(__dirname, '..');
const WORKERS = 8;
const CYCLES = 20;

jest.setTimeout(60_000);

/** The first lines of every child script: node:crypto, worker_threads and the binding's kit. */
const PREAMBLE = `
'use strict';
const crypto = require('crypto');
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const kit = require(${JSON.stringify(path.join(ROOT, 'test', 'support', 'child-kit.js'))});
const { C } = kit;`;

function script(token: TestToken): string {
  return `${PREAMBLE}
const KEY_LABEL = 'worker-key';
const message = Buffer.from('signed from a worker thread');
const digest = crypto.createHash('sha256').update(message).digest();

function open() {
  const { p11, slot } = kit.openToken(${JSON.stringify(token.modulePath)}, ${JSON.stringify(token.label)});
  return { p11, session: kit.openSession(p11, slot, ${JSON.stringify(token.userPin)}) };
}
function findKey(p11, session, cls) {
  const found = kit.findByLabel(p11, session, cls, KEY_LABEL);
  if (found.length !== 1) throw new Error('found ' + found.length + ' keys of class ' + cls);
  return found[0];
}
const publicKeyObject = (p11, session) => kit.ecPublicKey(p11, session, findKey(p11, session, C.CKO_PUBLIC_KEY));
const valid = (key, signature) => crypto.verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature);

if (isMainThread) {
  (async () => {
    const main = open();
    kit.ecKeyPair(main.p11, main.session, { token: true, label: KEY_LABEL });
    const privateKey = findKey(main.p11, main.session, C.CKO_PRIVATE_KEY);
    const key = publicKeyObject(main.p11, main.session);
    const results = { workers: [], mainSigned: 0, mainInvalid: 0, mainErrors: [] };
    let running = ${WORKERS};
    const done = new Promise((resolve) => {
      for (let w = 0; w < ${WORKERS}; w++) {
        const worker = new Worker(__filename, { workerData: { id: w } });
        const record = { id: w, cycles: 0, signatures: 0, invalid: 0, errors: [], exitCode: null };
        results.workers.push(record);
        worker.on('message', (m) => { record.cycles = m.cycles; record.signatures = m.signatures; record.invalid = m.invalid; if (m.error) record.errors.push(m.error); });
        worker.on('error', (e) => record.errors.push('worker error: ' + (e && e.stack || e)));
        worker.on('exit', (code) => { record.exitCode = code; if (--running === 0) resolve(); });
      }
    });
    // The main thread signs, async, without pause, until every worker has finished.
    let finished = false;
    done.then(() => { finished = true; });
    while (!finished) {
      const batch = await Promise.allSettled(Array.from({ length: 16 }, () => main.p11.sign(main.session, C.CKM_ECDSA, privateKey, digest)));
      for (const r of batch) {
        if (r.status === 'fulfilled') { results.mainSigned++; if (!valid(key, r.value)) results.mainInvalid++; }
        else if (results.mainErrors.length < 5) results.mainErrors.push(String(r.reason && r.reason.message));
      }
    }
    results.mainStillInitialized = main.p11.initialized;
    main.p11.close();
    process.stdout.write('REPORT ' + JSON.stringify(results) + '\\n');
  })().catch((e) => { process.stdout.write('REPORT ' + JSON.stringify({ fatal: String(e && e.stack || e) }) + '\\n'); process.exitCode = 2; });
} else {
  (async () => {
    let cycles = 0, signatures = 0, invalid = 0;
    for (let cycle = 0; cycle < ${CYCLES}; cycle++) {
      const { p11, session } = open();
      const privateKey = findKey(p11, session, C.CKO_PRIVATE_KEY);
      const key = publicKeyObject(p11, session);
      const asyncSignatures = await Promise.all(Array.from({ length: 4 }, () => p11.sign(session, C.CKM_ECDSA, privateKey, digest)));
      const syncSignature = p11.signSync(session, C.CKM_ECDSA, privateKey, digest);
      for (const s of [...asyncSignatures, syncSignature]) { signatures++; if (!valid(key, s)) invalid++; }
      p11.C_CloseSession(session);
      const { drained } = p11.close();
      if (!drained) throw new Error('close() did not drain in cycle ' + cycle);
      cycles++;
      parentPort.postMessage({ cycles, signatures, invalid });
    }
  })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
}
`;
}

const SOLO_WORKERS = 40;

function soloScript(token: TestToken): string {
  return `${PREAMBLE}
const digest = crypto.createHash('sha256').update('signed from a worker thread').digest();

if (isMainThread) {
  // This thread never requires the addon: each worker's exit leaves no environment holding it.
  (async () => {
    const results = [];
    for (let w = 0; w < ${SOLO_WORKERS}; w++) {
      const terminate = w % 2 === 1;
      const worker = new Worker(__filename, { workerData: { terminate } });
      const record = { signed: 0, errors: [], exitCode: null };
      results.push(record);
      const exited = new Promise((resolve) => worker.on('exit', (code) => { record.exitCode = code; resolve(); }));
      worker.on('error', (e) => record.errors.push(String(e && e.stack || e)));
      worker.on('message', async (m) => {
        if (m.error) record.errors.push(m.error);
        if (m.signed !== undefined) record.signed = m.signed;
        // Terminated with 16 signs in flight: threads inside C_Sign outlive the environment.
        if (m.inFlight) await worker.terminate();
      });
      await exited;
    }
    process.stdout.write('REPORT ' + JSON.stringify(results) + '\\n');
  })();
} else {
  (async () => {
    const { p11, slot } = kit.openToken(${JSON.stringify(token.modulePath)}, ${JSON.stringify(token.label)});
    const session = kit.openSession(p11, slot, ${JSON.stringify(token.userPin)});
    const { privateKey } = kit.ecKeyPair(p11, session);
    const signatures = await Promise.all(Array.from({ length: 8 }, () => p11.sign(session, C.CKM_ECDSA, privateKey, digest)));
    if (workerData.terminate) {
      for (let i = 0; i < 16; i++) p11.sign(session, C.CKM_ECDSA, privateKey, digest).catch(() => {});
      setInterval(() => {}, 1000);  // ends only by terminate()
      parentPort.postMessage({ signed: signatures.length, inFlight: true });
      return;
    }
    p11.close();
    parentPort.postMessage({ signed: signatures.length });
  })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
}
`;
}

const BUSY_WORKERS = 60;

/**
 * Workers terminated while their JavaScript calls into the binding without pause (async signs,
 * 16 at a time, and a synchronous one between batches). A call that enters the binding as the
 * environment stops finds N-API refusing (the type-tag check, then throwing the error): the
 * addon must not let that abort the process.
 */
function busyScript(token: TestToken): string {
  return `${PREAMBLE}
const digest = crypto.createHash('sha256').update('signed from a busy worker').digest();

if (isMainThread) {
  (async () => {
    const results = { exitCodes: [], errors: [] };
    for (let w = 0; w < ${BUSY_WORKERS}; w++) {
      const worker = new Worker(__filename);
      const exited = new Promise((resolve) => worker.on('exit', (code) => { results.exitCodes.push(code); resolve(); }));
      worker.on('error', (e) => results.errors.push(String(e && e.stack || e)));
      worker.on('message', (m) => {
        if (m.error) results.errors.push(m.error);
        // Signing at full speed: stop it 0-40 ms later, wherever its JavaScript is.
        if (m.signing) setTimeout(() => worker.terminate(), Math.random() * 40);
      });
      await exited;
    }
    process.stdout.write('REPORT ' + JSON.stringify(results) + '\\n');
  })();
} else {
  (async () => {
    const { p11, slot } = kit.openToken(${JSON.stringify(token.modulePath)}, ${JSON.stringify(token.label)});
    const session = kit.openSession(p11, slot, ${JSON.stringify(token.userPin)});
    const { privateKey } = kit.ecKeyPair(p11, session);
    parentPort.postMessage({ signing: true });
    for (;;) {
      await Promise.all(Array.from({ length: 16 }, () => p11.sign(session, C.CKM_ECDSA, privateKey, digest)));
      p11.signSync(session, C.CKM_ECDSA, privateKey, digest);
    }
  })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
}
`;
}

// One token and one scratch directory for the file's child processes.
let token: TestToken;
let dir: string;
beforeAll(() => {
  token = createTestToken({ label: 'lifecycle-workers' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pkcs11-napi-workers-'));
});
afterAll(() => {
  token?.cleanup();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes `text` to `name` in the scratch directory and runs it with node on the token. */
function runScript(name: string, text: string): SpawnSyncReturns<string> {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return spawnSync(process.execPath, [file], { env: { ...process.env, SOFTHSM2_CONF: token.conf }, encoding: 'utf8', timeout: 50_000 });
}

describe('worker_threads loading and closing the module concurrently', () => {
  test(`${WORKERS} workers × ${CYCLES} load/init/sign/close cycles while the main thread signs`, () => {
    const run = runScript('workers.js', script(token));
    const line = (run.stdout ?? '').split('\n').find((l) => l.startsWith('REPORT '));
    expect({ status: run.status, signal: run.signal, stderr: (run.stderr ?? '').slice(-3000) }).toEqual({ status: 0, signal: null, stderr: '' });
    const report = JSON.parse(line!.slice(7));
    expect(report.fatal).toBeUndefined();
    expect(report.workers.map((w: { id: number; cycles: number; invalid: number; errors: string[]; exitCode: number }) => ({ ...w, signatures: undefined }))).toEqual(
      Array.from({ length: WORKERS }, (_, id) => ({ id, cycles: CYCLES, invalid: 0, errors: [], exitCode: 0, signatures: undefined })),
    );
    expect(report.workers.reduce((n: number, w: { signatures: number }) => n + w.signatures, 0)).toBe(WORKERS * CYCLES * 5);
    expect({ mainInvalid: report.mainInvalid, mainErrors: report.mainErrors, mainStillInitialized: report.mainStillInitialized }).toEqual({
      mainInvalid: 0,
      mainErrors: [],
      mainStillInitialized: true,
    });
    expect(report.mainSigned).toBeGreaterThan(0);
  });
});

describe('worker_threads in a process whose main thread never loads the addon', () => {
  test(`${SOLO_WORKERS} workers one after another, every other one terminated with signs in flight: no crash`, () => {
    const run = runScript('solo.js', soloScript(token));
    expect({ status: run.status, signal: run.signal, stderr: (run.stderr ?? '').slice(-3000) }).toEqual({ status: 0, signal: null, stderr: '' });
    const line = (run.stdout ?? '').split('\n').find((l) => l.startsWith('REPORT '));
    const report = JSON.parse(line!.slice(7));
    expect(report).toEqual(
      Array.from({ length: SOLO_WORKERS }, (_, w) => ({ signed: 8, errors: [], exitCode: w % 2 === 1 ? 1 : 0 })),
    );
  });
});

describe('worker_threads terminated while their JavaScript calls into the binding', () => {
  test(`${BUSY_WORKERS} workers, each terminated 0-40 ms into signing at full speed: the process does not abort`, () => {
    const run = runScript('busy.js', busyScript(token));
    expect({ status: run.status, signal: run.signal, stderr: (run.stderr ?? '').slice(-3000) }).toEqual({ status: 0, signal: null, stderr: '' });
    const line = (run.stdout ?? '').split('\n').find((l) => l.startsWith('REPORT '));
    // Exit code 1: each one was terminated (none ended on an error of its own).
    expect(JSON.parse(line!.slice(7))).toEqual({ exitCodes: Array(BUSY_WORKERS).fill(1), errors: [] });
  });
});
