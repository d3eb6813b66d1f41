/**
 * The benchmark run: provision, start one process per Node load, run the interleaved sweep,
 * then report (tables, targets, CA, charts, JSON). Cleans up (load processes, p11-kit server,
 * temp token) however it ends.
 */
import { cpus } from 'os';

import { formatCa, runCaIfAvailable } from './ca';
import type { BenchOptions } from './cli';
import { defaultSweep } from './cli';
import { ELD_RESOLUTION_MS } from './loads/drive';
import { LoadProcess } from './loads/process';
import { buildRawSign, runRawSign } from './loads/raw-c';
import type { SoakResult } from './loads/soak';
import { KeyKind, MECHANISMS, MechanismName, MESSAGE } from './mechanisms';
import { mark, NOISY_CORES, otherCores, ourCores, waitForQuiet } from './noise';
import { Progress } from './progress';
import { provisionSoftHsm, Provisioned, useExisting } from './provision';
import { packageRoot } from './paths';
import { buildInfo, machine, timestamp, writeJson, writeSvg } from './report/json';
import { whole } from './report/format';
import { chart } from './report/svg';
import { mechanismTable, TABLE_LEGEND } from './report/table';
import { Plan, runSchedule, schedule, summarize } from './runner';
import { runDuels } from './head-to-head';
import { contenders, playOff } from './play-off';
import type { PlayOff } from './play-off';
import { evaluateTargets, formatTargets, ratioTargets } from './targets';
import type { LoadName, RunResult, RunSpec } from './types';

/** The addon's default worker-thread count (native/ops/runner.cc): max(8, 2 × cores). */
const OUR_ENGINE_THREADS = Math.max(8, 2 * cpus().length);

export async function runBench(options: BenchOptions): Promise<number> {
  const human = options.json ? process.stderr : process.stdout;
  const say = (text = '') => human.write(`${text}\n`);
  const stamp = timestamp();
  const startedAt = new Date().toISOString();
  const processes = new Map<string, LoadProcess>();
  let provisioned: Provisioned | undefined;

  const stopProcesses = async () => {
    await Promise.all([...processes.values()].map((p) => p.stop()));
    processes.clear();
  };
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    // Load processes first: they hold connections to the p11-kit server and files in the token dir.
    await stopProcesses();
    await provisioned?.cleanup();
  };
  const interrupted = () => {
    process.stderr.write('\ninterrupted: cleaning up\n');
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  try {
    // The soak signs with one mechanism (ECDSA when asked for): only its key is needed.
    const soakWith = options.mechanisms.includes('ecdsa') ? 'ecdsa' : options.mechanisms[0];
    const kinds = [
      ...new Set((options.soak !== undefined ? [soakWith] : options.mechanisms).map((m) => MECHANISMS[m].keyKind)),
    ] as KeyKind[];
    provisioned = options.modulePath
      ? await useExisting({
          modulePath: options.modulePath,
          token: options.token!,
          pinSource: options.pinSource!,
          keyLabels: options.keyLabels,
        })
      : await provisionSoftHsm({ kinds, remote: options.remote });
    const { target, keys, env } = provisioned;
    const scenario = options.modulePath ? 'module' : options.remote ? 'remote (p11-kit server)' : 'local SoftHSM2';

    // A mechanism runs when there is a key for it and the token lists it; otherwise it is a note.
    const skipped: { mechanism: MechanismName; reason: string }[] = [];
    const mechanisms = options.mechanisms.filter((name) => {
      const m = MECHANISMS[name];
      if (!keys[m.keyKind]) skipped.push({ mechanism: name, reason: `no ${m.keyKind} key` });
      else if (!provisioned!.mechanisms.has(m.ckm)) skipped.push({ mechanism: name, reason: `${m.ckmName} is not in the token's mechanism list` });
      else return true;
      return false;
    });

    say(`pkcs11-napi signing benchmark: ${scenario}`);
    say(`module: ${provisioned.description}`);
    const host = machine();
    const description = provisioned.description;
    // What every results file starts with: which run, where, on what.
    const header = (kind: 'soak' | 'sweep') => ({
      kind,
      scenario,
      startedAt,
      finishedAt: new Date().toISOString(),
      argv: process.argv.slice(2),
      machine: host,
      build: buildInfo(packageRoot()),
      module: { path: target.modulePath, token: target.token, description },
    });
    say(`machine: ${host.cpus} × ${host.cpuModel}, ${host.platform}, Node ${host.node}`);
    if (options.soak === undefined) for (const s of skipped) say(`skipped: ${s.mechanism} (${s.reason})`);
    const engineThreads = options.engineThreads ?? OUR_ENGINE_THREADS;
    const uvThreads = options.uvThreads ?? engineThreads;

    const forkLoad = (load: LoadName, execArgv: string[] = []) => {
      const prof = options.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${options.outDir}/cpuprofile-${stamp}`, `--cpu-prof-name=${load}-\${pid}.cpuprofile`] : [];
      const extra =
        load === 'pkcs11js'
          ? { UV_THREADPOOL_SIZE: String(uvThreads) }
          : {
              PKCS11_NAPI_BENCH_ENGINE_THREADS: String(engineThreads),
              ...(options.workerNice === undefined ? {} : { PKCS11_NAPI_BENCH_WORKER_NICE: String(options.workerNice) }),
              ...(options.workerYield === undefined ? {} : { PKCS11_NAPI_BENCH_WORKER_YIELD: options.workerYield ? 'on' : 'off' }),
            };
      return new LoadProcess(load, { ...env, ...extra }, [...prof, ...execArgv]);
    };

    if (options.soak !== undefined) {
      const soakMechanism = soakWith;
      if (!mechanisms.includes(soakMechanism)) throw new Error(`cannot soak with ${soakMechanism} on this token`);
      const key = keys[MECHANISMS[soakMechanism].keyKind]!;
      // V8's young generation is fixed for the soak: left to itself it grows with the allocation
      // rate (here from 4 to 32 MB over the first million signatures, and gc() never shrinks it),
      // which is V8 sizing its nursery, not retention. Fixed, and touched during the warm-up, it
      // is in "before", and growth measures what the process keeps.
      const semiSpace = `${SOAK_SEMI_SPACE_MB}`;
      const soakProcess = forkLoad('ours-pool', ['--expose-gc', `--min-semi-space-size=${semiSpace}`, `--max-semi-space-size=${semiSpace}`]);
      processes.set('soak', soakProcess);
      say(`soak: ${options.soak.toLocaleString('en-US')} × ${MECHANISMS[soakMechanism].ckmName} through SigningPool at concurrency 64…`);
      const soak = await soakProcess.request<SoakResult>('soak', {
        target,
        mechanism: soakMechanism,
        keyLabel: key.label,
        spkiBase64: key.spki.toString('base64'),
        concurrency: 64,
        deepBind: options.deepBind,
        count: options.soak,
      });
      const file = writeJson(options.outDir, stamp, {
        ...header('soak'),
        mechanism: soakMechanism,
        soak,
      });
      say(formatSoak(soak));
      say(`Results: ${file}`);
      if (options.json) process.stdout.write(`${file}\n`);
      return 0;
    }

    if (mechanisms.length === 0) throw new Error('none of the requested mechanisms can run on this token');
    const plan: Plan = {
      mechanisms,
      concurrency: Object.fromEntries(mechanisms.map((m) => [m, options.concurrency ?? defaultSweep(m)])),
      repeat: options.repeat,
      loads: options.loads,
    };
    const steps = schedule(plan);
    say(
      `runs: ${steps.length * plan.loads.length} (${(options.durationMs / 1000).toFixed(1)} s window after ${(options.warmupMs / 1000).toFixed(1)} s warm-up, ` +
        `median of ${options.repeat}); pkcs11js UV_THREADPOOL_SIZE=${uvThreads}, our engine threads=${engineThreads}`,
    );
    say();

    const isRawC = (load: LoadName) => load === 'raw-c' || load === 'raw-c-woken' || load === 'raw-c-os-locks';
    const rawBinary = plan.loads.some(isRawC) ? buildRawSign() : undefined;
    for (const load of plan.loads) if (!isRawC(load)) processes.set(load, forkLoad(load));

    const specFor = (mechanism: MechanismName, concurrency: number): RunSpec => {
      const key = keys[MECHANISMS[mechanism].keyKind]!;
      return {
        target,
        mechanism,
        keyLabel: key.label,
        spkiBase64: key.spki.toString('base64'),
        concurrency,
        deepBind: options.deepBind,
        warmupMs: options.warmupMs,
        durationMs: options.durationMs,
      };
    };
    const progress = new Progress(steps.length * plan.loads.length);
    // Our process tree (load processes, raw C, the p11-kit server) descends from this process.
    const roots = [process.pid];
    let reruns = 0;
    const measure = async (load: LoadName, step: { mechanism: MechanismName; concurrency: number }) => {
      const spec = specFor(step.mechanism, step.concurrency);
      if (load === 'raw-c-woken') spec.wake = options.wake;
      if (load === 'raw-c-os-locks') spec.osLocking = true;
      for (let attempt = 1; ; attempt++) {
        const before = mark(roots);
        const result =
          isRawC(load) ? await runRawSign(rawBinary!, spec, env) : await processes.get(load)!.request<RunResult>('run', spec);
        const after = mark(roots);
        result.otherCores = otherCores(before, after);
        result.ourCores = ourCores(before, after);
        result.attempts = attempt;
        // Someone else's job took CPU from this run: wait for quiet and measure again (twice at
        // most; a run still disturbed is kept, and its otherCores shows it).
        if (result.otherCores === undefined || result.otherCores <= NOISY_CORES || attempt === 3) return result;
        reruns++;
        progress.note(
          `${load} ${step.mechanism} c=${step.concurrency}: other processes used ${result.otherCores.toFixed(2)} cores; measuring again`,
        );
        await waitForQuiet(roots, Math.min(15_000, 5 * options.durationMs));
      }
    };
    const samples = await runSchedule(
      steps,
      (load, step): Promise<RunResult> => measure(load, step),
      ({ step, load, done, result }) => {
        const label = `${step.mechanism} c=${step.concurrency} rep ${step.repeat + 1}/${plan.repeat}`;
        if (!done) progress.start(`${label} ${load}`);
        else {
          progress.finished(load, result!);
          if (load === step.loads[step.loads.length - 1]) progress.pointDone(label);
        }
      },
    );
    progress.end();
    const points = summarize(plan, samples);
    const rsaTitle = keys.rsa?.description ?? 'RSA';
    // Each side's best concurrency, played off among the sweep's near-ties (play-off.ts).
    const playOffs: PlayOff[] = [];
    if (options.rounds > 0) {
      const played = new Set<string>();
      for (const target of ratioTargets(points, rsaTitle)) {
        for (const side of [target.ours, target.base]) {
          const key = `${target.mechanism} ${side.load}`;
          if (side.picked !== 'best' || played.has(key)) continue;
          played.add(key);
          const candidates = contenders(points, target.mechanism, side.load);
          if (candidates.length < 2) continue;
          const result = await playOff(target.mechanism, side.load, candidates, async (concurrency) => {
            return (await measure(side.load, { mechanism: target.mechanism, concurrency })).signsPerSec;
          });
          playOffs.push(result);
          const runs = candidates.map((c) => `c=${c} ${result.runs[c].map((r) => whole(r)).join('/')}`).join(', ');
          progress.note(`  play-off, ${key}: ${runs} signs/s → c=${result.winner}`);
        }
      }
    }
    // The ratio targets again, each as rounds of two runs back to back (head-to-head.ts).
    const duelTargets = options.rounds > 0 ? ratioTargets(points, rsaTitle, playOffs) : [];
    if (duelTargets.length) {
      say(`head to head: ${duelTargets.length} ratio target(s) × ${options.rounds} rounds of two runs`);
    }
    const duelStarted = Date.now();
    const duels = await runDuels(duelTargets, options.rounds, measure, (target, round, r) =>
      progress.note(
        `  ${target.name}, round ${round + 1}/${options.rounds}: ${target.ours.load} c=${target.ours.concurrency} ${whole(r.ours)}/s` +
          ` vs ${target.base.load} c=${target.base.concurrency} ${whole(r.base)}/s = ${r.ratio.toFixed(3)}` +
          (r.oursElu === undefined ? '' : ` (ours: ELU ${r.oursElu.toFixed(2)}`) +
          (r.oursEngine === undefined
            ? r.oursElu === undefined ? '' : ')'
            : `, engine ${r.oursEngine.computeBound ? 'computing' : 'waiting'}, ${r.oursEngine.averageCallMicros.toFixed(0)} µs a call)`) +
          (r.oursPerSign === undefined || r.basePerSign === undefined
            ? ''
            : `; CPU a signature ${r.oursPerSign.cpuMicros.toFixed(1)} vs ${r.basePerSign.cpuMicros.toFixed(1)} µs`),
      ),
    );
    if (duelTargets.length) say(`head to head took ${Math.round((Date.now() - duelStarted) / 1000)}s`);
    // The load processes are done; stopping them now writes their CPU profiles (--cpu-prof)
    // and leaves the machine quiet for the CA benchmark, which runs in this process.
    await stopProcesses();
    const ca = await runCaIfAvailable(target, keys, {
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      concurrency: options.concurrency ?? [1, 64],
      repeat: options.repeat,
    });

    const keyOf = (m: MechanismName) => keys[MECHANISMS[m].keyKind]!.description;
    say();
    for (const mechanism of mechanisms) {
      say(mechanismTable(mechanism, keyOf(mechanism), points, options.repeat));
      const others = samples.filter((s) => s.mechanism === mechanism && s.result.otherCores !== undefined);
      if (others.length) {
        const worst = Math.max(...others.map((s) => s.result.otherCores!));
        const disturbed = others.filter((s) => s.result.otherCores! > NOISY_CORES).length;
        say(
          `other processes: worst run ${worst.toFixed(2)} cores${disturbed ? `; ${disturbed} kept run(s) still above ${NOISY_CORES} cores: treat this table with care` : ''}`,
        );
      }
      say();
    }
    if (reruns) say(`${reruns} run(s) disturbed by other processes (> ${NOISY_CORES} cores) were measured again.`);
    say(TABLE_LEGEND);
    say(
      `ELD p99 = monitorEventLoopDelay (${ELD_RESOLUTION_MS} ms timer) p99 minus the timer period; libuv's ms-granular timers put an idle loop at about 1 ms.`,
    );
    say();

    const targets = evaluateTargets(points, rsaTitle, duels, playOffs);
    say(`Targets (ours = SigningPool; ${duels.length ? 'ratios head to head, median of the rounds' : 'medians of this run'}${scenario === 'local SoftHSM2' ? '' : `; set for local SoftHSM2, shown for reference`}):`);
    say(formatTargets(targets));
    say();

    say(formatCa(ca));

    const charts = mechanisms.map((m) =>
      writeSvg(
        options.outDir,
        stamp,
        m,
        chart(m, keyOf(m), points, `${scenario}; ${host.cpus} × ${host.cpuModel}; median of ${options.repeat} × ${(options.durationMs / 1000).toFixed(1)} s`),
      ),
    );
    const file = writeJson(options.outDir, stamp, {
      ...header('sweep'),
      keys: Object.fromEntries(Object.entries(keys).map(([kind, k]) => [kind, { label: k!.label, description: k!.description }])),
      settings: {
        durationMs: options.durationMs,
        warmupMs: options.warmupMs,
        repeat: options.repeat,
        headToHeadRounds: options.rounds,
        concurrency: plan.concurrency,
        loads: plan.loads,
        mechanisms,
        skipped,
        messageBytes: MESSAGE.length,
        oursEngineThreads: engineThreads,
        oursWorkerNice: options.workerNice ?? 'default',
        oursWorkerYield: options.workerYield ?? 'default',
        pkcs11jsUvThreadpoolSize: uvThreads,
        oursDeepBind: options.deepBind,
        eldResolutionMs: ELD_RESOLUTION_MS,
        noisyCoresThreshold: NOISY_CORES,
        reruns,
        medians: 'each metric is the median of its own values over the repeats',
      },
      points,
      targets,
      playOffs,
      headToHead: duels,
      ca,
      charts,
      samples,
    });
    say(`Charts: ${charts.join(', ')}`);
    say(`Results: ${file}`);
    if (options.json) process.stdout.write(`${file}\n`);
    return 0;
  } finally {
    await cleanup();
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
  }
}

/** MB per semi-space (the young generation is two): Node 20's default maximum on 64-bit is 16. */
const SOAK_SEMI_SPACE_MB = 16;

function formatSoak(s: SoakResult): string {
  const growth = (s.rssAfterGcMb ?? s.rssAfterMb) - s.rssBeforeMb;
  const sessions = (v: number | null) => (v === null ? 'not reported' : String(v));
  const tokenSame = s.tokenSessions.before === null || s.tokenSessions.after === s.tokenSessions.before;
  const count = (v: number | null) => (v === null ? 'not listed' : String(v));
  const noGrowth = (v: { before: number | null; after: number | null }) => v.before === null || v.after === null || v.after <= v.before;
  // Threads other than the engine's: Node's, libuv's, the flusher.
  const others = (processThreads: number | null, engineThreads: number) => (processThreads === null ? null : processThreads - engineThreads);
  const otherThreads = {
    before: others(s.processThreads.before, s.engineThreads.before),
    after: others(s.processThreads.after, s.engineThreads.after),
  };
  const handlesKept = noGrowth(s.fileDescriptors) && noGrowth(otherThreads) && s.engineThreads.after <= s.engineThreads.cap;
  return [
    `soak: ${s.count.toLocaleString('en-US')} signatures at concurrency ${s.concurrency} in ${s.seconds.toFixed(1)} s (${whole(s.signsPerSec)}/s)`,
    `  RSS before ${s.rssBeforeMb.toFixed(1)} MB, after ${s.rssAfterMb.toFixed(1)} MB, after GC ${s.rssAfterGcMb?.toFixed(1) ?? '-'} MB` +
      ` (V8 heap ${s.heapUsedMb.before.toFixed(1)} → ${s.heapUsedMb.after.toFixed(1)} MB, external ${s.externalMb.before.toFixed(1)} → ${s.externalMb.after.toFixed(1)} MB, ` +
      `young generation ${s.newSpaceMb.before.toFixed(1)} → ${s.newSpaceMb.after.toFixed(1)} MB, fixed: --min/--max-semi-space-size=${SOAK_SEMI_SPACE_MB})`,
    `  sessions (C_GetTokenInfo): before ${sessions(s.tokenSessions.before)}, after ${sessions(s.tokenSessions.after)}, after pool.close() ${sessions(s.tokenSessions.afterClose)}; pool sessions before ${s.poolSessions.before}, after ${s.poolSessions.after}`,
    `${growth < 20 ? 'PASS' : 'MISS'}  RSS growth < 20 MB: ${growth.toFixed(1)} MB (after GC)` +
      // V8 grows its nursery to the allocation rate (bounded by --max-semi-space-size); that part
      // of RSS is sizing, not retention. The rest is what a leak would show in.
      `; outside V8's young generation: ${(growth - (s.newSpaceMb.after - s.newSpaceMb.before)).toFixed(1)} MB`,
    `  threads: the engine's ${s.engineThreads.before} → ${s.engineThreads.after} (cap ${s.engineThreads.cap}), ` +
      `the process's others ${count(otherThreads.before)} → ${count(otherThreads.after)}; file descriptors ${count(s.fileDescriptors.before)} → ${count(s.fileDescriptors.after)}`,
    `${tokenSame && s.poolSessions.after <= s.poolSessions.before ? 'PASS' : 'MISS'}  no session growth`,
    `${handlesKept ? 'PASS' : 'MISS'}  no growth in file descriptors or threads (the engine's within its cap)`,
  ].join('\n');
}
