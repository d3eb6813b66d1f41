/**
 * Ours, the way an application signs: one SigningPool, every client calls pool.sign(). The pool
 * is sized to the concurrency (one session per request in flight, like the other loads) and
 * opened fresh for each run, so a run never inherits another run's sessions.
 */
import { Module, SigningPool } from '../../lib';
import type { Mechanism } from '../../lib';
import { MECHANISMS, signInput } from '../mechanisms';
import type { RunSpec } from '../types';
import type { Client } from './drive';
import type { NodeLoad } from './node-load';
import { engineState, loadModule } from './ours-module';

/** The pool's mechanism argument: a number, or the PSS parameters as our binding spells them. */
export function oursMechanism(spec: RunSpec): Mechanism {
  const mechanism = MECHANISMS[spec.mechanism];
  return mechanism.pss ? { mechanism: mechanism.ckm, parameter: mechanism.pss } : mechanism.ckm;
}

export const oursPool: NodeLoad = {
  async prepare(spec: RunSpec) {
    const module: Module = loadModule(spec.target.modulePath, spec.deepBind);
    const pool = await SigningPool.open({
      module,
      token: spec.target.token,
      key: { label: spec.keyLabel },
      pin: spec.target.pin,
      size: spec.concurrency,
    });
    const data = signInput(spec.mechanism);
    const mechanism = oursMechanism(spec);
    const client: Client = () => pool.sign(data, mechanism);
    return {
      clients: Array.from({ length: spec.concurrency }, () => client),
      close: () => pool.close(),
      pool,
      state: engineState,
    };
  },
};
