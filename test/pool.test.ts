import { createPublicKey, verify as verifySignature, createHash } from 'crypto';

import {
  generateKeyPair,
  HsmUnavailableError,
  Module,
  Pkcs11Error,
  QueueFullError,
  RequestTimeoutError,
  SigningPool,
  PoolClosedError,
  Session,
} from '../lib';
import { ticketsOutstanding } from '../lib/pool/sign-sink';
import { createTestToken, TestToken } from './support/softhsm';

// CKM_ECDSA signs the SHA-256 digest it is given; node checks the same raw (r||s) signature
// over the message with 'sha256'. A pool that signed with another key, or returned garbage,
// fails here.
function verifiesDigest(spki: Buffer, message: Buffer, rawSignature: Buffer): boolean {
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  return verifySignature('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, rawSignature);
}

describe('SigningPool against SoftHSM2', () => {
  let token: TestToken;
  let module: Module;
  let session: Session;
  const messages = Array.from({ length: 16 }, (_, i) => Buffer.from(`message ${i}`));
  const digests = messages.map((m) => createHash('sha256').update(m).digest());

  beforeAll(async () => {
    token = createTestToken();
    module = Module.load(token.modulePath);
    session = await module.findSlot(token.label).openSession();
    await session.login(token.userPin);
    await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' }, { label: 'key-a' });
    await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' }, { label: 'key-b' });
    await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' }, { label: 'twin' });
    await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' }, { label: 'twin' });
  });

  afterAll(() => {
    module?.close();
    token?.cleanup();
  });

  test('1,000 concurrent requests through 4 sessions all complete and all verify', async () => {
    const pool = await SigningPool.open({ module, token: token.label, key: { label: 'key-a' }, pin: token.userPin, size: 4 });
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => pool.sign(digests[i % digests.length]).then((sig) => [i, sig] as const)),
    );
    expect(results).toHaveLength(1000);
    for (const [i, signature] of results) {
      expect(signature).toHaveLength(64);
      expect(verifiesDigest(pool.publicKeySpki, messages[i % messages.length], signature)).toBe(true);
    }
    const stats = pool.stats();
    expect(stats.done).toBe(1000);
    expect(stats.failed).toBe(0);
    expect(stats.sessions).toBeLessThanOrEqual(4);
    expect(stats.sessions).toBeGreaterThan(1);
    await pool.close();
    await expect(pool.sign(digests[0])).rejects.toBeInstanceOf(PoolClosedError);
  });

  test('a request the binding refuses rejects with its TypeError; the session stays in service, no ticket is left out', async () => {
    const pool = await SigningPool.open({ module, token: token.label, key: { label: 'key-a' }, pin: token.userPin, size: 1 });
    const refused = pool.sign('not bytes' as unknown as Buffer);
    const fine = pool.sign(digests[0]);
    await expect(refused).rejects.toThrow(new TypeError("signTo: argument 'data' must be a Buffer, Uint8Array or ArrayBuffer"));
    expect(verifiesDigest(pool.publicKeySpki, messages[0], await fine)).toBe(true);
    expect(pool.stats()).toMatchObject({ sessions: 1, done: 1, failed: 1, retried: 0 });
    expect(ticketsOutstanding()).toBe(0);
    await pool.close();
  });

  test('sessions open as requests wait for them, and stats() counts those being opened', async () => {
    const pool = await SigningPool.open({ module, token: token.label, key: { label: 'key-a' }, pin: token.userPin, size: 4 });
    expect(pool.stats()).toMatchObject({ sessions: 1, opening: 0, idle: 1 });
    // The first request takes the open session; each of the other three asks for one more.
    const signing = Promise.all(Array.from({ length: 4 }, (_, i) => pool.sign(digests[i])));
    expect(pool.stats()).toMatchObject({ sessions: 1, opening: 3, inFlight: 1, queued: 3 });
    const signatures = await signing;
    signatures.forEach((signature, i) => expect(verifiesDigest(pool.publicKeySpki, messages[i], signature)).toBe(true));
    // The first session may have served the queue before the others were ready; they still
    // join the pool once open.
    while (pool.stats().opening > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(pool.stats()).toMatchObject({ sessions: 4, opening: 0, idle: 4, inFlight: 0, queued: 0 });
    await pool.close();
  });

  test('a PKCS#11 URI selects the right key, and its signatures verify only with that key', async () => {
    const uri = `pkcs11:token=${token.label};object=key-b;type=private`;
    const poolB = await SigningPool.open({ module, token: uri, key: uri, pin: token.userPin, size: 2 });
    const poolA = await SigningPool.open({ module, token: token.label, key: { label: 'key-a' }, pin: token.userPin, size: 1 });
    const signature = await poolB.sign(digests[1]);
    expect(verifiesDigest(poolB.publicKeySpki, messages[1], signature)).toBe(true);
    expect(verifiesDigest(poolA.publicKeySpki, messages[1], signature)).toBe(false);
    expect(poolA.publicKeySpki.equals(poolB.publicKeySpki)).toBe(false);
    // Verify on the token too.
    expect(await poolB.verify(digests[1], signature)).toBe(true);
    expect(await poolA.verify(digests[1], signature)).toBe(false);
    await Promise.all([poolA.close(), poolB.close()]);
  });

  test('a locator matching no key, or several, is an error rather than "the first one"', async () => {
    await expect(
      SigningPool.open({ module, token: token.label, key: { label: 'absent' }, pin: token.userPin }),
    ).rejects.toThrow(/no private key with label 'absent'/);
    await expect(
      SigningPool.open({ module, token: token.label, key: { label: 'twin' }, pin: token.userPin }),
    ).rejects.toThrow(/more than one private key with label 'twin'/);
    await expect(SigningPool.open({ module, token: 'no-such-token', key: { label: 'key-a' } })).rejects.toThrow(
      /no token matches 'no-such-token'/,
    );
  });

  test('sessions closed behind the pool\'s back are replaced, logged in again, and no request is lost', async () => {
    const pool = await SigningPool.open({ module, token: token.label, key: { label: 'key-a' }, pin: token.userPin, size: 4 });
    const slot = module.findSlot(token.label);
    await Promise.all(Array.from({ length: 200 }, (_, i) => pool.sign(digests[i % digests.length])));
    expect(pool.stats().sessions).toBeGreaterThan(1);
    // Close every session of the application behind the pool's back (which also logs the token
    // out). It is done while no call is running: closing a session that another thread is using
    // is an application error the standard forbids, and SoftHSM2 crashes on it. Sessions lost in
    // the middle of calls are injected by the fault module in test/faults*.test.ts instead.
    module.native.C_CloseAllSessions(slot.id);
    const settled = await Promise.allSettled(
      Array.from({ length: 2000 }, (_, i) => pool.sign(digests[i % digests.length])),
    );
    expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
    settled.forEach((s, i) => {
      const signature = (s as PromiseFulfilledResult<Buffer>).value;
      expect(verifiesDigest(pool.publicKeySpki, messages[i % messages.length], signature)).toBe(true);
    });
    expect(pool.stats().retried).toBeGreaterThan(0);
    expect(pool.stats().failed).toBe(0);
    // The failed calls' answers came back through the binding's sink too: no ticket is left out.
    expect(ticketsOutstanding()).toBe(0);
    await pool.close();
    // Our own session was closed too; log in afresh for the tests after this one.
    session = await slot.openSession();
    await session.login(token.userPin);
  });

  test('past the queue limit requests reject at once with QueueFullError; the rest complete', async () => {
    const pool = await SigningPool.open({
      module,
      token: token.label,
      key: { label: 'key-a' },
      pin: token.userPin,
      size: 1,
      maxQueue: 10,
    });
    const settled = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => pool.sign(digests[i % 16])));
    const fulfilled = settled.filter((s) => s.status === 'fulfilled');
    const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    expect(fulfilled.length + rejected.length).toBe(200);
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) expect(r.reason).toBeInstanceOf(QueueFullError);
    expect(fulfilled.length).toBeGreaterThanOrEqual(11);
    expect(pool.stats().rejected).toBe(rejected.length);
    await pool.close();
  });

  test('requests past their deadline reject with RequestTimeoutError; none is left pending', async () => {
    const pool = await SigningPool.open({
      module,
      token: token.label,
      key: { label: 'key-a' },
      pin: token.userPin,
      size: 1,
      timeoutMs: 10,
    });
    const settled = await Promise.allSettled(Array.from({ length: 3000 }, (_, i) => pool.sign(digests[i % 16])));
    const timedOut = settled.filter((s) => s.status === 'rejected' && s.reason instanceof RequestTimeoutError);
    const other = settled.filter((s) => s.status === 'rejected' && !(s.reason instanceof RequestTimeoutError));
    expect(other).toEqual([]);
    expect(timedOut.length).toBeGreaterThan(0);
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') expect(verifiesDigest(pool.publicKeySpki, messages[i % 16], s.value)).toBe(true);
    });
    expect(pool.stats().timedOut).toBe(timedOut.length);
    await pool.close();
  });

  test('a wrong PIN fails opening the pool with CKR_PIN_INCORRECT from C_Login', async () => {
    const slot = module.findSlot(token.label);
    // Log the token out so the pool must log in itself.
    module.native.C_CloseAllSessions(slot.id);
    const attempt = SigningPool.open({ module, token: token.label, key: { label: 'key-a' }, pin: 'wrong-pin' });
    await expect(attempt).rejects.toBeInstanceOf(Pkcs11Error);
    await expect(attempt).rejects.toMatchObject({ name: 'CKR_PIN_INCORRECT', function: 'C_Login' });
    session = await slot.openSession();
    await session.login(token.userPin);
  });

  test('the pool signs as a Pkcs11Signer and reports what it knows of its key', async () => {
    const pool = await SigningPool.open({ module, token: token.label, key: { label: 'key-a' }, pin: token.userPin });
    const signer = pool.asSigner();
    expect(signer.keyType).toBe('ec');
    expect(signer.canSign).toBe(true);
    const signature = await signer.sign(0x1041 /* CKM_ECDSA */, digests[2]);
    expect(verifiesDigest(signer.publicKeySpki, messages[2], signature)).toBe(true);
    const stats = pool.stats();
    expect(stats.latencyMs.p50).toBeGreaterThan(0);
    expect(stats.breaker).toBe('closed');
    await pool.close();
  });

  test('HsmUnavailableError is a PoolError with a stable code', () => {
    const error = new HsmUnavailableError('C_Sign returned CKR_DEVICE_REMOVED');
    expect(error.code).toBe('HSM_UNAVAILABLE');
    expect(error.message).toMatch(/CKR_DEVICE_REMOVED/);
  });
});
