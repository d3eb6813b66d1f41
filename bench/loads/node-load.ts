/** What a Node load provides: per-run setup of one client per request in flight, and cleanup. */
import type { SigningPool } from '../../lib';
import type { EngineState, RunSpec } from '../types';
import type { Client } from './drive';

export interface PreparedLoad {
  clients: Client[];
  close(): Promise<void>;
  /** Set by the pool load, for the soak's session count. */
  pool?: SigningPool;
  /** Our loads: the engine's state, read at the end of the window. */
  state?: () => { engine: EngineState };
}

export interface NodeLoad {
  prepare(spec: RunSpec): Promise<PreparedLoad>;
}
