'use strict';
/**
 * Run by test/fork.test.ts in a node process of its own (so the Jest worker never forks). The
 * process initialises the module (the fault shim in front of SoftHSM2, with a delay on C_Sign so
 * calls are inside the module on the binding's threads), and while those calls run it:
 *
 *   1. forks 30 times with test/native/fork_helper.c's forkAndExit(): each child runs the fork
 *      handlers (the binding's pthread_atfork handler among them) and _exit()s, as a child does
 *      between fork and exec; each must exit with its own code, promptly;
 *   2. spawns children with child_process (libuv forks, then execs node): each loads the binding
 *      and the module afresh (its own C_Initialize, counted by its own shim statistics) and signs
 *      with the token key;
 *   3. forks with forkMarked() and lets the child return to JavaScript, to record what a forked
 *      child of this Node can do (V8 does not hand its heap to a forked child).
 *
 * Then the parent checks its own calls all completed and its module still works. The results go
 * to FORK_SCENARIO.resultPath as JSON; the process exits 0 when it got that far.
 */
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const config = JSON.parse(process.env.FORK_SCENARIO);
const kit = require(path.join(config.root, 'test', 'support', 'child-kit.js'));
const helper = require(config.helper);
const { C } = kit;

const result = { steps: [] };
const step = (name) => result.steps.push(name);

function runChild(index) {
  const dir = path.join(config.workDir, `child-${index}`);
  fs.mkdirSync(dir, { recursive: true });
  const control = path.join(dir, 'control.txt');
  const stats = path.join(dir, 'stats.json');
  fs.writeFileSync(control, 'generation=1\nstats.always=1\n');
  const env = {
    ...process.env,
    FAULT_SHIM_CONTROL: control,
    FAULT_SHIM_STATS: stats,
    FORK_CHILD: JSON.stringify({
      root: config.root,
      module: config.shim,
      tokenLabel: config.tokenLabel,
      userPin: config.userPin,
      keyLabel: config.keyLabel,
    }),
  };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [config.childScript], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (err += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let report;
      try {
        report = JSON.parse(out.trim().split('\n').pop());
      } catch {
        report = { ok: false, error: `no report; stderr: ${err.slice(0, 2000)}` };
      }
      let shim;
      try {
        const s = JSON.parse(fs.readFileSync(stats, 'utf8'));
        shim = { pid: s.pid, initialize: s.calls.C_Initialize ?? 0, finalize: s.calls.C_Finalize ?? 0, openSessions: s.openSessions };
      } catch (e) {
        shim = { error: String(e) };
      }
      resolve({ code, signal, childPid: child.pid, report, shim });
    });
  });
}

async function main() {
  const { p11: m, slot } = kit.openToken(config.shim, config.tokenLabel);
  const first = kit.openSession(m, slot, config.userPin);
  // A token key: the spawned children find it by label.
  const { publicKey, privateKey } = kit.ecKeyPair(m, first, { token: true, label: config.keyLabel });
  step('initialised');

  // Calls inside the module (delay.C_Sign) on the binding's threads while the process forks.
  const sessions = [first, ...Array.from({ length: 7 }, () => m.C_OpenSession(slot, C.CKF_RW_SESSION | C.CKF_SERIAL_SESSION))];
  const data = Buffer.alloc(32, 3);
  let forking = true;
  let completed = 0;
  const chains = sessions.map(async (session) => {
    const out = [];
    while (forking || out.length < 6) {
      out.push(await m.sign(session, C.CKM_ECDSA, privateKey, data));
      completed++;
    }
    return out;
  });
  await new Promise((resolve) => setTimeout(resolve, 10)); // let the first calls reach the module
  // The shim writes its statistics as a delayed call enters C_Sign: entered minus settled calls
  // are inside the binding (in the module, or returned and not yet settled) as the forks begin.
  const entered = JSON.parse(fs.readFileSync(process.env.FAULT_SHIM_STATS, 'utf8')).faults.delay;
  result.callsInFlightAtFirstFork = entered - completed;

  // 1. fork + _exit in the child, 30 times, with calls in flight.
  result.forkAndExit = [];
  for (let i = 0; i < 30; i++) {
    const pid = helper.forkAndExit(10 + i);
    const status = helper.waitChild(pid, 3000);
    result.forkAndExit.push({ expected: 10 + i, ...status });
  }
  step('forkAndExit');

  // 2. child processes (fork + exec) that initialise the module afresh, with calls in flight.
  // One at a time: SoftHSM2 processes logging in to one token at the same moment may answer
  // CKR_GENERAL_ERROR (its file store), which is not what this is about.
  result.spawned = [];
  for (let i = 0; i < config.children; i++) result.spawned.push(await runChild(i));
  step('spawned');

  // The parent's calls all complete and verify.
  forking = false;
  const signatures = (await Promise.all(chains)).flat();
  result.parentSignatures = signatures.length;
  result.parentSignaturesValid = signatures.filter((signature) => m.verifySync(first, C.CKM_ECDSA, publicKey, data, signature)).length;
  step('parent calls done');

  // 3. A forked child that returns to JavaScript.
  fs.rmSync(config.markerPath, { force: true });
  fs.rmSync(config.jsMarkerPath, { force: true });
  const pid = helper.forkMarked(config.markerPath);
  if (pid === 0) {
    // Only reached if this Node lets a forked child run JavaScript.
    let outcome;
    try {
      m.C_GetSlotList(true);
      outcome = { first: 'no error' };
    } catch (error) {
      outcome = { first: { name: error.name, message: error.message, function: error.function } };
    }
    const fd = fs.openSync(config.jsMarkerPath, 'w');
    fs.writeSync(fd, JSON.stringify(outcome));
    fs.closeSync(fd);
    helper.exitNow(0);
  }
  const status = helper.waitChild(pid, 5000);
  result.jsInForkedChild = {
    ...status,
    childRan: fs.existsSync(config.markerPath),
    childRanJavaScript: fs.existsSync(config.jsMarkerPath),
    childReport: fs.existsSync(config.jsMarkerPath) ? JSON.parse(fs.readFileSync(config.jsMarkerPath, 'utf8')) : null,
  };
  step('forked child returned to JavaScript');

  // The parent's module still works after all of it.
  const more = await Promise.all(sessions.map((session) => m.sign(session, C.CKM_ECDSA, privateKey, data)));
  result.parentAfter = more.filter((signature) => m.verifySync(first, C.CKM_ECDSA, publicKey, data, signature)).length;
  result.parentTokenAfter = m.C_GetSlotList(true).some((id) => m.C_GetTokenInfo(id).label.trim() === config.tokenLabel);
  for (const session of sessions) m.C_CloseSession(session);
  m.close();
  step('closed');
}

main().then(
  () => {
    fs.writeFileSync(config.resultPath, JSON.stringify(result, null, 2));
  },
  (error) => {
    result.error = String(error && error.stack ? error.stack : error);
    fs.writeFileSync(config.resultPath, JSON.stringify(result, null, 2));
    process.exitCode = 1;
  },
);
