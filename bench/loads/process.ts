/** The orchestrator's handle on one load process (worker.ts): fork, request, reply, stop. */
import { ChildProcess, fork } from 'child_process';
import * as path from 'path';

import type { WorkerReply, WorkerRequest } from './worker';

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

export class LoadProcess {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly ready: Promise<void>;
  private exited: Error | undefined;

  constructor(
    readonly load: string,
    env: NodeJS.ProcessEnv,
    execArgv: string[] = [],
  ) {
    this.child = fork(path.join(__dirname, 'worker.js'), [load], {
      env,
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let readyResolve!: () => void;
    this.ready = new Promise((resolve) => (readyResolve = resolve));
    this.child.on('message', (reply: WorkerReply) => {
      if (reply.id === 0) {
        readyResolve();
        return;
      }
      const pending = this.pending.get(reply.id);
      if (!pending) return;
      this.pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply.value);
      else pending.reject(new Error(`${this.load}: ${reply.error}`));
    });
    this.child.on('exit', (code, signal) => {
      this.exited = new Error(`the ${this.load} load process exited (${signal ?? `code ${code}`})`);
      readyResolve();
      for (const pending of this.pending.values()) pending.reject(this.exited);
      this.pending.clear();
    });
  }

  async request<T>(kind: WorkerRequest['kind'], spec: unknown): Promise<T> {
    await this.ready;
    if (this.exited) throw this.exited;
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ id, kind, spec } as WorkerRequest);
    });
  }

  /**
   * Asks the process to exit (so it finalizes the module and writes a --cpu-prof profile);
   * kills it if it has not gone within five seconds.
   */
  async stop(): Promise<void> {
    if (this.exited || this.child.exitCode !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    try {
      this.child.send({ id: -1, kind: 'exit', spec: null });
    } catch {
      // the channel is already closed: the kill below settles it
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  }
}
