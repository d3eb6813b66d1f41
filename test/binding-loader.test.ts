/**
 * The raw binding's module lifecycle: load errors, C_GetFunctionList, C_Initialize /
 * C_Finalize bookkeeping when several PKCS11 objects (and worker threads) share one module,
 * close() with work in flight, and process exit with work in flight.
 *
 * Every test creates and closes its own PKCS11 objects, so each starts with the module
 * finalized (the token is shared by the file).
 */
import { execFileSync, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';

import {
  C,
  PKCS11,
  NativePKCS11,
  Pkcs11Error,
  addonPath,
  bytes,
  expectPkcs11Error,
  expectThrowsPkcs11,
  expectTypeError,
  findSlotByLabel,
  generateEcKeyPair,
  isNativeError,
  thrownBy,
} from './support/binding-helpers';
import { createTestToken, TestToken } from './support/softhsm';

let token: TestToken;
let tmp: string;
const open: NativePKCS11[] = [];

/** A new PKCS11 object, closed after the test whatever happens. */
function track(p11: NativePKCS11): NativePKCS11 {
  open.push(p11);
  return p11;
}
function loaded(): NativePKCS11 {
  const p11 = track(new PKCS11());
  p11.load(token.modulePath);
  return p11;
}
function initialized(): NativePKCS11 {
  const p11 = loaded();
  p11.C_Initialize();
  return p11;
}
function userSession(p11: NativePKCS11): { slot: number | bigint; session: number | bigint } {
  const slot = findSlotByLabel(p11, token.label);
  const session = p11.C_OpenSession(slot, C.CKF_RW_SESSION);
  try {
    p11.C_Login(session, C.CKU_USER, token.userPin);
  } catch (error) {
    // Login state is per application: another object of this process may have logged in.
    if (!(error instanceof Pkcs11Error && error.name === 'CKR_USER_ALREADY_LOGGED_IN')) throw error;
  }
  return { slot, session };
}
function ecdsaValid(key: crypto.KeyObject, message: Buffer, signature: Buffer): boolean {
  return crypto.verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature);
}
const sha256 = (data: Buffer): Buffer => crypto.createHash('sha256').update(data).digest();

beforeAll(() => {
  token = createTestToken();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pkcs11-napi-loader-'));
});
afterEach(() => {
  for (const p11 of open.splice(0)) p11.close();
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  token?.cleanup();
});

/** A shared library of the system that is certainly not a PKCS#11 module (zlib, else libm). */
function systemLibrary(): string {
  let listing = '';
  try {
    listing = execFileSync('ldconfig', ['-p'], { encoding: 'utf8' });
  } catch {
    listing = execFileSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' });
  }
  for (const name of ['libz.so.1', 'libm.so.6']) {
    const match = new RegExp(`^\\s*${name.replace(/\./g, '\\.')} \\(([^)]*)\\) => (\\S+)$`, 'm').exec(listing);
    if (match && (process.arch !== 'x64' || match[1].includes('x86-64')) && fs.existsSync(match[2])) return match[2];
  }
  throw new Error('neither libz.so.1 nor libm.so.6 is known to ldconfig');
}

describe('load()', () => {
  test('a missing file: an Error naming the path and the loader message; the object stays usable', () => {
    const p11 = track(new PKCS11());
    const missing = path.join(tmp, 'no-such-module.so');
    const error = thrownBy(() => p11.load(missing));
    expect(isNativeError(error, 'Error')).toBe(true);
    expect(error).not.toBeInstanceOf(Pkcs11Error);
    const message = (error as Error).message;
    expect(message.startsWith(`Cannot load PKCS#11 module '${missing}': `)).toBe(true);
    if (process.platform === 'linux') {
      expect(message).toBe(`Cannot load PKCS#11 module '${missing}': ${missing}: cannot open shared object file: No such file or directory`);
    }
    expect(p11.libraryPath).toBeNull();
    // A failed load leaves nothing behind: the same object loads the real module next.
    p11.load(token.modulePath);
    expect(p11.libraryPath).toBe(token.modulePath);
  });

  test('a file that is not a shared library: the loader says why', () => {
    const text = path.join(tmp, 'not-a-library.so');
    fs.writeFileSync(text, 'This is a plain text file, not an ELF shared object.\n'.repeat(8));
    const error = thrownBy(() => track(new PKCS11()).load(text));
    expect(isNativeError(error, 'Error')).toBe(true);
    const message = (error as Error).message;
    expect(message.startsWith(`Cannot load PKCS#11 module '${text}': `)).toBe(true);
    if (process.platform === 'linux') expect(message).toBe(`Cannot load PKCS#11 module '${text}': ${text}: invalid ELF header`);
  });

  test('a real shared library that is not a PKCS#11 module: exports neither entry point', () => {
    const library = systemLibrary();
    const p11 = track(new PKCS11());
    const error = thrownBy(() => p11.load(library));
    expect(isNativeError(error, 'Error')).toBe(true);
    expect((error as Error).message).toBe(
      `'${library}' is not a PKCS#11 module: it exports neither C_GetInterface nor C_GetFunctionList`,
    );
    expect(p11.libraryPath).toBeNull();
  });

  test('loading twice on one object is refused and leaves the first module in place', () => {
    const p11 = loaded();
    const error = thrownBy(() => p11.load(token.modulePath));
    expect(isNativeError(error, 'Error')).toBe(true);
    expect((error as Error).message).toBe('load: a module is already loaded; call close() first');
    expect(p11.libraryPath).toBe(token.modulePath);
    p11.C_Initialize();
    expect(p11.C_GetInfo().cryptokiVersion.major).toBeGreaterThanOrEqual(2);
    // close() makes room for another load on the same object.
    p11.close();
    expect(p11.libraryPath).toBeNull();
    p11.load(token.modulePath);
    expect(p11.libraryPath).toBe(token.modulePath);
  });

  test('argument errors: path and options are checked', () => {
    const p11 = track(new PKCS11());
    expectTypeError(thrownBy(() => (p11.load as (p: unknown) => void)(42)), "load: argument 'path' must be a string");
    expectTypeError(
      thrownBy(() => p11.load(token.modulePath, { deepBind: 'yes' as unknown as boolean })),
      "load: argument 'options.deepBind' must be a boolean",
    );
    expectTypeError(
      thrownBy(() => p11.load(token.modulePath, [] as unknown as object)),
      "load: argument 'options' must be an object",
    );
    expect(p11.libraryPath).toBeNull();
  });
});

describe('C_GetFunctionList()', () => {
  test('entryPoint says how the list was found; the version is the module\'s', () => {
    const p11 = loaded();
    // Available right after load, before C_Initialize.
    const list = p11.C_GetFunctionList();
    // Oracle: a module exporting C_GetInterface has that name in its dynamic string table.
    const exportsGetInterface = fs.readFileSync(token.modulePath).includes(Buffer.from('\0C_GetInterface\0'));
    expect(list.entryPoint).toBe(exportsGetInterface ? 'C_GetInterface' : 'C_GetFunctionList');
    p11.C_Initialize();
    expect(list.version).toEqual(p11.C_GetInfo().cryptokiVersion);
    expect(Object.keys(list).sort()).toEqual(['entryPoint', 'version']);
  });

  test('without a loaded module: an Error', () => {
    const error = thrownBy(() => track(new PKCS11()).C_GetFunctionList());
    expect(isNativeError(error, 'Error')).toBe(true);
    expect((error as Error).message).toBe('C_GetFunctionList: no PKCS#11 module is loaded');
  });
});

describe('C_Initialize / C_Finalize', () => {
  test('calls before C_Initialize: Pkcs11Error CKR_CRYPTOKI_NOT_INITIALIZED naming the function', () => {
    const p11 = loaded();
    expect(p11.initialized).toBe(false);
    expectThrowsPkcs11(() => p11.C_GetInfo(), 'CKR_CRYPTOKI_NOT_INITIALIZED', 'C_GetInfo');
    expectThrowsPkcs11(() => p11.C_GetSlotList(true), 'CKR_CRYPTOKI_NOT_INITIALIZED', 'C_GetSlotList');
    expectThrowsPkcs11(() => p11.C_OpenSession(0), 'CKR_CRYPTOKI_NOT_INITIALIZED', 'C_OpenSession');
    expectThrowsPkcs11(() => p11.C_Finalize(), 'CKR_CRYPTOKI_NOT_INITIALIZED', 'C_Finalize');
    // The promise variants refuse synchronously too (no promise is created).
    expectThrowsPkcs11(() => p11.C_OpenSessionAsync(0), 'CKR_CRYPTOKI_NOT_INITIALIZED', 'C_OpenSession');
    expectThrowsPkcs11(() => p11.sign(0, C.CKM_ECDSA, 0, Buffer.alloc(32)), 'CKR_CRYPTOKI_NOT_INITIALIZED', 'sign');
  });

  test('without a loaded module: plain Errors asking for load() first', () => {
    const p11 = track(new PKCS11());
    for (const [call, name] of [
      [() => p11.C_GetInfo(), 'C_GetInfo'],
      [() => p11.C_Initialize(), 'C_Initialize'],
    ] as const) {
      const error = thrownBy(call);
      expect(isNativeError(error, 'Error')).toBe(true);
      expect((error as Error).message).toBe(`${name}: no PKCS#11 module is loaded (call load(path) first)`);
    }
    expectThrowsPkcs11(() => p11.C_Finalize(), 'CKR_CRYPTOKI_NOT_INITIALIZED', 'C_Finalize');
    expect(p11.initialized).toBe(false);
    expect(p11.close()).toEqual({ drained: true });
    expectTypeError(
      thrownBy(() => p11.close({ timeoutMs: -1 })),
      "close: argument 'options.timeoutMs' must be a non-negative integer",
    );
  });

  test('C_Initialize twice on one object: CKR_CRYPTOKI_ALREADY_INITIALIZED, and it stays initialized', () => {
    const p11 = initialized();
    expectThrowsPkcs11(() => p11.C_Initialize(), 'CKR_CRYPTOKI_ALREADY_INITIALIZED', 'C_Initialize');
    expect(p11.initialized).toBe(true);
    expect(p11.C_GetInfo().manufacturerID.length).toBeGreaterThan(0);
    p11.C_Finalize();
    expect(p11.initialized).toBe(false);
    // The same object can initialize again after C_Finalize.
    p11.C_Initialize();
    expect(p11.C_GetSlotList(true)).toContain(findSlotByLabel(p11, token.label));
  });

  test('libraryParameters reach the module as pReserved: SoftHSM2 answers CKR_ARGUMENTS_BAD, null means none', () => {
    const p11 = loaded();
    // PKCS#11 says pReserved "should be NULL_PTR"; SoftHSM2 enforces it. An empty string is
    // still a parameter string (a non-NULL pReserved).
    for (const libraryParameters of ['configdir=/nonexistent', '']) {
      expectThrowsPkcs11(() => p11.C_Initialize({ libraryParameters }), 'CKR_ARGUMENTS_BAD', 'C_Initialize');
      expect(p11.initialized).toBe(false);
    }
    p11.C_Initialize({ libraryParameters: null });
    expect(p11.initialized).toBe(true);
    expect(p11.C_GetInfo().cryptokiVersion.major).toBeGreaterThanOrEqual(2);
  });

  test('flags: 0 (no OS locking; the binding serialises) and explicit CKF_ flags both work', async () => {
    const p11 = loaded();
    p11.C_Initialize({ flags: 0 });
    const { session } = userSession(p11);
    const pair = generateEcKeyPair(p11, session, 'P-256');
    // Concurrent async calls on one session are serialised by the binding, so all succeed.
    const messages = Array.from({ length: 24 }, (_, i) => bytes(40, i + 1));
    const signatures = await Promise.all(messages.map((m) => p11.sign(session, C.CKM_ECDSA, pair.privateKey, sha256(m))));
    signatures.forEach((signature, i) => expect(ecdsaValid(pair.publicKeyObject, messages[i], signature)).toBe(true));
    p11.close();

    const q = loaded();
    q.C_Initialize({ flags: C.CKF_OS_LOCKING_OK | C.CKF_LIBRARY_CANT_CREATE_OS_THREADS });
    expect(q.initialized).toBe(true);
    expect(q.C_GetSlotList(true)).toContain(findSlotByLabel(q, token.label));
  });

  test('locking: null until initialised; by default the module gets our spinning mutexes, and C_Finalize returns them', () => {
    const p11 = loaded();
    expect(p11.locking).toBeNull();
    p11.C_Initialize();
    const locking = p11.locking!;
    expect(locking).toEqual({ serialized: false, spinningMutexes: true, spinningMutexesLive: expect.any(Number) });
    // SoftHSM2 creates its mutexes through the functions it was given.
    expect(locking.spinningMutexesLive).toBeGreaterThan(0);
    p11.C_Finalize();
    expect(p11.locking).toBeNull();

    const q = loaded();
    q.C_Initialize({ spinningMutexes: false });
    expect(q.locking).toMatchObject({ serialized: false, spinningMutexes: false });
    expect(q.locking!.spinningMutexesLive).toBeLessThan(locking.spinningMutexesLive);
  });

  test('options are checked before anything reaches the module', () => {
    const p11 = loaded();
    expectTypeError(
      thrownBy(() => p11.C_Initialize({ flags: -1 })),
      "C_Initialize: argument 'options.flags' must be a non-negative integer (CKF_ flags)",
    );
    expectTypeError(
      thrownBy(() => p11.C_Initialize({ libraryParameters: 5 as unknown as string })),
      "C_Initialize: argument 'options.libraryParameters' must be a string",
    );
    expectTypeError(
      thrownBy(() => p11.C_Initialize({ spinningMutexes: 1 as unknown as boolean })),
      "C_Initialize: argument 'options.spinningMutexes' must be a boolean",
    );
    expectTypeError(thrownBy(() => p11.C_Initialize(5 as unknown as object)), "C_Initialize: argument 'options' must be an object");
    expect(p11.initialized).toBe(false);
  });

  test('two objects share one module; finalizing one leaves the other working; the last C_Finalize really finalizes', () => {
    const a = initialized();
    const b = initialized();
    expect(a.libraryPath).toBe(token.modulePath);
    expect(b.libraryPath).toBe(token.modulePath);
    const { slot, session: sessionA } = userSession(a);
    // One module, one application: B sees A's login and A's session.
    const sessionB = b.C_OpenSession(slot, C.CKF_RW_SESSION);
    expect(b.C_GetSessionInfo(sessionB).state).toBe(C.CKS_RW_USER_FUNCTIONS);
    expect(b.C_GetSessionInfo(sessionA).state).toBe(C.CKS_RW_USER_FUNCTIONS);
    const pair = generateEcKeyPair(b, sessionB, 'P-256');

    a.C_Finalize();
    expect(a.initialized).toBe(false);
    expectThrowsPkcs11(() => a.C_GetSessionInfo(sessionA), 'CKR_CRYPTOKI_NOT_INITIALIZED', 'C_GetSessionInfo');
    // The module itself was not finalized: B still sees both sessions, the login and the key.
    expect(b.C_GetSessionInfo(sessionA).state).toBe(C.CKS_RW_USER_FUNCTIONS);
    const digest = sha256(Buffer.from('still here'));
    expect(ecdsaValid(pair.publicKeyObject, Buffer.from('still here'), b.signSync(sessionB, C.CKM_ECDSA, pair.privateKey, digest))).toBe(true);

    b.C_Finalize();
    expect(b.initialized).toBe(false);

    // A third object must initialize before use, and then finds a module that was really
    // finalized: the old sessions are gone and nobody is logged in.
    const c = loaded();
    expectThrowsPkcs11(() => c.C_GetSessionInfo(sessionB), 'CKR_CRYPTOKI_NOT_INITIALIZED', 'C_GetSessionInfo');
    c.C_Initialize();
    expectThrowsPkcs11(() => c.C_GetSessionInfo(sessionA), 'CKR_SESSION_HANDLE_INVALID', 'C_GetSessionInfo');
    expectThrowsPkcs11(() => c.C_GetSessionInfo(sessionB), 'CKR_SESSION_HANDLE_INVALID', 'C_GetSessionInfo');
    const fresh = c.C_OpenSession(slot, C.CKF_RW_SESSION);
    expect(c.C_GetSessionInfo(fresh).state).toBe(C.CKS_RW_PUBLIC_SESSION);
  });
});

describe('receivers', () => {
  test('a PKCS#11 method called on anything but a PKCS11 object: TypeError naming the method', () => {
    const proto = PKCS11.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const receiver of [{}, null, undefined, Object.create(PKCS11.prototype), new Map()]) {
      expectTypeError(thrownBy(() => proto.C_GetInfo.call(receiver)), 'C_GetInfo must be called on a PKCS11 object');
    }
    expectTypeError(thrownBy(() => proto.C_SignAsync.call({}, 1, Buffer.alloc(1))), 'C_Sign must be called on a PKCS11 object');
    expectTypeError(thrownBy(() => proto.signSync.call({}, 1, 1, 1, Buffer.alloc(1))), 'sign must be called on a PKCS11 object');
    // The class's own methods are checked by V8's receiver check.
    for (const name of ['load', 'close', 'C_Initialize', 'C_Finalize', 'C_GetFunctionList']) {
      expectTypeError(thrownBy(() => proto[name].call({}, token.modulePath)), 'Illegal invocation');
    }
    expectTypeError(thrownBy(() => (PKCS11 as unknown as () => unknown)()), "Class constructors cannot be invoked without 'new'");
  });

  // The getters check their receiver's type tag like the methods (module_object.cc): a foreign
  // `this` is a TypeError, not node-addon-api's generic "Invalid argument".
  test('the libraryPath / initialized getters on a foreign receiver: TypeError', () => {
    for (const name of ['libraryPath', 'initialized']) {
      const getter = Object.getOwnPropertyDescriptor(PKCS11.prototype, name)!.get!;
      expectTypeError(thrownBy(() => getter.call({})), new RegExp(`\\b${name}\\b.*PKCS11 object`));
    }
  });
});

describe('worker threads', () => {
  const workerCode = `
    const { parentPort, workerData: w } = require('worker_threads');
    const addon = require(w.addon);
    const p = new addon.PKCS11();
    p.load(w.modulePath);
    p.C_Initialize();
    const session = p.C_OpenSession(w.slot, w.CKF_RW_SESSION);
    let login = 'CKR_OK';
    try { p.C_Login(session, w.CKU_USER, w.pin); } catch (e) { login = e.name; }
    const found = p.findObjectsSync(session, [{ type: w.CKA_LABEL, value: w.label }, { type: w.CKA_CLASS, value: w.CKO_PRIVATE_KEY }]);
    (async () => {
      const signatures = [];
      for (let i = 0; i < w.digests.length; i++) {
        signatures.push(i % 2 ? p.signSync(session, w.CKM_ECDSA, found[0], w.digests[i])
                              : await p.sign(session, w.CKM_ECDSA, found[0], w.digests[i]));
      }
      p.C_CloseSession(session);
      p.C_Finalize();
      const afterFinalize = p.initialized;
      p.close();
      parentPort.postMessage({ login, found, signatures, afterFinalize });
    })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
  `;

  test('4 workers load, initialize, sign and finalize while the main thread keeps signing', async () => {
    const main = initialized();
    const { slot, session } = userSession(main);
    const label = 'worker-shared-key';
    const pair = generateEcKeyPair(main, session, 'P-256', [{ type: C.CKA_SIGN, value: true }], label);

    type Reply = { login: string; found: Array<number | bigint>; signatures: Uint8Array[]; afterFinalize: boolean; error?: string };
    const messagesOf = (w: number): Buffer[] => Array.from({ length: 12 }, (_, i) => bytes(50, 1000 * (w + 1) + i));
    const workers = [0, 1, 2, 3].map((w) => {
      const worker = new Worker(workerCode, {
        eval: true,
        workerData: {
          addon: addonPath(),
          modulePath: token.modulePath,
          slot,
          pin: token.userPin,
          label,
          digests: messagesOf(w).map(sha256),
          CKF_RW_SESSION: C.CKF_RW_SESSION,
          CKU_USER: C.CKU_USER,
          CKA_LABEL: C.CKA_LABEL,
          CKA_CLASS: C.CKA_CLASS,
          CKO_PRIVATE_KEY: C.CKO_PRIVATE_KEY,
          CKM_ECDSA: C.CKM_ECDSA,
        },
      });
      return new Promise<{ reply: Reply; exitCode: number }>((resolve, reject) => {
        let reply: Reply | undefined;
        worker.on('message', (m: Reply) => (reply = m));
        worker.on('error', reject);
        worker.on('exit', (exitCode) => (reply ? resolve({ reply, exitCode }) : reject(new Error(`worker ${w} exited ${exitCode} without a reply`))));
      });
    });

    // The main thread signs concurrently until every worker is done.
    let done = false;
    const all = Promise.all(workers).finally(() => (done = true));
    const mainSigned: Array<[Buffer, Buffer]> = [];
    while (!done || mainSigned.length < 10) {
      const message = bytes(33, mainSigned.length + 7);
      mainSigned.push([message, await main.sign(session, C.CKM_ECDSA, pair.privateKey, sha256(message))]);
    }
    const results = await all;

    results.forEach(({ reply, exitCode }, w) => {
      expect(reply.error).toBeUndefined();
      expect(exitCode).toBe(0);
      // Login state belongs to the process, which the main thread already logged in.
      expect(reply.login).toBe('CKR_USER_ALREADY_LOGGED_IN');
      expect(reply.found).toEqual([pair.privateKey]);
      expect(reply.afterFinalize).toBe(false);
      const messages = messagesOf(w);
      expect(reply.signatures).toHaveLength(messages.length);
      reply.signatures.forEach((s, i) => expect(ecdsaValid(pair.publicKeyObject, messages[i], Buffer.from(s))).toBe(true));
    });
    for (const [message, signature] of mainSigned) expect(ecdsaValid(pair.publicKeyObject, message, signature)).toBe(true);

    // The workers' C_Finalize calls did not finalize the module under the main thread.
    expect(main.C_GetSessionInfo(session).state).toBe(C.CKS_RW_USER_FUNCTIONS);
    const last = Buffer.from('after the workers');
    expect(ecdsaValid(pair.publicKeyObject, last, main.signSync(session, C.CKM_ECDSA, pair.privateKey, sha256(last)))).toBe(true);
  });

  // A worker terminated while its calls are in flight: settling finished jobs on the dying
  // environment fails inside N-API (JS can no longer run); engine.cc SettleAll swallows that
  // instead of letting the exception escape the thread-safe-function callback, which would
  // abort the whole process. Run in a child process so a crash cannot take jest down.
  test('terminating a worker with 500 signs in flight leaves the process and the main thread working', () => {
    const workerCode = `
      const { parentPort, workerData: w } = require('worker_threads');
      const addon = require(w.addon);
      const p = new addon.PKCS11();
      p.load(w.modulePath);
      p.C_Initialize();
      const sessions = Array.from({ length: 500 }, () => p.C_OpenSession(w.slot));
      let done = 0;
      for (let i = 0; i < 500; i++) {
        p.sign(sessions[i], w.mechanism, w.key, Buffer.alloc(32, i & 255)).then(() => { if (++done === 10) parentPort.postMessage('busy'); }, () => {});
      }
    `;
    const child = spawnSync(
      process.execPath,
      [
        '-e',
        `
        const { Worker } = require('worker_threads');
        const addon = require(${JSON.stringify(addonPath())});
        const p = new addon.PKCS11();
        p.load(${JSON.stringify(token.modulePath)});
        p.C_Initialize();
        const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label === ${JSON.stringify(token.label)});
        const session = p.C_OpenSession(slot, ${C.CKF_RW_SESSION});
        p.C_Login(session, ${C.CKU_USER}, ${JSON.stringify(token.userPin)});
        const { privateKey } = p.C_GenerateKeyPair(session, ${C.CKM_RSA_PKCS_KEY_PAIR_GEN},
          [{ type: ${C.CKA_TOKEN}, value: false }, { type: ${C.CKA_MODULUS_BITS}, value: 2048 }],
          [{ type: ${C.CKA_TOKEN}, value: false }, { type: ${C.CKA_SIGN}, value: true }]);
        (async () => {
          for (let round = 0; round < 6; round++) {
            const worker = new Worker(${JSON.stringify(workerCode)}, { eval: true, workerData: {
              addon: ${JSON.stringify(addonPath())}, modulePath: ${JSON.stringify(token.modulePath)}, slot,
              mechanism: ${C.CKM_SHA256_RSA_PKCS}, key: privateKey } });
            await new Promise((resolve) => worker.once('message', resolve));
            await worker.terminate();
            const signature = await p.sign(session, ${C.CKM_SHA256_RSA_PKCS}, privateKey, Buffer.alloc(32));
            if (signature.length !== 256) throw new Error('bad signature');
          }
          p.close();
          process.stdout.write('ok');
        })();
        `,
      ],
      { env: { ...process.env, SOFTHSM2_CONF: token.conf }, encoding: 'utf8', timeout: 30_000 },
    );
    expect({ status: child.status, signal: child.signal, stdout: child.stdout, stderr: child.stderr }).toEqual({
      status: 0,
      signal: null,
      stdout: 'ok',
      stderr: '',
    });
  });
});

describe('work in flight', () => {
  test('close() with 2,000 async signs in flight: every promise settles, with a signature or CKR_CRYPTOKI_NOT_INITIALIZED', async () => {
    const p11 = initialized();
    const { slot, session } = userSession(p11);
    const pair = generateEcKeyPair(p11, session, 'P-256');
    // One session per call: PKCS#11 sessions are not for concurrent use (see the sessions tests).
    const sessions = Array.from({ length: 2000 }, () => p11.C_OpenSession(slot));
    const messages = sessions.map((_, i) => bytes(20, i + 1));
    const promises = messages.map((m, i) => p11.sign(sessions[i], C.CKM_ECDSA, pair.privateKey, sha256(m)));
    // The calls inside the module return within the default timeout: drained.
    expect(p11.close()).toEqual({ drained: true });
    expect(p11.initialized).toBe(false);
    expect(p11.libraryPath).toBeNull();

    const settled = await Promise.allSettled(promises);
    let fulfilled = 0;
    let rejected = 0;
    settled.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') {
        fulfilled++;
        expect(outcome.value).toHaveLength(64);
        expect(ecdsaValid(pair.publicKeyObject, messages[i], outcome.value)).toBe(true);
      } else {
        rejected++;
        expectPkcs11Error(
          outcome.reason,
          'CKR_CRYPTOKI_NOT_INITIALIZED',
          'sign',
          'the module was finalized before this call could run',
        );
      }
    });
    expect(fulfilled + rejected).toBe(2000);
    // close() returns as soon as the calls inside the module are done; the queue is refused.
    expect(rejected).toBeGreaterThan(0);

    // The module really was finalized (this was its only user): a reload starts from scratch.
    p11.load(token.modulePath);
    p11.C_Initialize();
    expectThrowsPkcs11(() => p11.C_GetSessionInfo(session), 'CKR_SESSION_HANDLE_INVALID', 'C_GetSessionInfo');
    expect(p11.C_GetSessionInfo(p11.C_OpenSession(slot)).state).toBe(C.CKS_RO_PUBLIC_SESSION);
  });

  /** Runs `body` in a child node process with the module initialized, a user session, and `privateKey`, `sessions` (N). */
  function runChild(body: string, options: { keyType?: 'ec' | 'rsa'; sessions?: number } = {}): ReturnType<typeof spawnSync> {
    const keyPair =
      options.keyType === 'rsa'
        ? `p.C_GenerateKeyPair(session, ${C.CKM_RSA_PKCS_KEY_PAIR_GEN},
             [{ type: ${C.CKA_TOKEN}, value: false }, { type: ${C.CKA_MODULUS_BITS}, value: 2048 }],
             [{ type: ${C.CKA_TOKEN}, value: false }, { type: ${C.CKA_SIGN}, value: true }])`
        : `p.C_GenerateKeyPair(session, ${C.CKM_EC_KEY_PAIR_GEN},
             [{ type: ${C.CKA_TOKEN}, value: false }, { type: ${C.CKA_EC_PARAMS}, value: Buffer.from('06082a8648ce3d030107', 'hex') }],
             [{ type: ${C.CKA_TOKEN}, value: false }, { type: ${C.CKA_SIGN}, value: true }])`;
    const prelude = `
      const addon = require(${JSON.stringify(addonPath())});
      const p = new addon.PKCS11();
      p.load(${JSON.stringify(token.modulePath)});
      p.C_Initialize();
      const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label === ${JSON.stringify(token.label)});
      const session = p.C_OpenSession(slot, ${C.CKF_RW_SESSION});
      p.C_Login(session, ${C.CKU_USER}, ${JSON.stringify(token.userPin)});
      const { privateKey } = ${keyPair};
      const sessions = Array.from({ length: ${options.sessions ?? 0} }, () => p.C_OpenSession(slot));
    `;
    return spawnSync(process.execPath, ['-e', prelude + body], {
      env: { ...process.env, SOFTHSM2_CONF: token.conf },
      encoding: 'utf8',
      timeout: 30_000,
    });
  }

  const exitOutcome = (child: ReturnType<typeof spawnSync>): object => ({ status: child.status, signal: child.signal, stderr: child.stderr });

  // process.exit() runs the C exit handlers (libsofthsm2's static destructors) while engine
  // threads may still be inside the module. native/loader/exit_barrier.cc registers a handler
  // after each load that stops new calls and waits for those inside. RSA-2048 signs keep the
  // threads inside C_Sign, which made the crash near certain before that barrier existed.
  test('process.exit(0) with 1,000 RSA signs in flight: exit code 0, no crash signal', () => {
    const queue = (then: string): string =>
      `for (let i = 0; i < 1000; i++) p.sign(sessions[i], ${C.CKM_SHA256_RSA_PKCS}, privateKey, Buffer.alloc(32, i & 255)).then(${then});`;
    // First an exit right after queueing; then exits once signatures are coming back, when the
    // engine threads are certainly busy inside C_Sign.
    const immediately = `${queue('() => {}')} process.exit(0);`;
    const whenBusy = `let done = 0; ${queue('() => { if (++done === 20) process.exit(0); }')}`;
    for (const body of [immediately, ...Array.from({ length: 7 }, () => whenBusy)]) {
      const child = runChild(body, { keyType: 'rsa', sessions: 1000 });
      expect(exitOutcome(child)).toEqual({ status: 0, signal: null, stderr: '' });
    }
  });

  test('pending signs keep the process alive until they settle; an idle module does not', () => {
    const busy = runChild(
      `let settled = 0;
       for (let i = 0; i < 200; i++) p.sign(sessions[i], ${C.CKM_ECDSA}, privateKey, Buffer.alloc(32, 1)).then((s) => { if (s.length === 64) settled++; });
       process.on('exit', () => process.stdout.write('settled ' + settled));`,
      { sessions: 200 },
    );
    expect({ status: busy.status, signal: busy.signal, stdout: busy.stdout, stderr: busy.stderr }).toEqual({
      status: 0,
      signal: null,
      stdout: 'settled 200',
      stderr: '',
    });
    // The engine's threads outlive this sign; they must not hold the event loop open (a hang
    // would end in spawnSync's timeout: status null, SIGTERM).
    const idle = runChild(`p.sign(session, ${C.CKM_ECDSA}, privateKey, Buffer.alloc(32, 1)).then((s) => process.stdout.write('signed ' + s.length));`);
    expect({ status: idle.status, signal: idle.signal, stdout: idle.stdout }).toEqual({ status: 0, signal: null, stdout: 'signed 64' });
  });
});
