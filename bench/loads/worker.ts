/**
 * A load process: `node worker.js <load>`. Each Node load runs in its own process so that its
 * event-loop numbers, RSS and threads are its own, and so pkcs11js can have its own
 * UV_THREADPOOL_SIZE. The process stays up for the whole benchmark (one C_Initialize, like a
 * service) and runs one measurement per IPC request.
 */
import { MECHANISMS, verifySignature } from '../mechanisms';
import type { RunSpec } from '../types';
import { drive } from './drive';
import type { NodeLoad } from './node-load';
import { soak, SoakSpec } from './soak';

export type WorkerRequest =
  | { id: number; kind: 'run'; spec: RunSpec }
  | { id: number; kind: 'soak'; spec: SoakSpec }
  | { id: number; kind: 'exit'; spec: null };
export type WorkerReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

async function loadByName(name: string): Promise<NodeLoad> {
  switch (name) {
    case 'ours-pool':
      return (await import('./ours-pool')).oursPool;
    case 'ours-raw':
      return (await import('./ours-raw')).oursRaw;
    case 'pkcs11js':
      return (await import('./pkcs11js')).pkcs11jsLoad;
    default:
      throw new Error(`unknown load ${name}`);
  }
}

async function run(load: NodeLoad, spec: RunSpec) {
  const prepared = await load.prepare(spec);
  try {
    const { result, lastSignature } = await drive(prepared.clients, spec.warmupMs, spec.durationMs, prepared.state);
    const spki = Buffer.from(spec.spkiBase64, 'base64');
    if (!lastSignature || !verifySignature(spec.mechanism, spki, lastSignature)) {
      throw new Error(`a ${MECHANISMS[spec.mechanism].ckmName} signature from this load does not verify`);
    }
    return result;
  } finally {
    await prepared.close();
  }
}

async function main(): Promise<void> {
  const name = process.argv[2];
  const load = await loadByName(name);
  // One request at a time: the parent never overlaps measurements.
  let queue = Promise.resolve();
  process.on('message', (request: WorkerRequest) => {
    queue = queue.then(async () => {
      if (request.kind === 'exit') process.exit(0);
      let reply: WorkerReply;
      try {
        const value = request.kind === 'run' ? await run(load, request.spec) : await soak(load, request.spec);
        reply = { id: request.id, ok: true, value };
      } catch (error) {
        reply = { id: request.id, ok: false, error: error instanceof Error ? error.stack ?? error.message : String(error) };
      }
      process.send!(reply);
    });
  });
  process.send!({ id: 0, ok: true, value: 'ready' });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
