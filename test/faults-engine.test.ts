/**
 * The addon's worker threads (native/async/engine.cc) under a hung module call: a call submitted
 * while another hangs must get a thread of its own (the engine may start at least 8), never wait
 * behind the hung one. The hang comes from the fault shim in front of SoftHSM2.
 */
import { CKF_RW_SESSION, CKU_USER, PKCS11, Pkcs11Error } from '../lib';
import type { Handle } from '../lib';
import { ShimControl, applyShimEnv, buildShim } from './support/shim';
import { TestToken, createTestToken } from './support/softhsm';

let token: TestToken;
let control: ShimControl;
let m: PKCS11;
let sessions: Handle[];

beforeAll(() => {
  const shimPath = buildShim();
  token = createTestToken({ label: 'faults-engine' });
  control = new ShimControl();
  control.set({ 'hang.max': 10_000, 'stats.always': 1 });
  applyShimEnv(control);
  m = new PKCS11();
  m.load(shimPath);
  m.C_Initialize();
  const slot = m.C_GetSlotList(true).find((id) => m.C_GetTokenInfo(id).label === token.label);
  if (slot === undefined) throw new Error('token not found behind the shim');
  sessions = Array.from({ length: 4 }, () => m.C_OpenSession(slot, CKF_RW_SESSION));
  try {
    m.C_Login(sessions[0], CKU_USER, token.userPin);
  } catch (error) {
    if (!Pkcs11Error.is(error, 'CKR_USER_ALREADY_LOGGED_IN')) throw error;
  }
});

afterAll(() => {
  control?.clear();
  m?.close();
  control?.cleanup();
  token?.cleanup();
});

test('calls submitted back to back while one worker thread is idle each get a thread: a hung call holds up no other', async () => {
  // One call at a time: afterwards the engine has (in this fresh worker) one thread, idle.
  for (const session of sessions) await m.C_GenerateRandomAsync(session, 8);
  const before = control.stats().calls.C_GenerateRandom ?? 0;
  control.set({ 'hang.C_GenerateRandom.count': 1 });
  // Four calls on four sessions at once: the first hangs in the module, the others must run.
  const [hung, ...others] = sessions.map((session) => m.C_GenerateRandomAsync(session, 8));
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    Promise.all(others).then((results) => results.map((bytes) => bytes.length)),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still waiting after 2 s'), 2000))),
  ]);
  clearTimeout(timer);
  const stats = control.stats();
  control.unset('hang.C_GenerateRandom.count');
  await Promise.all([hung, ...others]);
  expect({ outcome, enteredTheModule: (stats.calls.C_GenerateRandom ?? 0) - before, hangs: stats.faults.hang }).toEqual({
    outcome: [8, 8, 8],
    enteredTheModule: 4,
    hangs: 1,
  });
});
