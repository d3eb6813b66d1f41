/**
 * A process that forks after initialising the module. The scenario (test/native/fork-scenario.js)
 * runs in a node process of its own, so the Jest worker never forks; it forks with a tiny test-only
 * N-API addon (test/native/fork_helper.c, compiled here against Node's headers) and with
 * child_process, while calls are inside the module (the fault shim delays C_Sign) on the
 * binding's threads. Neither the children nor the parent may crash or hang: children that
 * exec get a fresh initialisation of their own, the parent's calls all complete.
 */
import { execFileSync, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { ShimControl, buildShim } from './support/shim';
import { createTestToken, findSoftHsmModule, TestToken } from './support/softhsm';

const NATIVE_DIR = path.join(__dirname, 'native');
const HELPER_SOURCE = path.join(NATIVE_DIR, 'fork_helper.c');
const SCENARIO = path.join(NATIVE_DIR, 'fork-scenario.js');
const CHILD = path.join(NATIVE_DIR, 'fork-child.js');
const REPO_ROOT = path.resolve(__dirname, '..');
const SIGSEGV = os.constants.signals.SIGSEGV;

/** Compiles fork_helper.c (cached by content in the temp dir) and returns the .node path. */
function buildForkHelper(): string {
  const include = path.join(process.execPath, '..', '..', 'include', 'node');
  if (!fs.existsSync(path.join(include, 'node_api.h'))) {
    throw new Error(`node_api.h not found in ${include}: this Node installation has no headers`);
  }
  const compiler = process.env.CC && process.env.CC.trim() !== '' ? process.env.CC.trim() : 'cc';
  const args = (output: string) => [
    '-std=c11',
    '-D_POSIX_C_SOURCE=200809L',
    '-DNODE_GYP_MODULE_NAME=fork_helper',
    '-shared',
    '-fPIC',
    '-O1',
    '-Wall',
    '-Wextra',
    '-Werror',
    `-I${include}`,
    '-o',
    output,
    HELPER_SOURCE,
  ];
  const hash = crypto
    .createHash('sha256')
    .update(`${compiler}\0${args('OUT').join(' ')}\0${process.version}\0`)
    .update(fs.readFileSync(HELPER_SOURCE))
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(os.tmpdir(), `pkcs11-napi-fork-helper-${hash}`);
  const output = path.join(dir, 'fork_helper.node');
  if (!fs.existsSync(output)) {
    fs.mkdirSync(dir, { recursive: true });
    const temp = `${output}.tmp-${process.pid}`;
    try {
      execFileSync(compiler, args(temp), { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`building ${HELPER_SOURCE} with ${compiler} failed: ${e.stderr?.trim() || e.message}`);
    }
    fs.renameSync(temp, output);
  }
  return output;
}

interface Status {
  timedOut: boolean;
  exited: boolean;
  code: number;
  signal: number;
}

interface ScenarioResult {
  steps: string[];
  error?: string;
  forkAndExit: Array<Status & { expected: number }>;
  spawned: Array<{
    code: number | null;
    signal: string | null;
    childPid: number;
    report: { ok: boolean; pid?: number; verified?: boolean; signatureLength?: number; error?: string };
    shim: { pid?: number; initialize?: number; finalize?: number; openSessions?: number; error?: string };
  }>;
  callsInFlightAtFirstFork: number;
  parentSignatures: number;
  parentSignaturesValid: number;
  jsInForkedChild: Status & {
    childRan: boolean;
    childRanJavaScript: boolean;
    childReport: { first: { name: string; message: string; function: string } | string } | null;
  };
  parentAfter: number;
  parentTokenAfter: boolean;
}

let token: TestToken;
let control: ShimControl;
let workDir: string;

beforeAll(() => {
  token = createTestToken({ label: 'fork-test' });
  control = new ShimControl();
  // Calls stay in the module a while, on the binding's threads, while the process forks.
  control.set({ 'delay.C_Sign': 25 });
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pkcs11-napi-fork-'));
});

afterAll(() => {
  control?.cleanup();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  token?.cleanup();
});

test('forking with the module initialised and calls inside it: children exit cleanly or initialise afresh; the parent goes on', async () => {
  const helper = buildForkHelper();
  const shim = buildShim();
  const resultPath = path.join(workDir, 'result.json');
  const config = {
    root: REPO_ROOT,
    helper,
    shim,
    childScript: CHILD,
    children: 4,
    workDir,
    resultPath,
    markerPath: path.join(workDir, 'forked-child-ran'),
    jsMarkerPath: path.join(workDir, 'forked-child-ran-js'),
    tokenLabel: token.label,
    userPin: token.userPin,
    keyLabel: 'fork-key',
  };
  // No core files from a child that dies (see the last check); the scenario gets 40 s.
  const scenario = spawn('sh', ['-c', 'ulimit -c 0; exec "$0" "$@"', process.execPath, SCENARIO], {
    env: {
      ...process.env,
      SOFTHSM2_CONF: token.conf,
      ...control.env(findSoftHsmModule()),
      FORK_SCENARIO: JSON.stringify(config),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  scenario.stderr.on('data', (chunk) => (stderr += chunk));
  scenario.stdout.resume();
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    const timer = setTimeout(() => scenario.kill('SIGKILL'), 40_000);
    scenario.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
  expect({ ...exit, stderr: stderr.slice(0, 4000) }).toEqual({ code: 0, signal: null, stderr: '' });
  const result = JSON.parse(fs.readFileSync(resultPath, 'utf8')) as ScenarioResult;
  expect(result.error).toBeUndefined();
  expect(result.steps).toEqual([
    'initialised',
    'forkAndExit',
    'spawned',
    'parent calls done',
    'forked child returned to JavaScript',
    'closed',
  ]);

  // Calls were inside the binding on its threads (up to one per session) when the forking began.
  expect(result.callsInFlightAtFirstFork).toBeGreaterThan(0);
  expect(result.callsInFlightAtFirstFork).toBeLessThanOrEqual(8);

  // 1. Children that only run the fork handlers and _exit: each ends with its own code, promptly.
  expect(result.forkAndExit).toHaveLength(30);
  for (const status of result.forkAndExit) {
    expect(status).toEqual({ expected: status.expected, timedOut: false, exited: true, code: status.expected, signal: 0 });
  }

  // 2. Children that exec node: a fresh process, its own C_Initialize, a valid signature.
  expect(result.spawned).toHaveLength(4);
  for (const child of result.spawned) {
    expect(child).toEqual({
      code: 0,
      signal: null,
      childPid: child.childPid,
      report: { ok: true, pid: child.childPid, verified: true, signatureLength: 64 },
      shim: { pid: child.childPid, initialize: 1, finalize: 1, openSessions: 0 },
    });
  }

  // The parent: every call in flight during the forks completed with a valid signature.
  expect(result.parentSignatures).toBeGreaterThanOrEqual(48);
  expect(result.parentSignaturesValid).toBe(result.parentSignatures);
  expect({ after: result.parentAfter, token: result.parentTokenAfter }).toEqual({ after: 8, token: true });

  // 3. A forked child that returns to JavaScript. Node 20's V8 does not give a forked child its
  // heap, so such a child dies (SIGSEGV, inside V8) before running one line of JavaScript: the
  // binding's own answer to a forked child (CKR_CRYPTOKI_NOT_INITIALIZED, "this process is a fork
  // …") cannot be reached from JavaScript. Should a Node run JavaScript there, the child must get
  // that clear error instead.
  const forked = result.jsInForkedChild;
  expect(forked.childRan).toBe(true);
  if (forked.childRanJavaScript) {
    expect(forked).toMatchObject({ exited: true, code: 0, signal: 0, timedOut: false });
    expect(forked.childReport?.first).toMatchObject({ name: 'CKR_CRYPTOKI_NOT_INITIALIZED', function: 'C_GetSlotList' });
    expect((forked.childReport?.first as { message: string }).message).toMatch(/fork/);
  } else {
    expect(forked).toMatchObject({ exited: false, signal: SIGSEGV, timedOut: false, childReport: null });
  }
});
