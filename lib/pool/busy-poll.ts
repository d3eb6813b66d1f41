import * as os from 'os';

/**
 * The engine's side of polling: while a poller is registered, finished calls wait for poll()
 * instead of waking the JS thread (one hop fewer per answer); stop() settles whatever is left.
 */
export interface CompletionSource {
  start(): void;
  poll(): void;
  stop(): void;
}

const NO_SOURCE: CompletionSource = { start() {}, poll() {}, stop() {} };

/**
 * Keeps the event loop turning while a fast call is in flight.
 *
 * With one request in flight the JS thread sleeps in the kernel until the engine thread's
 * completion wakes it, and on a VM that wake-up alone costs 15–20 µs: a third of an ECDSA
 * signature on SoftHSM2. While few calls are in flight (at most one per core) and recent calls
 * came back within the budget, the pool keeps the loop turning with setImmediate instead: a
 * completion is picked up on the next turn. Every turn still runs timers and I/O, so nothing else
 * waits; the price is CPU (the JS thread stays busy while it polls) and an event-loop
 * utilization near 1 at low concurrency. Calls slower than the budget (a network HSM) are not
 * polled for: sleeping costs them little. Nor are calls the engine finds waiting rather than
 * computing (engineInfo().computeBound), however fast: with `p11-kit server` on the same two
 * cores (calls of about 270 µs), one request in flight signed 24% more without polling.
 */
export class BusyPoll {
  private turning: NodeJS.Immediate | undefined;
  private registered = false;
  private until = 0;
  /** Moving average of call latency, ms. */
  private averageMs = 0;
  private readonly maxInFlight: number;

  constructor(
    private readonly budgetMs: number,
    private readonly inFlight: () => number,
    cores: number = availableCores(),
    private readonly source: CompletionSource = NO_SOURCE,
    /** Whether the module's calls compute rather than wait (the engine's judgement). */
    private readonly callsCompute: () => boolean = () => true,
  ) {
    // On one core the polling would take the core the call runs on. With as many calls as
    // cores it still pays on this 2-vCPU VM (22k vs 18k ECDSA signs/s at 2 in flight); beyond,
    // the answers come often enough to keep the loop awake by themselves.
    this.maxInFlight = cores > 1 ? cores : 0;
  }

  /** A call was handed to the module at `at` (performance.now()). */
  callStarted(at: number): void {
    if (this.budgetMs <= 0 || this.inFlight() > this.maxInFlight || this.averageMs > this.budgetMs) return;
    // A call that waits (a network HSM, a p11-kit server) leaves the core idle: the poller would
    // take it from whoever answers, on this machine or not, to save one wake-up.
    if (!this.callsCompute()) return;
    this.until = at + this.budgetMs;
    if (this.turning !== undefined) return;
    if (!this.registered) {
      this.registered = true;
      this.source.start();
    }
    this.turning = setImmediate(this.turn);
  }

  /** A call came back after `latencyMs`. */
  callFinished(latencyMs: number): void {
    this.averageMs += (latencyMs - this.averageMs) / 8;
  }

  /** Whether the loop is being kept turning now. */
  get polling(): boolean {
    return this.turning !== undefined;
  }

  stop(): void {
    if (this.turning !== undefined) clearImmediate(this.turning);
    this.turning = undefined;
    this.unregister();
  }

  private unregister(): void {
    if (!this.registered) return;
    this.registered = false;
    this.source.stop(); // answers that came in since the last turn are settled here
  }

  private readonly turn = (): void => {
    this.turning = undefined;
    this.source.poll();
    const inFlight = this.inFlight();
    if (inFlight === 0 || inFlight > this.maxInFlight || performance.now() >= this.until) {
      this.unregister();
      return;
    }
    this.turning = setImmediate(this.turn);
  };
}

function availableCores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * `read()`, taken again at most every `periodMs` (performance.now()): for a judgement that
 * changes slowly and costs a native call to read, asked on every call.
 */
export function sampledEvery(periodMs: number, read: () => boolean): () => boolean {
  let value = true;
  let readAt = -Infinity;
  return () => {
    const at = performance.now();
    if (at - readAt >= periodMs) {
      readAt = at;
      value = read();
    }
    return value;
  };
}
