/**
 * A network HSM that goes away: SoftHSM2 behind `p11-kit server`, reached through
 * p11-kit-client.so over a unix socket (test/support/p11kit.ts). The server is killed (SIGKILL,
 * with the connections it serves) in the middle of signing and started again on the same
 * socket. The pool must fail fast while it is gone, recover by itself once it is back, and never
 * lose a request.
 */
import { createHash, createPublicKey, KeyObject, randomBytes, verify as verifySignature } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

import {
  CKA_CLASS,
  CKA_LABEL,
  CKF_RW_SESSION,
  CKM_ECDSA,
  CKO_PRIVATE_KEY,
  CKU_USER,
  generateKeyPair,
  HsmUnavailableError,
  Module,
  Pkcs11Error,
  PoolError,
  SigningPool,
} from '../lib';
import { classify } from '../lib/pool/classify';
import { findP11KitClient, P11KitServer } from './support/p11kit';
import { createTestToken, setRealEnv, TestToken } from './support/softhsm';

const KEY_LABEL = 'network-key';
const SUMMARY_PATH = path.resolve(__dirname, '..', 'test-results', 'faults-network-summary.json');

let token: TestToken;
let server: P11KitServer;
let client: Module;
const summary: Record<string, unknown> = {};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` until it holds (true) or `timeoutMs` passed (false). */
async function within(timeoutMs: number, predicate: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (predicate()) return true;
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
}

function kind(error: unknown): string {
  if (error instanceof Pkcs11Error) return `Pkcs11Error:${error.name}`;
  if (error instanceof PoolError) return error.name;
  return `untyped:${String(error)}`;
}

/** The Pkcs11Error `fn` throws ('none' when it succeeds). */
function errorOf(fn: () => unknown): Pkcs11Error | 'none' {
  try {
    fn();
    return 'none';
  } catch (error) {
    if (error instanceof Pkcs11Error) return error;
    throw error;
  }
}

beforeAll(async () => {
  token = createTestToken({ label: 'network-hsm' });
  server = new P11KitServer({ provider: token.modulePath, tokenLabel: token.label, softhsmConf: token.conf });
  await server.start();
  // p11-kit-client reads the address when it is initialised.
  setRealEnv('P11_KIT_SERVER_ADDRESS', server.address);
  client = Module.load(findP11KitClient());
  expect(client.info().libraryDescription).toBe('PKCS#11 Kit Proxy Module');
  const session = await client.findSlot(token.label).openSession();
  await session.login(token.userPin);
  await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' }, { label: KEY_LABEL });
  await session.close();
});

afterAll(async () => {
  try {
    fs.mkdirSync(path.dirname(SUMMARY_PATH), { recursive: true });
    fs.writeFileSync(SUMMARY_PATH, JSON.stringify(summary, null, 2) + '\n');
  } finally {
    try {
      client?.close();
    } finally {
      server?.cleanup();
      setRealEnv('P11_KIT_SERVER_ADDRESS', undefined);
      token?.cleanup();
    }
  }
});

/** Errors p11-kit-client answered while its server was gone (filled by the first test). */
const lostServerErrors: Record<string, Pkcs11Error | 'none'> = {};

test('p11-kit-client with its server gone: CKR_DEVICE_ERROR from every call, until re-initialised after the server is back', async () => {
  const native = client.native;
  const slot = client.findSlot(token.label);
  const session = native.C_OpenSession(slot.id, CKF_RW_SESSION);
  native.C_Login(session, CKU_USER, token.userPin);
  const [key] = native.findObjectsSync(session, [
    { type: CKA_CLASS, value: CKO_PRIVATE_KEY },
    { type: CKA_LABEL, value: KEY_LABEL },
  ]);
  expect(key).toBeDefined();

  await server.kill();
  const digest = createHash('sha256').update('gone').digest();
  Object.assign(lostServerErrors, {
    sign: errorOf(() => native.signSync(session, CKM_ECDSA, key, digest)),
    C_GetSessionInfo: errorOf(() => native.C_GetSessionInfo(session)),
    C_OpenSession: errorOf(() => native.C_OpenSession(slot.id, CKF_RW_SESSION)),
    C_GetSlotList: errorOf(() => native.C_GetSlotList(true)),
    C_GetInfo: errorOf(() => native.C_GetInfo()),
    C_GetTokenInfo: errorOf(() => native.C_GetTokenInfo(slot.id)),
  });
  const async = await native.sign(session, CKM_ECDSA, key, digest).then(
    () => 'none',
    (error: Pkcs11Error) => error.name,
  );
  const names = Object.fromEntries(Object.entries(lostServerErrors).map(([fn, e]) => [fn, e === 'none' ? e : e.name]));
  summary.p11KitClientErrorsWhileDown = { ...names, 'sign (async)': async };

  await server.start();
  // The client does not reconnect by itself: the same answer with the server back …
  const stillLost = errorOf(() => native.C_GetSlotList(true));
  // … until the module is finalised and initialised again.
  client.reinitialize();
  const back = client.findSlot(token.label);
  const fresh = native.C_OpenSession(back.id, CKF_RW_SESSION);
  native.C_CloseSession(fresh);

  expect({ ...names, 'sign (async)': async }).toEqual({
    sign: 'CKR_DEVICE_ERROR',
    'sign (async)': 'CKR_DEVICE_ERROR',
    C_GetSessionInfo: 'CKR_DEVICE_ERROR',
    C_OpenSession: 'CKR_DEVICE_ERROR',
    C_GetSlotList: 'CKR_DEVICE_ERROR',
    C_GetInfo: 'CKR_DEVICE_ERROR',
    C_GetTokenInfo: 'CKR_DEVICE_ERROR',
  });
  expect(stillLost === 'none' ? 'none' : stillLost.name).toBe('CKR_DEVICE_ERROR');
});

test("classify() maps what p11-kit-client answers outside any session (slot list, module info, opening a session) to 'device'", () => {
  // A session-independent call failing means the connection (the device), not one session, is
  // gone: the pool must trip its breaker and re-initialise the module, not replace sessions.
  const outsideSessions = ['C_OpenSession', 'C_GetSlotList', 'C_GetInfo', 'C_GetTokenInfo'];
  const mapped = Object.fromEntries(
    outsideSessions.map((fn) => {
      const error = lostServerErrors[fn];
      return [fn, error === undefined || error === 'none' ? 'no error captured' : `${error.name} → ${classify(error)}`];
    }),
  );
  expect(mapped).toEqual({
    C_OpenSession: 'CKR_DEVICE_ERROR → device',
    C_GetSlotList: 'CKR_DEVICE_ERROR → device',
    C_GetInfo: 'CKR_DEVICE_ERROR → device',
    C_GetTokenInfo: 'CKR_DEVICE_ERROR → device',
  });
});

test('the pool over p11-kit-client: server killed mid-load → fails fast; server back → recovers by itself; nothing lost', async () => {
  const pool = await SigningPool.open({
    module: client,
    token: token.label,
    key: { label: KEY_LABEL },
    pin: token.userPin,
    size: 4,
    probeIntervalMs: 50,
    timeoutMs: 5000,
    // p11-kit-client 0.24 can leave calls that were in flight when the server died waiting
    // forever (a lost wake-up in its socket reader; seen in about one run in five). The pool
    // may re-initialise under them after 1 s; their requests reject at their deadlines.
    abandonStuckCallsAfterMs: 1000,
  });
  const publicKey: KeyObject = createPublicKey({ key: pool.publicKeySpki, format: 'der', type: 'spki' });
  const counts = { issued: 0, resolved: 0, rejected: 0, invalid: 0 };
  const rejectedBy: Record<string, number> = {};
  const pending = new Set<Promise<unknown>>();
  const issue = (): Promise<{ ok: boolean; error?: unknown; ms: number }> => {
    const message = randomBytes(24);
    counts.issued++;
    const begin = performance.now();
    const tracked = pool.sign(createHash('sha256').update(message).digest()).then(
      (signature) => {
        counts.resolved++;
        if (!verifySignature('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)) counts.invalid++;
        return { ok: true, ms: performance.now() - begin };
      },
      (error: unknown) => {
        counts.rejected++;
        rejectedBy[kind(error)] = (rejectedBy[kind(error)] ?? 0) + 1;
        return { ok: false, error, ms: performance.now() - begin };
      },
    );
    pending.add(tracked);
    void tracked.then(() => pending.delete(tracked));
    return tracked;
  };

  let running = true;
  const callers = Array.from({ length: 16 }, async () => {
    while (running) {
      const outcome = await issue();
      if (!outcome.ok) await sleep(1); // a rejected caller yields before trying again
    }
  });
  try {
    const warmedUp = await within(10_000, () => counts.resolved >= 300);
    await server.kill();
    const killedAt = counts.issued;
    const breakerOpened = await within(3000, () => pool.stats().breaker === 'open');
    // While the server is down, every new request must be rejected at once.
    const whileDown: Array<{ ok: boolean; error?: unknown; ms: number }> = [];
    for (let i = 0; i < 50; i++) {
      whileDown.push(await issue());
      await sleep(2);
    }
    await server.start();
    const resolvedAtRestart = counts.resolved;
    const recovered = await within(8000, () => pool.stats().breaker === 'closed' && counts.resolved >= resolvedAtRestart + 300);
    running = false;
    await Promise.all(callers);
    const after = await Promise.all(Array.from({ length: 100 }, () => issue()));
    await within(10_000, () => pending.size === 0);
    const lost = counts.issued - counts.resolved - counts.rejected;
    const outcome = {
      warmedUp,
      breakerOpened,
      whileDownKinds: [...new Set(whileDown.map((o) => (o.ok ? 'resolved' : kind(o.error))))],
      whileDownSlowestMs: Math.ceil(Math.max(...whileDown.map((o) => o.ms))),
      recovered,
      afterRecoveryOk: after.filter((o) => o.ok).length,
      lost,
      invalidSignatures: counts.invalid,
      untypedRejections: Object.keys(rejectedBy).filter((k) => k.startsWith('untyped:')),
    };
    summary.pool = {
      ...counts,
      lost,
      rejectedBy,
      requestsBeforeKill: killedAt,
      serverStarts: server.starts,
      callsAbandoned: pool.stats().abandonedCalls,
      outcome,
    };

    expect(outcome).toEqual({
      warmedUp: true,
      breakerOpened: true,
      whileDownKinds: ['HsmUnavailableError'],
      whileDownSlowestMs: expect.any(Number),
      recovered: true,
      afterRecoveryOk: 100,
      lost: 0,
      invalidSignatures: 0,
      untypedRejections: [],
    });
    expect(outcome.whileDownSlowestMs).toBeLessThan(250); // fail fast: far below any deadline, with room for a loaded CI box
    for (const o of whileDown) expect((o.error as HsmUnavailableError).code).toBe('HSM_UNAVAILABLE');
  } finally {
    running = false;
    await Promise.all(callers);
    await pool.close({ timeoutMs: 1000 });
    if (!server.running) await server.start();
  }
});
