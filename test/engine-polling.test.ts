/**
 * Polling for completions (Engine::StartPolling, used by the pool's busy-poll): while a poller is
 * registered, a finished call waits for pollCompletions() instead of waking the JS thread, and
 * the last poller to stop settles whatever is left. Nothing may be lost either way.
 */
import { binding } from '../lib/binding';
import { CKM_SHA256 } from '../lib';
import { openTestModule, TestModule } from './support/binding-helpers';

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
