/**
 * One loaded module per load process: C_Initialize once, like a long-running service.
 *
 * `deepBind` (glibc's RTLD_DEEPBIND) makes the module bind to its own dependencies first. Without
 * it, a module linked against the system libcrypto (SoftHSM2) resolves OpenSSL symbols to the
 * copy Node exports, so inside Node the token computes with Node's OpenSSL and in raw C with
 * the system's: --deep-bind measures ours with the same crypto code raw C runs.
 */
import { engineInfo, Module, setThreadCount, setWorkerNice, setWorkerYield } from '../../lib';
import type { EngineState } from '../types';

const modules = new Map<string, Module>();

export function loadModule(path: string, deepBind = false): Module {
  const key = `${path}\0${deepBind}`;
  let module = modules.get(key);
  if (!module) {
    // Before the first call starts the engine (--engine-threads, 0 keeping the default;
    // --worker-nice and --worker-yield, unset keeping the default).
    const threads = Number(process.env.PKCS11_NAPI_BENCH_ENGINE_THREADS ?? 0);
    if (modules.size === 0 && threads > 0) setThreadCount(threads);
    const nice = process.env.PKCS11_NAPI_BENCH_WORKER_NICE;
    if (modules.size === 0 && nice !== undefined) setWorkerNice(Number(nice));
    const yieldSetting = process.env.PKCS11_NAPI_BENCH_WORKER_YIELD;
    if (modules.size === 0 && yieldSetting !== undefined) setWorkerYield(yieldSetting === 'on');
    module = Module.load(path, { deepBind });
    modules.set(key, module);
  }
  return module;
}

/** What decides the engine's limit and the pool's polling, at this moment (RunResult.engine). */
export function engineState(): { engine: EngineState } {
  const info = engineInfo();
  return {
    engine: {
      computeBound: info.computeBound,
      blockedShare: info.blockedShare,
      callLimit: info.callLimit,
      averageCallMicros: info.averageCallMicros,
      threads: info.threads,
      workerNice: info.workerNice,
      workerYield: info.workerYield,
      workerYields: info.workerYields,
    },
  };
}
