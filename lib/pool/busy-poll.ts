import * as os from 'os';
import { performance } from 'perf_hooks';

/**
 * The engine's side of polling: while a poller is registered, finished calls wait for poll()
 * instead of waking the JS thread (one hop fewer per answer); stop() settles whatever is left.
 */
export interface CompletionSource {
  start(): void;
  /** Settles what is ready; with nothing ready, first waits up to `spinMicros` for a call to finish. */
  poll(spinMicros: number): void;
  stop(): void;
}

const NO_SOURCE: CompletionSource = { start() {}, poll() {}, stop() {} };

// Each turn of the loop waits this long in the binding for the answer (a spin with the CPU's
// pause hint) before letting timers and I/O run again.
const SPIN_MICROS = 30;

/** What the engine knows of the module's calls. */
export interface CallsView {
  /** They compute rather than wait (engineInfo().computeBound). */
  compute: boolean;
  /** Their average time inside the module, ms (0: none yet). */
  callMs: number;
}

const FAST_COMPUTING: CallsView = { compute: true, callMs: 0 };

/**
 * Keeps the event loop turning while a fast call is in flight.
 *
 * With one request in flight the JS thread sleeps in the kernel until the engine thread's
 * completion wakes it, and on a VM that wake-up alone costs 15–20 µs: a third of an ECDSA
 * signature on SoftHSM2. While few calls are in flight (at most one per core) and the module's
 * calls take less than the budget, the pool keeps the loop turning with setImmediate instead: a
 * completion is picked up on the next turn. Every turn still runs timers and I/O, so nothing else
 * waits; the price is CPU (the JS thread stays busy while it polls) and an event-loop
 * utilization near 1 at low concurrency. Calls slower than the budget (a network HSM) are not
 * polled for: sleeping costs them little. Nor are calls the engine finds waiting rather than
 * computing (engineInfo().computeBound), however fast: with `p11-kit server` on the same two
 * cores (calls of about 270 µs), one request in flight signed 24% more without polling.
 *
 * A call's time is the engine's (engineInfo().averageCallMicros: the time inside the module),
 * not the time until its answer reached JS. That one includes the wake-up the polling saves, so
 * once it crossed the budget (a slow spell of the machine, or calls close to the budget) polling
 * stopped, the wake-ups kept it above, and the pool never polled again: Ed25519 at one in flight
 * signed at 0.60 × raw C on this VM (0.70–1.01 × since, its calls being close to the budget).
 */
export class BusyPoll {
  private turning: NodeJS.Immediate | undefined;
  private registered = false;
  private until = 0;
  private readonly maxInFlight: number;

  constructor(
    private readonly budgetMs: number,
    private readonly inFlight: () => number,
    cores: number = availableCores(),
    private readonly source: CompletionSource = NO_SOURCE,
    private readonly calls: () => CallsView = () => FAST_COMPUTING,
  ) {
    // On one core the polling would take the core the call runs on. With as many calls as
    // cores it still pays on this 2-vCPU VM (22k vs 18k ECDSA signs/s at 2 in flight); beyond,
    // the answers come often enough to keep the loop awake by themselves.
    this.maxInFlight = cores > 1 ? cores : 0;
  }

  /** A call was handed to the module at `at` (performance.now()). */
  callStarted(at: number): void {
    if (this.budgetMs <= 0 || this.inFlight() > this.maxInFlight) return;
    const calls = this.calls();
    // A call that waits (a network HSM, a p11-kit server) leaves the core idle: the poller would
    // take it from whoever answers, on this machine or not, to save one wake-up. A slow call
    // would keep the JS thread busy longer than the wake-up it saves is worth.
    if (!calls.compute || calls.callMs > this.budgetMs) return;
    this.until = at + this.budgetMs;
    if (this.turning !== undefined) return;
    if (!this.registered) {
      this.registered = true;
      this.source.start();
    }
    this.turning = setImmediate(this.turn);
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
    const leftMicros = (this.until - performance.now()) * 1000;
    this.source.poll(Math.max(0, Math.min(SPIN_MICROS, Math.floor(leftMicros))));
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
export function sampledEvery<T>(periodMs: number, read: () => T): () => T {
  let value!: T;
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
