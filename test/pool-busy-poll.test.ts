/**
 * Busy-polling for answers at low concurrency (lib/pool/busy-poll.ts): the rules on their own,
 * then the pool on SoftHSM2, where the event loop's utilization shows whether the loop was kept
 * turning (near 1) or slept between answers.
 */
import { performance } from 'perf_hooks';
import * as os from 'os';

import { generateKeyPair, Module, SigningPool } from '../lib';
import { BusyPoll, sampledEvery } from '../lib/pool/busy-poll';
import { createTestToken, TestToken } from './support/softhsm';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('BusyPoll rules', () => {
  test('polls while at most one call per core is in flight, and stops when none is', async () => {
    let inFlight = 1;
    const poll = new BusyPoll(60_000, () => inFlight, 2); // a budget no busy machine runs out of
    poll.callStarted(performance.now());
    expect(poll.polling).toBe(true);
    await nextTurn();
    expect(poll.polling).toBe(true);
    inFlight = 0;
    await nextTurn();
    await nextTurn();
    expect(poll.polling).toBe(false);
  });

  test('does not poll with more calls in flight than cores, or on one core', () => {
    const busy = new BusyPoll(10, () => 3, 2);
    busy.callStarted(performance.now());
    expect(busy.polling).toBe(false);
    const single = new BusyPoll(10, () => 1, 1);
    single.callStarted(performance.now());
    expect(single.polling).toBe(false);
    const off = new BusyPoll(0, () => 1, 4);
    off.callStarted(performance.now());
    expect(off.polling).toBe(false);
  });

  test('does not poll for calls the engine finds waiting, and polls again once they compute', () => {
    let computing = false;
    const poll = new BusyPoll(60_000, () => 1, 2, undefined, () => ({ compute: computing, callMs: 0.05 }));
    poll.callStarted(performance.now());
    expect(poll.polling).toBe(false);
    computing = true;
    poll.callStarted(performance.now());
    expect(poll.polling).toBe(true);
    poll.stop();
  });

  test('sampledEvery reads the judgement again only once its period has passed', async () => {
    let reads = 0;
    let answer = false;
    const sampled = sampledEvery(30, () => {
      reads++;
      return answer;
    });
    expect(sampled()).toBe(false);
    answer = true;
    expect(sampled()).toBe(false); // within the period: the value read before
    expect(reads).toBe(1);
    await sleep(40);
    expect(sampled()).toBe(true);
    expect(reads).toBe(2);
  });

  test('registers with the completion source once, polls it every turn, and unregisters when done', async () => {
    const calls: string[] = [];
    let inFlight = 1;
    const source = { start: () => calls.push('start'), poll: () => calls.push('poll'), stop: () => calls.push('stop') };
    const poll = new BusyPoll(60_000, () => inFlight, 2, source);
    poll.callStarted(performance.now());
    poll.callStarted(performance.now()); // a second call while polling: no second registration
    await nextTurn();
    await nextTurn();
    inFlight = 0;
    await nextTurn();
    await nextTurn();
    expect(poll.polling).toBe(false);
    expect(calls[0]).toBe('start');
    expect(calls.filter((c) => c === 'start')).toHaveLength(1);
    expect(calls.filter((c) => c === 'stop')).toHaveLength(1);
    expect(calls[calls.length - 1]).toBe('stop');
    expect(calls.filter((c) => c === 'poll').length).toBeGreaterThanOrEqual(2);

    // stop() while polling unregisters too.
    const again: string[] = [];
    const other = new BusyPoll(60_000, () => 1, 2, { start: () => again.push('start'), poll: () => undefined, stop: () => again.push('stop') });
    other.callStarted(performance.now());
    other.stop();
    expect(again).toEqual(['start', 'stop']);
  });

  test('stops at the budget, and does not start while the engine times calls above it', async () => {
    let callMs = 0; // no call timed yet: a fresh pool polls for its first answer
    const poll = new BusyPoll(2, () => 1, 4, undefined, () => ({ compute: true, callMs }));
    poll.callStarted(performance.now());
    expect(poll.polling).toBe(true);
    await sleep(10); // the budget (2 ms) passes while the call is still in flight
    await nextTurn();
    expect(poll.polling).toBe(false);
    callMs = 5; // calls take 5 ms inside the module: beyond the budget
    poll.callStarted(performance.now());
    expect(poll.polling).toBe(false);
    // Fast again: polling resumes with the next call. The answers that came late meanwhile
    // (woken, not polled for) do not count: only the time inside the module does.
    callMs = 0.05;
    poll.callStarted(performance.now());
    expect(poll.polling).toBe(true);
    poll.stop();
    expect(poll.polling).toBe(false);
  });
});

describe('SigningPool busy-polling on SoftHSM2', () => {
  let token: TestToken;
  let module: Module;
  const digest = Buffer.alloc(32, 3);
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;

  beforeAll(async () => {
    token = createTestToken();
    module = Module.load(token.modulePath);
    const session = await module.findSlot(token.label).openSession();
    await session.login(token.userPin);
    await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' }, { label: 'poll-key' });
    await session.close();
  });

  afterAll(() => {
    module?.close();
    token?.cleanup();
  });

  /** ELU over `count` signatures one after another, then over 100 ms with nothing in flight. */
  async function utilization(pool: SigningPool, count: number): Promise<{ signing: number; after: number }> {
    const start = performance.eventLoopUtilization();
    for (let i = 0; i < count; i++) {
      const signature = await pool.sign(digest);
      if (signature.length !== 64) throw new Error('not a P-256 signature');
    }
    const signing = performance.eventLoopUtilization(start).utilization;
    const idleStart = performance.eventLoopUtilization();
    await sleep(100);
    return { signing, after: performance.eventLoopUtilization(idleStart).utilization };
  }

  test('one request at a time keeps the loop turning while it waits, and lets it sleep afterwards', async () => {
    const open = (busyPollMicros?: number) =>
      SigningPool.open({ module, token: token.label, key: { label: 'poll-key' }, pin: token.userPin, size: 1, busyPollMicros });
    // A budget far above a signature's time, so that a busy machine (slower calls) does not
    // switch the polling off; the default budget's rules are checked above.
    const polling = await open(100_000);
    const sleeping = await open(0);
    await utilization(polling, 200); // warm-up: sessions, JIT, the latency average
    await utilization(sleeping, 200);
    const on = await utilization(polling, 2000);
    const off = await utilization(sleeping, 2000);
    await Promise.all([polling.close(), sleeping.close()]);

    if (cores > 1) {
      expect(on.signing).toBeGreaterThan(0.8); // busy between answers
      // Without polling the loop sleeps while waiting (the JS thread's own work per request is
      // far less than the signature).
      expect(off.signing).toBeLessThan(on.signing);
    } else {
      // One core: the pool never polls (the worker needs that core), whatever the budget.
      expect(on.signing).toBeLessThan(0.8);
    }
    // Either way the loop sleeps once nothing is in flight.
    expect(on.after).toBeLessThan(0.5);
    expect(off.after).toBeLessThan(0.5);
  });

  test('an answer that comes after the polling gave up still arrives', async () => {
    // An RSA-2048 signature takes far longer than a 20 µs budget. A fresh pool polls for its
    // first answer (it has no latency average yet), gives up while the call is still in the
    // module, and the answer must come back through the engine's usual wake-up.
    const session = await module.findSlot(token.label).openSession();
    await session.login(token.userPin);
    await generateKeyPair(session, { algorithm: 'rsa', modulusBits: 2048 }, { label: 'poll-rsa' });
    await session.close();
    const lengths: number[] = [];
    for (let i = 0; i < 10; i++) {
      const pool = await SigningPool.open({ module, token: token.label, key: { label: 'poll-rsa' }, pin: token.userPin, size: 1, busyPollMicros: 20 });
      lengths.push((await pool.sign(Buffer.from(`message ${i}`))).length);
      await pool.close();
    }
    expect(lengths).toEqual(Array(10).fill(256));
  });

  test('busyPollMicros must be a non-negative number', async () => {
    for (const busyPollMicros of [-1, Number.NaN, '5' as unknown as number]) {
      await expect(
        SigningPool.open({ module, token: token.label, key: { label: 'poll-key' }, pin: token.userPin, busyPollMicros }),
      ).rejects.toThrow(new TypeError('options.busyPollMicros must be a number of microseconds, 0 or more'));
    }
  });
});
