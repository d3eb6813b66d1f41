/**
 * Failure behaviour of the raw binding: every kind of bad argument is a TypeError that names
 * the function and the argument (and nothing reaches the module), module failures are
 * Pkcs11Errors of one exact shape from sync and async entry points alike, and a PIN never
 * shows up in an error.
 */
import * as util from 'util';

import { Pkcs11Error, rvName } from '../lib/errors';
import {
  C,
  Handle,
  expectPkcs11Error,
  expectRejectsPkcs11,
  expectThrowsPkcs11,
  expectTypeError,
  generateEcKeyPair,
  GeneratedPair,
  isNativeError,
  openTestModule,
  rejectionOf,
  TestModule,
  thrownBy,
  ulongArgMessage,
} from './support/binding-helpers';

const tm: TestModule = openTestModule();
const { p11, session, token } = tm;
afterAll(() => tm.close());

let ec: GeneratedPair;
beforeAll(() => {
  ec = generateEcKeyPair(p11, session, 'P-256');
});

const digest32 = Buffer.alloc(32, 1);
const BYTES = 'must be a Buffer, Uint8Array or ArrayBuffer';
const HUGE = 64 * 1024 * 1024 + 1;
function detached(length = 32): ArrayBuffer {
  const buffer = new ArrayBuffer(length);
  structuredClone(buffer, { transfer: [buffer] });
  expect(buffer.byteLength).toBe(0);
  return buffer;
}
/** The session can still sign, i.e. no operation was left active by a refused call. */
function sessionStillWorks(): void {
  expect(p11.signSync(session, C.CKM_ECDSA, ec.privateKey, digest32)).toHaveLength(64);
}
// Untyped access, to pass what TypeScript would refuse.
const raw = (): Record<string, (...args: unknown[]) => unknown> => p11 as unknown as Record<string, (...args: unknown[]) => unknown>;

describe('bad arguments: a TypeError naming the function and the argument', () => {
  const cases: Array<[string, () => unknown, string]> = [
    // wrong types
    ['session as a string', () => raw().C_SignInit('1', C.CKM_ECDSA, 1), ulongArgMessage('C_SignInit', 'session')],
    ['slot as a boolean', () => raw().C_OpenSession(true), ulongArgMessage('C_OpenSession', 'slotID')],
    ['flags as a string', () => raw().C_OpenSession(tm.slot, 'rw'), ulongArgMessage('C_OpenSession', 'flags')],
    ['tokenPresent as a number', () => raw().C_GetSlotList(1), "C_GetSlotList: argument 'tokenPresent' must be a boolean"],
    ['data as a number', () => raw().C_DigestUpdate(session, 42), `C_DigestUpdate: argument 'part' ${BYTES}`],
    ['data as a string', () => raw().signSync(session, C.CKM_ECDSA, 1, 'text'), `sign: argument 'data' ${BYTES}`],
    ['data as an array of numbers', () => raw().C_Encrypt(session, [1, 2]), `C_Encrypt: argument 'data' ${BYTES}`],
    ['data as a Uint16Array', () => raw().C_Digest(session, new Uint16Array(4)), `C_Digest: argument 'data' ${BYTES}`],
    ['data as a DataView', () => raw().C_Digest(session, new DataView(new ArrayBuffer(4))), `C_Digest: argument 'data' ${BYTES}`],
    ['mechanism as a string', () => raw().C_SignInit(session, 'CKM_ECDSA', 1), "C_SignInit: argument 'mechanism' must be a mechanism type or { mechanism, parameter }"],
    ['mechanism as an array', () => raw().C_DigestInit(session, [C.CKM_SHA256]), "C_DigestInit: argument 'mechanism' must be a mechanism type or { mechanism, parameter }"],
    ['mechanism without a type', () => raw().C_DigestInit(session, {}), "C_DigestInit: argument 'mechanism.mechanism' must be a mechanism type (non-negative integer)"],
    ['mechanism parameter as a string', () => raw().C_EncryptInit(session, { mechanism: C.CKM_AES_CBC_PAD, parameter: 'iv' }, 1), "C_EncryptInit: argument 'mechanism.parameter' must be a Buffer, a number or a parameter object"],
    ['a PSS field of the wrong type', () => raw().C_SignInit(session, { mechanism: C.CKM_SHA256_RSA_PKCS_PSS, parameter: { hashAlg: C.CKM_SHA256, mgf: 'mgf1', saltLen: 32 } }, 1), "C_SignInit: argument 'mechanism.parameter.mgf' must be a non-negative integer"],
    ['a structured parameter for a mechanism without one', () => raw().C_SignInit(session, { mechanism: C.CKM_ECDSA, parameter: { iv: digest32 } }, 1), "C_SignInit: argument 'mechanism.parameter' must be a Buffer: this mechanism has no structured parameter known to the binding"],
    ['a CTR counter block of the wrong size', () => raw().C_EncryptInit(session, { mechanism: C.CKM_AES_CTR, parameter: { counterBits: 32, counterBlock: Buffer.alloc(8) } }, 1), "C_EncryptInit: argument 'mechanism.parameter.counterBlock' must be exactly 16 bytes"],
    ['PIN as a number', () => raw().C_Login(session, C.CKU_USER, 1234), "C_Login: argument 'pin' must be a string or a Buffer"],
    ['label as a Buffer', () => raw().C_InitToken(tm.slot, 'so', Buffer.from('label')), "C_InitToken: argument 'label' must be a string"],
    ['template as an object', () => raw().C_GenerateKeyPair(session, C.CKM_EC_KEY_PAIR_GEN, {}, []), "C_GenerateKeyPair: argument 'publicKeyTemplate' must be an array of { type, value } attributes"],
    ['a bigint where a boolean belongs', () => raw().C_GenerateKey(session, C.CKM_AES_KEY_GEN, [{ type: C.CKA_TOKEN, value: 0n }]), "C_GenerateKey: argument 'template[0].value' must be a boolean"],
    ['maxCount out of range', () => raw().C_FindObjectsAsync(session, 0), "C_FindObjects: argument 'maxCount' must be an integer from 1 to 100000"],
    ['wrapping key as a float', () => raw().C_WrapKey(session, C.CKM_AES_KEY_WRAP, 1.5, 1), ulongArgMessage('C_WrapKey', 'wrappingKey')],
    ['mechanism type beyond 2^53', () => raw().C_GetMechanismInfo(tm.slot, 2 ** 53), ulongArgMessage('C_GetMechanismInfo', 'type')],
    // missing arguments
    ['no arguments at all', () => raw().signSync(), ulongArgMessage('sign', 'session')],
    ['no key', () => raw().sign(session, C.CKM_ECDSA), ulongArgMessage('sign', 'key')],
    ['no data', () => raw().signSync(session, C.CKM_ECDSA, 1), `sign: argument 'data' ${BYTES}`],
    ['no mechanism', () => raw().C_VerifyInit(session), "C_VerifyInit: argument 'mechanism' must be a mechanism type or { mechanism, parameter }"],
    ['no template', () => raw().C_CreateObject(session), "C_CreateObject: argument 'template' must be an array of { type, value } attributes"],
    ['no length', () => raw().C_GenerateRandom(session), ulongArgMessage('C_GenerateRandom', 'length')],
    ['no wrapped key', () => raw().C_UnwrapKey(session, C.CKM_AES_KEY_WRAP, 1), `C_UnwrapKey: argument 'wrappedKey' ${BYTES}`],
    ['no path', () => raw().load.call(new (p11.constructor as new () => object)()), "load: argument 'path' must be a string"],
    // Symbols
    ['a Symbol session', () => raw().C_CloseSession(Symbol('s')), ulongArgMessage('C_CloseSession', 'session')],
    ['Symbol data', () => raw().verifySync(session, C.CKM_ECDSA, 1, Symbol('d'), digest32), `verify: argument 'data' ${BYTES}`],
    ['a Symbol mechanism', () => raw().C_DigestInitAsync(session, Symbol('m')), "C_DigestInit: argument 'mechanism' must be a mechanism type or { mechanism, parameter }"],
    ['a Symbol attribute type', () => raw().C_CreateObject(session, [{ type: Symbol('t'), value: 1 }]), "C_CreateObject: argument 'template[0].type' must be an attribute type (non-negative integer)"],
    ['a Symbol attribute value', () => raw().C_CreateObject(session, [{ type: C.CKA_LABEL, value: Symbol('v') }]), "C_CreateObject: argument 'template[0].value' must be a Buffer, Uint8Array or string"],
    ['a Symbol PIN', () => raw().C_LoginAsync(session, C.CKU_USER, Symbol('pin')), "C_Login: argument 'pin' must be a string or a Buffer"],
  ];

  test.each(cases)('%s', (_, call, message) => {
    expectTypeError(thrownBy(call), message);
    sessionStillWorks();
  });

  test('promise variants throw their TypeErrors synchronously: no promise is created', () => {
    let returned: unknown = 'nothing';
    const error = thrownBy(() => {
      returned = p11.C_SignAsync('x' as unknown as number, digest32);
    });
    expectTypeError(error, ulongArgMessage('C_Sign', 'session'));
    expect(returned).toBe('nothing');
  });
});

describe('detached buffers', () => {
  const DETACHED = 'must be a Buffer, Uint8Array or ArrayBuffer that is not detached';
  test('as data, as a view on a detached buffer, in a template, a mechanism parameter and a parameter field', () => {
    expectTypeError(thrownBy(() => p11.signSync(session, C.CKM_ECDSA, ec.privateKey, detached())), `sign: argument 'data' ${DETACHED}`);
    const view = new Uint8Array(new ArrayBuffer(32));
    structuredClone(view.buffer, { transfer: [view.buffer] });
    expectTypeError(thrownBy(() => p11.sign(session, C.CKM_ECDSA, ec.privateKey, view)), `sign: argument 'data' ${DETACHED}`);
    expectTypeError(
      thrownBy(() => p11.C_CreateObject(session, [{ type: C.CKA_VALUE, value: detached() }])),
      `C_CreateObject: argument 'template[0].value' ${DETACHED}`,
    );
    expectTypeError(
      thrownBy(() => p11.C_EncryptInit(session, { mechanism: C.CKM_AES_CBC_PAD, parameter: detached(16) }, 1)),
      `C_EncryptInit: argument 'mechanism.parameter' ${DETACHED}`,
    );
    expectTypeError(
      thrownBy(() => p11.encrypt(session, { mechanism: C.CKM_AES_GCM, parameter: { iv: detached(12) } }, 1, Buffer.alloc(1))),
      `encrypt: argument 'mechanism.parameter.iv' ${DETACHED}`,
    );
    expectTypeError(
      thrownBy(() => p11.C_VerifyAsync(session, digest32, detached(64))),
      `C_Verify: argument 'signature' ${DETACHED}`,
    );
    // A detached PIN is refused too (the message keeps PIN errors generic).
    expectTypeError(thrownBy(() => p11.C_Login(session, C.CKU_USER, detached(8))), "C_Login: argument 'pin' must be a string or a Buffer");
    sessionStillWorks();
  });

  test('an empty but attached buffer is data (0 bytes), not an error', () => {
    expect(p11.digestSync(session, C.CKM_SHA256, new ArrayBuffer(0))).toEqual(p11.digestSync(session, C.CKM_SHA256, Buffer.alloc(0)));
  });
});

describe('inputs over the size limits', () => {
  test('more than 64 MiB: a TypeError naming the limit, before any copy reaches the module', async () => {
    const huge = Buffer.alloc(HUGE);
    const limit = 'must be at most 67108864 bytes long';
    expectTypeError(thrownBy(() => p11.signSync(session, C.CKM_ECDSA, ec.privateKey, huge)), `sign: argument 'data' ${limit}`);
    expectTypeError(thrownBy(() => p11.C_DigestUpdateAsync(session, huge)), `C_DigestUpdate: argument 'part' ${limit}`);
    expectTypeError(thrownBy(() => p11.C_CreateObject(session, [{ type: C.CKA_VALUE, value: huge }])), `C_CreateObject: argument 'template[0].value' ${limit}`);
    expectTypeError(
      thrownBy(() => p11.C_EncryptInit(session, { mechanism: C.CKM_AES_CBC_PAD, parameter: huge }, 1)),
      `C_EncryptInit: argument 'mechanism.parameter' ${limit}`,
    );
    // Exactly 64 MiB is accepted.
    expect(await p11.digest(session, C.CKM_SHA256, huge.subarray(0, HUGE - 1))).toHaveLength(32);
  });

  test('PINs over 4096 bytes', () => {
    expectTypeError(thrownBy(() => p11.C_Login(session, C.CKU_USER, 'p'.repeat(4097))), "C_Login: argument 'pin' must be at most 4096 bytes long");
    expectTypeError(thrownBy(() => p11.C_SetPIN(session, Buffer.alloc(4097), 'x')), "C_SetPIN: argument 'oldPin' must be at most 4096 bytes long");
  });
});

describe('objects with throwing getters', () => {
  // The getter's own exception propagates unchanged (the binding adds no TypeError of its
  // own), the process survives, and nothing reached the module.
  const boom = new RangeError('getter says no');
  const thrower = (): never => {
    throw boom;
  };
  const cases: Array<[string, () => unknown]> = [
    ['attribute type', () => p11.C_CreateObject(session, [Object.defineProperty({ value: 1 }, 'type', { get: thrower }) as never])],
    ['attribute value', () => p11.C_CreateObject(session, [Object.defineProperty({ type: C.CKA_LABEL }, 'value', { get: thrower }) as never])],
    ['template element', () => p11.C_CreateObject(session, Object.defineProperty([], 0, { get: thrower, enumerable: true }) as never)],
    ['nested template member', () => p11.C_GenerateKey(session, C.CKM_AES_KEY_GEN, [{ type: C.CKA_WRAP_TEMPLATE, value: [Object.defineProperty({ type: C.CKA_TOKEN }, 'value', { get: thrower }) as never] }])],
    ['mechanism type', () => p11.C_SignInit(session, Object.defineProperty({}, 'mechanism', { get: thrower }) as never, ec.privateKey)],
    ['mechanism parameter', () => p11.sign(session, Object.defineProperty({ mechanism: C.CKM_ECDSA }, 'parameter', { get: thrower }) as never, ec.privateKey, digest32)],
    ['a parameter field', () => p11.C_EncryptInit(session, { mechanism: C.CKM_AES_GCM, parameter: Object.defineProperty({}, 'iv', { get: thrower }) as never }, 1)],
    ['query type object', () => p11.C_GetAttributeValue(session, ec.publicKey, [Object.defineProperty({}, 'type', { get: thrower }) as never])],
    ['C_Initialize options', () => p11.C_Initialize(Object.defineProperty({}, 'flags', { get: thrower }) as never)],
  ];
  test.each(cases)('%s', (_, call) => {
    expect(thrownBy(call)).toBe(boom);
    sessionStillWorks();
  });

  test('a Proxy around an array is not an array to the binding', () => {
    const proxy = new Proxy([], { get: thrower });
    expectTypeError(thrownBy(() => p11.C_CreateObject(session, proxy)), "C_CreateObject: argument 'template' must be an array of { type, value } attributes");
  });
});

describe('Pkcs11Error', () => {
  test('shape: instanceof Pkcs11Error and Error, name CKR_…, numeric code, function, message with the hex code', () => {
    const error = thrownBy(() => p11.C_GetAttributeValue(session, 0x7ffffff0, [C.CKA_LABEL]));
    expect(error).toBeInstanceOf(Pkcs11Error);
    expect(error).toBeInstanceOf(Error);
    const e = error as Pkcs11Error;
    expect(e.name).toBe('CKR_OBJECT_HANDLE_INVALID');
    expect(e.code).toBe(0x82);
    expect(e.function).toBe('C_GetAttributeValue');
    expect(e.message).toBe('C_GetAttributeValue failed: CKR_OBJECT_HANDLE_INVALID (0x00000082)');
    expect(rvName(e.code)).toBe(e.name);
    expect(Pkcs11Error.is(e, 'CKR_OBJECT_HANDLE_INVALID')).toBe(true);
    expect(Pkcs11Error.is(e, C.CKR_OBJECT_HANDLE_INVALID)).toBe(true);
    expect(Pkcs11Error.is(e, 'CKR_OK')).toBe(false);
    expect(typeof e.stack).toBe('string');
    expect(e.stack).toContain('C_GetAttributeValue failed: CKR_OBJECT_HANDLE_INVALID (0x00000082)');
    expect(String(e)).toBe('CKR_OBJECT_HANDLE_INVALID: C_GetAttributeValue failed: CKR_OBJECT_HANDLE_INVALID (0x00000082)');
  });

  test('async rejections have the same shape, and are real rejections', async () => {
    const promise = p11.C_GetAttributeValueAsync(session, 0x7ffffff0, [C.CKA_LABEL]);
    // Created in Node's main realm, so checked by brand rather than by Jest's Promise.
    expect(util.types.isPromise(promise)).toBe(true);
    const error = await rejectionOf(promise);
    expect(error).toBeInstanceOf(Pkcs11Error);
    expect(error).toBeInstanceOf(Error);
    expectPkcs11Error(error, 'CKR_OBJECT_HANDLE_INVALID', 'C_GetAttributeValue');
  });

  test('errors the binding raises itself carry a CK_RV and a detail', () => {
    const p = new (p11.constructor as new () => typeof p11)();
    p.load(token.modulePath);
    expectThrowsPkcs11(() => p.C_GetInfo(), 'CKR_CRYPTOKI_NOT_INITIALIZED', 'C_GetInfo');
    p.close();
  });

  const key = (): Handle => ec.privateKey;
  const failing: Array<[string, () => unknown, () => Promise<unknown>, string, string]> = [
    ['invalid object handle', () => p11.C_DestroyObject(session, 0x7ffffff0), () => p11.C_DestroyObjectAsync(session, 0x7ffffff0), 'CKR_OBJECT_HANDLE_INVALID', 'C_DestroyObject'],
    // SoftHSM2 answers an unknown key handle with CKR_OBJECT_HANDLE_INVALID.
    ['invalid key for C_SignInit', () => p11.C_SignInit(session, C.CKM_ECDSA, 0x7ffffff0), () => p11.C_SignInitAsync(session, C.CKM_ECDSA, 0x7ffffff0), 'CKR_OBJECT_HANDLE_INVALID', 'C_SignInit'],
    ['a key of the wrong type', () => p11.signSync(session, C.CKM_SHA256_HMAC, key(), digest32), () => p11.sign(session, C.CKM_SHA256_HMAC, key(), digest32), 'CKR_KEY_TYPE_INCONSISTENT', 'sign'],
    ['a key without CKA_SIGN', () => p11.signSync(session, C.CKM_ECDSA, ec.publicKey, digest32), () => p11.sign(session, C.CKM_ECDSA, ec.publicKey, digest32), 'CKR_KEY_FUNCTION_NOT_PERMITTED', 'sign'],
    ['unknown mechanism', () => p11.digestSync(session, 0x7ffffff0, digest32), () => p11.digest(session, 0x7ffffff0, digest32), 'CKR_MECHANISM_INVALID', 'digest'],
    ['operation not initialised', () => p11.C_Encrypt(session, digest32), () => p11.C_EncryptAsync(session, digest32), 'CKR_OPERATION_NOT_INITIALIZED', 'C_Encrypt'],
    ['invalid slot', () => p11.C_OpenSession(0x7ffffff0), () => p11.C_OpenSessionAsync(0x7ffffff0), 'CKR_SLOT_ID_INVALID', 'C_OpenSession'],
    ['invalid session', () => p11.C_GenerateRandom(0x7ffffff0, 4), () => p11.C_GenerateRandomAsync(0x7ffffff0, 4), 'CKR_SESSION_HANDLE_INVALID', 'C_GenerateRandom'],
    ['inconsistent template', () => p11.C_GenerateKey(session, C.CKM_AES_KEY_GEN, [{ type: C.CKA_TOKEN, value: false }]), () => p11.C_GenerateKeyAsync(session, C.CKM_AES_KEY_GEN, [{ type: C.CKA_TOKEN, value: false }]), 'CKR_TEMPLATE_INCOMPLETE', 'C_GenerateKey'],
  ];
  test.each(failing)('sync and async fail alike: %s', async (_, sync, async, name, fn) => {
    const a = expectThrowsPkcs11(sync, name as never, fn);
    const b = await expectRejectsPkcs11(async(), name as never, fn);
    expect([b.name, b.code, b.function, b.message]).toEqual([a.name, a.code, a.function, a.message]);
    sessionStillWorks();
  });

  test('TypeErrors and plain Errors of the binding are not Pkcs11Errors', () => {
    const typeError = thrownBy(() => p11.C_GenerateRandom(session, -1));
    expect(isNativeError(typeError, 'TypeError')).toBe(true);
    expect(typeError).not.toBeInstanceOf(Pkcs11Error);
    const p = new (p11.constructor as new () => typeof p11)();
    const plain = thrownBy(() => p.C_GetInfo());
    expect(isNativeError(plain, 'Error')).toBe(true);
    expect(plain).not.toBeInstanceOf(Pkcs11Error);
  });
});

describe('PINs never appear in errors', () => {
  const SECRET = 'secret-pin-xyz';
  /** Every way an error gets printed or logged. */
  function renderings(error: unknown): string[] {
    const e = error as Error & Record<string, unknown>;
    return [
      String(e.message),
      String(e.stack),
      String(e),
      util.inspect(e, { depth: 5, showHidden: true }),
      JSON.stringify(Object.fromEntries(Object.getOwnPropertyNames(e).map((k) => [k, String(e[k])]))),
    ];
  }
  function expectNoSecret(error: unknown, secret = SECRET): void {
    for (const text of renderings(error)) expect(text).not.toContain(secret);
  }

  test('a wrong PIN, sync and async, as a string and as bytes', async () => {
    const s = p11.C_OpenSession(tm.slot, C.CKF_RW_SESSION);
    p11.C_Logout(s); // login state is shared: log the file's session out for this test
    try {
      const errors = [
        expectThrowsPkcs11(() => p11.C_Login(s, C.CKU_USER, SECRET), 'CKR_PIN_INCORRECT', 'C_Login'),
        await expectRejectsPkcs11(p11.C_LoginAsync(s, C.CKU_USER, SECRET), 'CKR_PIN_INCORRECT', 'C_Login'),
        expectThrowsPkcs11(() => p11.C_Login(s, C.CKU_SO, Buffer.from(SECRET)), 'CKR_PIN_INCORRECT', 'C_Login'),
      ];
      for (const error of errors) expectNoSecret(error);
    } finally {
      p11.C_Login(s, C.CKU_USER, token.userPin);
      p11.C_CloseSession(s);
    }
  });

  test('C_SetPIN, C_InitPIN and C_InitToken failures, and over-long PINs', async () => {
    expectNoSecret(expectThrowsPkcs11(() => p11.C_SetPIN(session, SECRET, 'new-pin-abc'), 'CKR_PIN_INCORRECT', 'C_SetPIN'));
    expectNoSecret(
      await expectRejectsPkcs11(p11.C_SetPINAsync(session, token.userPin, SECRET.repeat(30)), 'CKR_PIN_LEN_RANGE', 'C_SetPIN'),
    );
    expectNoSecret(expectThrowsPkcs11(() => p11.C_InitPIN(session, SECRET), 'CKR_USER_NOT_LOGGED_IN', 'C_InitPIN'));
    expectNoSecret(expectThrowsPkcs11(() => p11.C_InitToken(tm.slot, SECRET, 'label'), 'CKR_SESSION_EXISTS', 'C_InitToken'));
    const long = `${SECRET}-`.repeat(300);
    const error = thrownBy(() => p11.C_Login(session, C.CKU_USER, long));
    expectTypeError(error, "C_Login: argument 'pin' must be at most 4096 bytes long");
    expectNoSecret(error);
    // The application is still logged in with the real PIN after all that.
    const s = p11.C_OpenSession(tm.slot);
    expect(p11.C_GetSessionInfo(s).state).toBe(C.CKS_RO_USER_FUNCTIONS);
    p11.C_CloseSession(s);
  });
});
