import { performance } from 'perf_hooks';

import { binding } from '../binding';
import { Pkcs11Error } from '../errors';
import type { Pkcs11Signer, SignerKeyType } from '../keys/signer';
import type { Slot } from '../module/slot';
import type { NativePKCS11 } from '../native/pkcs11';
import type { Bytes, Handle, Mechanism } from '../native/types';
import { BusyPoll, sampledEvery } from './busy-poll';
import { classify } from './classify';
import { HsmUnavailableError, PoolClosedError, QueueFullError, RequestTimeoutError } from './errors';
import { Fifo } from './fifo';
import { Running } from './running';
import { signTo } from './sign-sink';
import type { SignSinkClient } from './sign-sink';
import { defaultMechanism, findPrivateKey, locatorCriteria, proveKey, readKeyFacts } from './key-binding';
import { LatencyWindow } from './latency';
import { checkOptions } from './options';
import type { PoolStats, SigningPoolOptions } from './options';
import { closeQuietly, defaultSize, findPublicKey, loginIfNeeded } from './sessions';

interface Request {
  data: Bytes;
  signature: Bytes | undefined; // set for verify requests
  mechanism: Mechanism;
  resolve: (value: Buffer | boolean) => void;
  reject: (error: unknown) => void;
  started: number;
  deadline: number;
  attempts: number;
  settled: boolean;
  /** The session its current call runs on. */
  lane: Lane | undefined;
}

/** A session of the pool, with the key handles found in it and the requests it is running. */
interface Lane {
  handle: Handle;
  privateKey: Handle;
  publicKey: Handle | undefined;
  running: Running<Request>;
  refreshing: Promise<void> | undefined;
}

function newLane(handle: Handle, privateKey: Handle, publicKey: Handle | undefined): Lane {
  return { handle, privateKey, publicKey, running: new Running(), refreshing: undefined };
}

// perf_hooks' object, not the global: the global `performance` is a getter Node runs on every
// read, and the pool reads the clock twice a request.
const now = (): number => performance.now();

/**
 * Concurrent signing with one token key over a set of sessions. Any number of callers may sign
 * at once: each request goes to an idle session (the most recently used first, so warm sessions
 * are reused), or waits in a bounded queue. Lost sessions are replaced and the request retried
 * once; a device that is gone trips a breaker that fails fast and probes until the device is back.
 * Every request either resolves with a complete signature or rejects: none is dropped.
 */
export class SigningPool {
  readonly keyType: SignerKeyType;
  readonly publicKeySpki: Buffer;
  readonly canSign: boolean;
  readonly size: number;

  private readonly native: NativePKCS11;
  private readonly criteria;
  private readonly defaultMechanism: Mechanism;
  private readonly maxQueue: number;
  private readonly timeoutMs: number;
  private readonly probeIntervalMs: number;
  private readonly depth: number;

  private readonly lanes = new Set<Lane>();
  private idle: Lane[] = [];
  private opening = 0;
  private readonly queue = new Fifo<Request>();
  private readonly latency = new LatencyWindow();
  private counts = { done: 0, failed: 0, retried: 0, timedOut: 0, rejected: 0 };

  private breaker: { reason: string; cause: unknown; timer: NodeJS.Timeout | undefined } | undefined;
  /** When a probe first found calls stuck inside the module it needs to re-initialise. */
  private stuckSince: number | undefined;
  private abandonedCalls = 0;
  private fatal: unknown;
  private loginInProgress: Promise<void> | undefined;
  /** Lanes out of service with calls still on them; each session is closed when they return. */
  private readonly orphans = new Set<Lane>();
  /** Sessions whose close failed while the device was away (see closeSession). */
  private readonly unclosed = new Set<Handle>();
  /** close() stopped waiting for calls stuck in the HSM. */
  private gaveUpWaiting = false;
  private closing: { promise: Promise<void>; done: () => void } | undefined;
  private readonly sweeper: NodeJS.Timeout;
  /** Calls handed to the module and not yet returned. */
  private callsInFlight = 0;
  private readonly busyPoll: BusyPoll;
  /** Where the binding answers this pool's signatures (sign-sink.ts), one object for all. */
  private readonly signAnswers: SignSinkClient<Request> = {
    signed: (request, signature) => this.answered(request, signature, undefined),
    signFailed: (request, error) => this.answered(request, undefined, error),
  };

  private constructor(
    private readonly options: SigningPoolOptions,
    private slot: Slot,
    first: Lane,
    facts: { keyType: SignerKeyType; canSign: boolean; publicKeySpki: Buffer },
    size: number,
  ) {
    this.native = options.module.native;
    this.criteria = locatorCriteria(options.key);
    this.keyType = facts.keyType;
    this.canSign = facts.canSign;
    this.publicKeySpki = facts.publicKeySpki;
    this.size = size;
    this.defaultMechanism = options.mechanism ?? defaultMechanism(facts.keyType);
    this.maxQueue = options.maxQueue ?? 10_000;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.probeIntervalMs = options.probeIntervalMs ?? 1_000;
    this.depth = options.pipelineDepth ?? 2;
    this.lanes.add(first);
    this.idle.push(first);
    // One timer for every deadline, instead of one per request on the hot path.
    const period = Math.min(250, Math.max(5, Math.floor(this.timeoutMs / 10)));
    this.sweeper = setInterval(() => this.sweep(), period);
    this.sweeper.unref();
    this.busyPoll = new BusyPoll(
      options.busyPollMicros === undefined ? 0.25 : options.busyPollMicros / 1000,
      () => this.callsInFlight,
      undefined,
      {
        start: () => binding.startCompletionPolling(),
        poll: (spinMicros) => binding.pollCompletions(spinMicros),
        stop: () => binding.stopCompletionPolling(),
      },
      // The engine samples whether calls sleep, and times them; both move over dozens of calls.
      sampledEvery(100, () => {
        const engine = binding.engineInfo();
        return { compute: engine.computeBound, callMs: engine.averageCallMicros / 1000 };
      }),
    );
  }

  /** Opens the pool: finds the token and the key, logs in once, and checks the key. */
  static async open(options: SigningPoolOptions): Promise<SigningPool> {
    checkOptions(options);
    const criteria = locatorCriteria(options.key);
    const slot = options.module.findSlot(options.token);
    const size = options.size ?? defaultSize(slot);
    const native = options.module.native;
    const handle = await native.C_OpenSessionAsync(slot.id, 0);
    try {
      await loginIfNeeded(native, handle, options.pin);
      const privateKey = await findPrivateKey(native, handle, criteria);
      const facts = await readKeyFacts(native, handle, criteria, privateKey);
      const publicKey = await findPublicKey(native, handle, criteria);
      return new SigningPool(options, slot, newLane(handle, privateKey, publicKey), facts, size);
    } catch (error) {
      await closeQuietly(native, handle);
      throw error;
    }
  }

  /** Signs `data` with the pool's key (the default mechanism unless one is given). */
  sign(data: Bytes, mechanism: Mechanism = this.defaultMechanism): Promise<Buffer> {
    return this.submit(data, undefined, mechanism) as Promise<Buffer>;
  }

  /** Verifies with the key's public half on the token; true when the signature is valid. */
  verify(data: Bytes, signature: Bytes, mechanism: Mechanism = this.defaultMechanism): Promise<boolean> {
    return this.submit(data, signature, mechanism) as Promise<boolean>;
  }

  /** The pool as a Pkcs11Signer (for the certificate authority). */
  asSigner(): Pkcs11Signer {
    return {
      keyType: this.keyType,
      publicKeySpki: this.publicKeySpki,
      canSign: this.canSign,
      sign: (mechanism, data) => this.sign(data, mechanism),
    };
  }

  stats(): PoolStats {
    let inFlight = 0;
    for (const lane of this.lanes) inFlight += lane.running.size;
    return {
      sessions: this.lanes.size,
      opening: this.opening,
      idle: this.idle.length,
      inFlight,
      queued: this.queue.length,
      ...this.counts,
      breaker: this.breaker ? 'open' : 'closed',
      abandonedCalls: this.abandonedCalls,
      latencyMs: this.latency.summary(),
    };
  }

  /**
   * Stops taking requests, lets every accepted one finish (each within its own deadline), then
   * closes the sessions. A call stuck in the HSM longer than `timeoutMs` (default: the request
   * deadline) does not hold close() up: its session is closed once the call returns.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closing) return this.closing.promise;
    let done!: () => void;
    const promise = new Promise<void>((resolve) => (done = resolve));
    this.closing = { promise, done };
    if (this.breaker?.timer) clearTimeout(this.breaker.timer);
    const limit = setTimeout(() => this.abandonStuckLanes(), options.timeoutMs ?? this.timeoutMs);
    limit.unref();
    promise.then(() => clearTimeout(limit));
    this.maybeFinishClose();
    return promise;
  }

  private abandonStuckLanes(): void {
    this.gaveUpWaiting = true;
    for (const lane of [...this.lanes]) {
      if (lane.running.size === 0) continue;
      for (const request of lane.running) this.timeOut(request);
      this.lanes.delete(lane);
      this.orphans.add(lane);
    }
    this.failQueued(new PoolClosedError());
    this.maybeFinishClose();
  }

  private submit(data: Bytes, signature: Bytes | undefined, mechanism: Mechanism): Promise<Buffer | boolean> {
    if (this.closing) return Promise.reject(new PoolClosedError());
    if (this.fatal !== undefined) return Promise.reject(this.fatal);
    if (this.breaker) {
      this.counts.rejected++;
      return Promise.reject(new HsmUnavailableError(this.breaker.reason, this.breaker.cause));
    }
    return new Promise((resolve, reject) => {
      const started = now();
      const request: Request = {
        data,
        signature,
        mechanism,
        resolve,
        reject,
        started,
        deadline: started + this.timeoutMs,
        attempts: 0,
        settled: false,
        lane: undefined,
      };
      const lane = this.pickLane();
      if (lane !== undefined) {
        this.run(lane, request, started);
        return;
      }
      if (this.queue.length >= this.maxQueue) {
        this.counts.rejected++;
        reject(new QueueFullError(this.maxQueue));
        return;
      }
      this.queue.push(request);
      this.grow();
    });
  }

  /**
   * The most recently idle session (warm first); else, once every session allowed is open, the
   * least busy one with room in its pipeline. A session with nothing running is on the idle stack.
   */
  private pickLane(): Lane | undefined {
    const idle = this.idle.pop();
    if (idle !== undefined || this.depth < 2) return idle;
    // Another session, while the cap allows, beats a second request on a busy one: the binding
    // runs one session's calls one after another.
    if (this.lanes.size + this.opening < this.size && !this.breaker && !this.closing) return undefined;
    let best: Lane | undefined;
    for (const lane of this.lanes) {
      if (lane.running.size < this.depth && lane.refreshing === undefined && (!best || lane.running.size < best.running.size)) {
        best = lane;
      }
    }
    return best;
  }

  /** `started`: now, when the caller has just read the clock. */
  private run(lane: Lane, request: Request, started = now()): void {
    lane.running.add(request);
    request.attempts++;
    request.lane = lane;
    this.callsInFlight++;
    this.busyPoll.callStarted(started);
    try {
      if (request.signature === undefined) {
        // Signatures come back through the binding's batch sink, without a promise each.
        signTo(this.native, lane.handle, request.mechanism, lane.privateKey, request.data, this.signAnswers, request);
        return;
      }
      const call =
        lane.publicKey === undefined
          ? Promise.reject(new Error('the token has no public key object for this key: verify is unavailable'))
          : this.native.verify(lane.handle, request.mechanism, lane.publicKey, request.data, request.signature);
      call.then(
        (valid) => this.answered(request, valid, undefined),
        (error) => this.answered(request, undefined, error),
      );
    } catch (error) {
      // The binding refuses bad arguments synchronously (a TypeError): that request fails, as an
      // answer would (asynchronously), and the session, which never saw it, stays in service.
      queueMicrotask(() => this.answered(request, undefined, error));
    }
  }

  /** The binding's answer to the call `request` made: a result, or else `error`. */
  private answered(request: Request, result: Buffer | boolean | undefined, error: unknown): void {
    this.callsInFlight--;
    const lane = request.lane as Lane;
    if (result !== undefined) this.succeeded(lane, request, result, now());
    else this.failed(lane, request, error);
  }

  private succeeded(lane: Lane, request: Request, result: Buffer | boolean, at: number): void {
    lane.running.delete(request);
    if (!request.settled) {
      request.settled = true;
      this.counts.done++;
      this.latency.add(at - request.started);
      request.resolve(result);
    }
    if (!this.closeOrphan(lane)) this.release(lane);
  }

  /** A lane out of service got its last answer: now its session can be closed. */
  private closeOrphan(lane: Lane): boolean {
    if (!this.orphans.has(lane)) return false;
    if (lane.running.size === 0) {
      this.orphans.delete(lane);
      void this.closeSession(lane.handle);
      this.maybeFinishClose();
    }
    return true;
  }

  private settleError(request: Request, error: unknown): void {
    if (request.settled) return;
    request.settled = true;
    this.counts.failed++;
    request.reject(error);
  }

  /** A lane with room takes the next waiting request; one with nothing running goes idle. */
  private release(lane: Lane): void {
    if (!this.lanes.has(lane) || lane.refreshing !== undefined) return;
    for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) {
      if (next.settled) continue; // timed out while waiting
      this.run(lane, next);
      return;
    }
    if (lane.running.size === 0) this.idle.push(lane);
    this.maybeFinishClose();
  }

  private failed(lane: Lane, request: Request, error: unknown): void {
    lane.running.delete(request);
    if (!this.lanes.has(lane) && !this.orphans.has(lane)) {
      // A session from before the module was re-initialised: its failure says nothing about now.
      this.settleError(request, error);
      return;
    }
    this.handleFailure(lane, request, error);
    this.closeOrphan(lane);
  }

  private handleFailure(lane: Lane, request: Request, error: unknown): void {
    switch (classify(error)) {
      case 'request':
        this.settleError(request, error);
        this.release(lane);
        return;
      case 'auth':
        this.fatal = error;
        this.settleError(request, error);
        this.failQueued(error);
        this.discard(lane);
        return;
      case 'device':
        this.discard(lane);
        this.tripBreaker(error);
        this.settleError(request, new HsmUnavailableError(this.breaker?.reason ?? 'device error', error));
        return;
      case 'key':
        if (this.lanes.has(lane)) this.refreshKey(lane, request, error);
        else this.retry(request, error);
        return;
      case 'session':
      case 'busy':
        // The session cannot be trusted any more (lost, logged out, or an operation left
        // active): close it, and give the request one more try on a fresh session. The close
        // runs after the calls still queued on it (the binding keeps a session's calls in order).
        this.discard(lane);
        this.retry(request, error);
        return;
    }
  }

  private retry(request: Request, error: unknown): void {
    if (request.settled) return;
    if (request.attempts >= 2) {
      this.settleError(request, error);
      return;
    }
    this.counts.retried++;
    const lane = this.pickLane();
    if (lane !== undefined) {
      this.run(lane, request);
      return;
    }
    this.queue.unshift(request);
    this.grow();
  }

  /**
   * The key handle went stale: find the key again in this session and prove it is the same key
   * (once per lane, however many requests noticed), then run the request again.
   */
  private refreshKey(lane: Lane, request: Request, error: unknown): void {
    if (request.attempts >= 2) {
      this.settleError(request, error);
      this.release(lane);
      return;
    }
    this.counts.retried++;
    if (lane.refreshing === undefined) {
      this.idle = this.idle.filter((candidate) => candidate !== lane);
      lane.refreshing = (async () => {
        const privateKey = await findPrivateKey(this.native, lane.handle, this.criteria);
        if (!(await proveKey(this.native, lane.handle, privateKey, this.keyType, this.publicKeySpki))) {
          throw new Error('the key found again does not match the public key the pool started with; refusing to sign');
        }
        lane.privateKey = privateKey;
        lane.publicKey = await findPublicKey(this.native, lane.handle, this.criteria);
      })();
    }
    lane.running.add(request); // keeps the lane busy while it refreshes
    lane.refreshing.then(
      () => {
        lane.refreshing = undefined;
        lane.running.delete(request);
        if (!this.lanes.has(lane)) return this.retry(request, error);
        this.run(lane, request);
      },
      (refreshError) => {
        lane.refreshing = undefined;
        lane.running.delete(request);
        this.settleError(request, refreshError);
        this.discard(lane);
        this.grow();
      },
    );
  }

  /** Opens more sessions while requests wait and the cap allows. */
  private grow(): void {
    if (this.breaker || this.closing || this.fatal !== undefined) return;
    while (this.queue.length > this.opening && this.lanes.size + this.opening < this.size) {
      this.opening++;
      this.openLane().then(
        (lane) => {
          this.opening--;
          this.lanes.add(lane);
          this.release(lane);
        },
        (error) => {
          this.opening--;
          this.laneFailed(error);
        },
      );
    }
  }

  private async openLane(): Promise<Lane> {
    const handle = await this.native.C_OpenSessionAsync(this.slot.id, 0);
    try {
      await this.login(handle);
      const privateKey = await findPrivateKey(this.native, handle, this.criteria);
      const publicKey = await findPublicKey(this.native, handle, this.criteria);
      return newLane(handle, privateKey, publicKey);
    } catch (error) {
      await this.closeSession(handle);
      throw error;
    }
  }

  /**
   * Closes a session the pool no longer uses. When the device is away the close fails and the
   * session may live on in it: it is closed again once the device is back (unless the module is
   * re-initialised first, which closes it anyway).
   */
  private async closeSession(handle: Handle): Promise<void> {
    try {
      await this.native.C_CloseSessionAsync(handle);
    } catch (error) {
      if (classify(error) === 'device') this.unclosed.add(handle);
    }
  }

  /** The device is back: close what could not be closed while it was away. */
  private closeUnclosed(): void {
    for (const handle of this.unclosed) {
      this.unclosed.delete(handle);
      // A lane holding this number means the module did close the old session and handed the
      // number out again: that session is in use, not leftover.
      if ([...this.lanes].some((lane) => lane.handle === handle)) continue;
      void this.closeSession(handle);
    }
  }

  /** One login at a time; the token's login state is shared by all its sessions. */
  private async login(handle: Handle): Promise<void> {
    while (this.loginInProgress) await this.loginInProgress.catch(() => undefined);
    const attempt = loginIfNeeded(this.native, handle, this.options.pin);
    this.loginInProgress = attempt;
    try {
      await attempt;
    } finally {
      if (this.loginInProgress === attempt) this.loginInProgress = undefined;
    }
  }

  private laneFailed(error: unknown): void {
    switch (classify(error)) {
      case 'auth':
        this.fatal = error;
        this.failQueued(error);
        return;
      case 'device':
        this.tripBreaker(error);
        return;
      default:
        // Without any working session the waiting requests cannot be served: report the cause.
        if (this.lanes.size === 0 && this.opening === 0) this.failQueued(error);
    }
  }

  /** Takes a lane out of service; its session is closed once the calls still on it return. */
  private discard(lane: Lane): void {
    if (!this.lanes.delete(lane)) return;
    this.idle = this.idle.filter((candidate) => candidate !== lane);
    this.orphans.add(lane);
    this.closeOrphan(lane);
    // Requests may be waiting for the session that just went: open a replacement for them.
    this.grow();
    this.maybeFinishClose();
  }

  private failQueued(error: unknown): void {
    for (let request = this.queue.shift(); request !== undefined; request = this.queue.shift()) {
      this.settleError(request, error);
    }
  }

  private tripBreaker(cause: unknown): void {
    if (this.breaker) return;
    const reason = cause instanceof Pkcs11Error ? `${cause.function} returned ${cause.name}` : String(cause);
    this.breaker = { reason, cause, timer: undefined };
    this.failQueued(new HsmUnavailableError(reason, cause));
    // Sessions do not survive a device that went away; idle ones are dropped now, busy ones when
    // their calls return.
    for (const lane of [...this.lanes]) if (lane.running.size === 0) this.discard(lane);
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (!this.breaker || this.closing) return;
    this.breaker.timer = setTimeout(() => this.probe(), this.probeIntervalMs);
    this.breaker.timer.unref();
  }

  /**
   * Asks the device whether it is back: opens a session (re-initialising the module when it
   * says it is not initialised), logs in, finds the key and proves it is the same key.
   */
  private async probe(): Promise<void> {
    try {
      let lane: Lane;
      try {
        lane = await this.openLaneOnFreshSlot();
      } catch (error) {
        if (classify(error) !== 'device') throw error;
        this.reinitializeModule();
        lane = await this.openLaneOnFreshSlot();
      }
      if (!(await proveKey(this.native, lane.handle, lane.privateKey, this.keyType, this.publicKeySpki))) {
        await this.closeSession(lane.handle);
        throw new Error('the key on the returning device does not match the pool key');
      }
      this.breaker = undefined;
      this.lanes.add(lane);
      this.closeUnclosed();
      this.release(lane);
      this.grow();
    } catch (error) {
      if (this.breaker) this.breaker.cause = error;
      this.scheduleProbe();
    }
  }

  /**
   * Re-initialises the module without letting calls stuck inside it freeze the event loop:
   * while any is inside, this probe fails and the next one looks again.
   */
  private reinitializeModule(): void {
    const inside = this.native.callsInFlight;
    if (inside === 0) {
      // A call may still slip in before C_Finalize closes the gate; wait for it only briefly.
      this.options.module.reinitialize({ drainTimeoutMs: 200 });
    } else {
      this.stuckSince ??= now();
      const limit = this.options.abandonStuckCallsAfterMs;
      if (limit === undefined || now() - this.stuckSince < limit) {
        throw new Error(`${inside} call(s) are still inside the module; it cannot be re-initialised under them`);
      }
      // Counted first: C_Finalize gives them up even when the C_Initialize after it fails.
      this.abandonedCalls += inside;
      this.options.module.reinitialize({ drainTimeoutMs: 0, abandonCalls: true });
    }
    this.stuckSince = undefined;
    // Requests whose calls were left inside the old initialisation get no answer from it now.
    for (const lane of [...this.lanes, ...this.orphans]) {
      for (const request of lane.running) {
        this.settleError(request, new HsmUnavailableError('the module was re-initialised while this request was inside it', this.breaker?.cause));
      }
    }
    // Every session died with the old initialisation. Their handle numbers may already belong
    // to new sessions, so none is closed; answers still to come from them are only reported.
    this.lanes.clear();
    this.orphans.clear();
    this.unclosed.clear();
    this.idle = [];
  }

  private async openLaneOnFreshSlot(): Promise<Lane> {
    // Slot IDs may change when a device comes back: look the token up again.
    this.slot = this.options.module.findSlot(this.options.token);
    return this.openLane();
  }

  /** Rejects requests whose deadline passed: waiting ones are removed, running ones abandoned. */
  private sweep(): void {
    const time = now();
    for (const request of this.queue.removeWhere((r) => r.settled || r.deadline <= time)) {
      if (!request.settled) this.timeOut(request);
    }
    for (const lanes of [this.lanes, this.orphans]) {
      for (const lane of lanes) {
        for (const request of lane.running) if (!request.settled && request.deadline <= time) this.timeOut(request);
      }
    }
  }

  private timeOut(request: Request): void {
    this.counts.timedOut++;
    this.settleError(request, new RequestTimeoutError(this.timeoutMs));
  }

  private maybeFinishClose(): void {
    if (!this.closing || this.queue.length > 0) return;
    for (const lane of this.lanes) if (lane.running.size > 0) return;
    if (this.orphans.size > 0 && !this.gaveUpWaiting) return;
    if (this.opening > 0) return;
    clearInterval(this.sweeper);
    this.busyPoll.stop();
    const lanes = [...this.lanes];
    this.lanes.clear();
    this.idle = [];
    const { done } = this.closing;
    Promise.all(lanes.map((lane) => closeQuietly(this.native, lane.handle))).then(() => done());
  }
}
