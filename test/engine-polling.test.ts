/**
 * Polling for completions (Engine::StartPolling, used by the pool's busy-poll): while a poller is
 * registered, a finished call waits for pollCompletions() instead of waking the JS thread, and
 * the last poller to stop settles whatever is left. Nothing may be lost either way.
 */
import { binding } from '../lib/binding';
import { CKM_SHA256 } from '../lib';
import { expectTypeError, openTestModule, TestModule, thrownBy } from './support/binding-helpers';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let tm: TestModule;

beforeAll(() => {
  tm = openTestModule();
});

afterAll(() => {
  tm?.close();
});

/** A digest call, and whether its promise has settled yet. */
function tracked(): { promise: Promise<Buffer>; settled: () => boolean } {
  let done = false;
  const promise = tm.p11.digest(tm.session, CKM_SHA256, Buffer.from('polled'));
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  return { promise, settled: () => done };
}

/** Waits until no async call of the test module is inside it any more (a busy machine may take long). */
async function leftTheModule(): Promise<void> {
  const deadline = Date.now() + 5000;
  while (tm.p11.callsInFlight > 0 && Date.now() < deadline) await sleep(5);
  await sleep(20); // from leaving the module to the completion list: a few instructions
}

test('while polling, a finished call waits for pollCompletions()', async () => {
  binding.startCompletionPolling();
  try {
    const call = tracked();
    await sleep(100); // long done inside the engine on a quiet machine, but nobody polled
    // Until a poll finds it (a starved worker may finish later); it must not settle meanwhile.
    let waitedForPoll = true;
    let settledByPoll = 0;
    for (const deadline = Date.now() + 5000; settledByPoll === 0 && Date.now() < deadline; ) {
      waitedForPoll &&= !call.settled();
      settledByPoll = binding.pollCompletions();
      if (settledByPoll === 0) await sleep(10);
    }
    await sleep(0);
    expect({ waitedForPoll, settledByPoll, settled: call.settled() }).toEqual({ waitedForPoll: true, settledByPoll: 1, settled: true });
    expect((await call.promise).length).toBe(32);
  } finally {
    binding.stopCompletionPolling();
  }
});

test('the last poller to stop settles what finished meanwhile; others keep it waiting', async () => {
  binding.startCompletionPolling();
  binding.startCompletionPolling();
  const call = tracked();
  await leftTheModule();
  binding.stopCompletionPolling(); // one poller is left
  await sleep(50);
  const afterFirstStop = call.settled();
  binding.stopCompletionPolling();
  await sleep(0);
  expect({ afterFirstStop, afterLastStop: call.settled() }).toEqual({ afterFirstStop: false, afterLastStop: true });
  expect((await call.promise).length).toBe(32);
});

test('a call still running when polling stops is delivered by the usual wake-up', async () => {
  binding.startCompletionPolling();
  const calls = Array.from({ length: 20 }, () => tracked());
  binding.stopCompletionPolling(); // most of them are still queued or running
  const digests = await Promise.all(calls.map((call) => call.promise));
  expect(digests.map((d) => d.length)).toEqual(Array(20).fill(32));
  expect(binding.pollCompletions()).toBe(0);
});

test('pollCompletions(spinMicros): with nothing ready it waits that long first, with an answer ready it settles it', async () => {
  binding.startCompletionPolling();
  try {
    // Nothing in flight: the spin runs to its end (a lower bound, which a loaded machine only lengthens).
    const started = process.hrtime.bigint();
    expect(binding.pollCompletions(500)).toBe(0);
    expect(Number(process.hrtime.bigint() - started) / 1000).toBeGreaterThanOrEqual(500);
    // A finished call is found, by the spin or by a later poll, and settled once.
    const call = tracked();
    let settled = 0;
    for (const deadline = Date.now() + 5000; settled === 0 && Date.now() < deadline; ) settled = binding.pollCompletions(1000);
    await sleep(0);
    expect({ settled, resolved: call.settled() }).toEqual({ settled: 1, resolved: true });
    expect((await call.promise).length).toBe(32);
  } finally {
    binding.stopCompletionPolling();
  }
});

test('pollCompletions: spinMicros must be an integer from 0 to 1000 (a TypeError naming it)', () => {
  const poll = binding.pollCompletions as (spin?: unknown) => number;
  for (const bad of [-1, 1.5, 'x', 1001]) {
    expectTypeError(thrownBy(() => poll(bad)), /^pollCompletions: argument 'spinMicros' must be /);
  }
  expect(poll(undefined)).toBe(0);
});
