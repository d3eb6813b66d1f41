import { createHash, createPublicKey, verify as verifySignature } from 'crypto';

import {
  CKM_AES_GCM,
  CKM_ECDSA,
  CKM_EDDSA,
  CKM_SHA256_RSA_PKCS,
  generateKey,
  generateKeyPair,
  Mechanisms,
  Module,
  parsePkcs11Uri,
  Pkcs11Error,
  PrivateKey,
  PublicKey,
  Session,
  SessionClosedError,
  toAttributes,
} from '../lib';
import { createTestToken, TestToken } from './support/softhsm';

describe('typed layer against SoftHSM2', () => {
  let token: TestToken;
  let module: Module;
  let session: Session;

  beforeAll(async () => {
    token = createTestToken();
    module = Module.load(token.modulePath);
    session = await module.findSlot(token.label).openSession();
    await session.login(token.userPin);
  });

  afterAll(() => {
    module?.close();
    token?.cleanup();
  });

  test('module, slot and token information', () => {
    expect(module.info().manufacturerID).toBe('SoftHSM');
    const slot = module.findSlot(token.label);
    expect(slot.tokenInfo().label).toBe(token.label);
    const ecdsa = slot.mechanisms().find((m) => m.type === CKM_ECDSA);
    expect(ecdsa?.name).toBe('CKM_ECDSA');
    expect(Number(ecdsa?.info.maxKeySize)).toBeGreaterThanOrEqual(256);
    expect(slot.uri()).toMatch(new RegExp(`^pkcs11:token=${token.label};manufacturer=SoftHSM%20project;serial=`));
    expect(module.findSlot(slot.uri()).id).toBe(slot.id);
  });

  test('login is idempotent: CKR_USER_ALREADY_LOGGED_IN counts as success', async () => {
    await expect(session.login(token.userPin)).resolves.toBeUndefined();
  });

  test.each(['P-256', 'P-384', 'P-521'] as const)('EC %s key pair: safe defaults, shared CKA_ID, SPKI, and signatures node:crypto verifies', async (curve) => {
    const { privateKey, publicKey, id } = await generateKeyPair(session, { algorithm: 'ec', curve });
    const attributes = await privateKey.get(['sensitive', 'extractable', 'private', 'token', 'sign', 'id', 'alwaysSensitive', 'neverExtractable']);
    expect(attributes).toEqual({
      sensitive: true,
      extractable: false,
      private: true,
      token: false,
      sign: true,
      id,
      alwaysSensitive: true,
      neverExtractable: true,
    });
    expect((await publicKey.get(['id'])).id).toEqual(id);
    const spki = await publicKey.spki();
    const message = Buffer.from(`message for ${curve}`);
    const digest = createHash('sha256').update(message).digest();
    const signature = await privateKey.sign(Mechanisms.ecdsa(), digest);
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    expect(verifySignature('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
    expect(await publicKey.verify(CKM_ECDSA, digest, signature)).toBe(true);
  });

  test.each([2048, 3072, 4096] as const)('RSA-%i key pair signs PKCS#1 v1.5 and PSS', async (modulusBits) => {
    const { privateKey, publicKey } = await generateKeyPair(session, { algorithm: 'rsa', modulusBits });
    const key = createPublicKey({ key: await publicKey.spki(), format: 'der', type: 'spki' });
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(modulusBits);
    const message = Buffer.from('rsa message');
    const pkcs1 = await privateKey.sign(CKM_SHA256_RSA_PKCS, message);
    expect(verifySignature('sha256', message, key, pkcs1)).toBe(true);
    const pss = await privateKey.sign(Mechanisms.rsaPssWith('sha256'), message);
    expect(
      verifySignature('sha256', message, { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 }, pss),
    ).toBe(true);
  });

  test('Ed25519 key pair (when the token offers CKM_EDDSA)', async () => {
    const slot = module.findSlot(token.label);
    if (!slot.hasMechanism(CKM_EDDSA)) {
      // The mechanism list decides, never the module's name.
      expect(slot.mechanisms().some((m) => m.type === CKM_EDDSA)).toBe(false);
      return;
    }
    const { privateKey, publicKey } = await generateKeyPair(session, { algorithm: 'ed25519' });
    const key = createPublicKey({ key: await publicKey.spki(), format: 'der', type: 'spki' });
    expect(key.asymmetricKeyType).toBe('ed25519');
    const message = Buffer.from('ed25519 message');
    const signature = await privateKey.sign(Mechanisms.eddsa(), message);
    expect(verifySignature(null, message, key, signature)).toBe(true);
  });

  test('AES key: sensitive, non-extractable, and GCM round trip', async () => {
    const aes = await generateKey(session, { algorithm: 'aes', bits: 256 });
    expect(await aes.get(['sensitive', 'extractable', 'valueLen', 'keyType'])).toEqual({
      sensitive: true,
      extractable: false,
      valueLen: 32,
      keyType: 'aes',
    });
    const iv = Buffer.alloc(12, 7);
    const plaintext = Buffer.from('secret data');
    const sealed = await aes.encrypt({ mechanism: CKM_AES_GCM, parameter: { iv, aad: Buffer.from('aad') } }, plaintext);
    expect(sealed.length).toBe(plaintext.length + 16);
    expect(await aes.decrypt(Mechanisms.aesGcm(iv, Buffer.from('aad')), sealed)).toEqual(plaintext);
    // Reading the value of a sensitive key: left out, not an exception that loses the rest.
    expect(await aes.get(['value', 'valueLen'])).toEqual({ valueLen: 32 });
  });

  test('a label makes token objects; find, findOne and URIs select them exactly', async () => {
    const pair = await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' }, { label: 'typed-ca' });
    expect(await pair.privateKey.get(['token', 'label'])).toEqual({ token: true, label: 'typed-ca' });
    const found = await session.findOne({ class: 'privateKey', label: 'typed-ca' });
    expect(found).toBeInstanceOf(PrivateKey);
    expect(found.handle).toBe(pair.privateKey.handle);
    const uri = await found.uri();
    const parsed = parsePkcs11Uri(uri);
    expect(parsed.path).toMatchObject({ token: token.label, object: 'typed-ca', type: 'private', id: pair.id });
    expect(await session.find({ label: 'typed-ca' })).toHaveLength(2);
    await expect(session.findOne({ label: 'typed-ca' })).rejects.toThrow(/more than one object matches/);
    await expect(session.findOne({ label: 'absent' })).rejects.toThrow(/no object matches/);
    const publicKey = await session.findOne({ class: 'publicKey', id: pair.id });
    expect(publicKey).toBeInstanceOf(PublicKey);
  });

  test('templates are checked at run time with errors naming the attribute', () => {
    expect(() => toAttributes({ sign: 'yes' as unknown as boolean })).toThrow('template.sign must be a boolean (got string)');
    expect(() => toAttributes({ class: 'nonsense' as never })).toThrow(/template.class must be one of data, certificate/);
    expect(() => toAttributes({ modulusBits: -1 })).toThrow('template.modulusBits must be a non-negative integer');
    expect(() => toAttributes({ bogus: 1 } as never)).toThrow('template.bogus is not a known attribute name');
    expect(() => toAttributes({ wrapTemplate: { sign: 1 as never } })).toThrow('template.wrapTemplate.sign must be a boolean');
    expect(toAttributes({ class: 'privateKey', label: 'x', id: Buffer.from([1]) })).toEqual([
      { type: 0, value: 3 },
      { type: 3, value: 'x' },
      { type: 0x102, value: Buffer.from([1]) },
    ]);
  });

  test('explicit opt-outs of the defaults are honoured', async () => {
    const { privateKey } = await generateKeyPair(
      session,
      { algorithm: 'ec', curve: 'P-256' },
      { extractable: true, sensitive: false },
    );
    expect(await privateKey.get(['sensitive', 'extractable'])).toEqual({ sensitive: false, extractable: true });
  });

  test('a closed session makes its objects fail with SessionClosedError', async () => {
    const other = await module.findSlot(token.label).openSession();
    const { privateKey } = await generateKeyPair(other, { algorithm: 'ec', curve: 'P-256' });
    await other.close();
    expect(other.isClosed).toBe(true);
    await expect(privateKey.get(['sign'])).rejects.toThrow(SessionClosedError);
    await expect(privateKey.sign(CKM_ECDSA, Buffer.alloc(32))).rejects.toThrow(/the session is closed: closed by the application/);
  });

  test('a session lost in the token is reported as closed once the token says so', async () => {
    const other = await module.findSlot(token.label).openSession();
    module.native.C_CloseSession(other.handle); // behind the typed layer's back
    await expect(other.find({})).rejects.toMatchObject({ name: 'CKR_SESSION_HANDLE_INVALID' });
    expect(other.isClosed).toBe(true);
    await expect(other.find({})).rejects.toThrow(SessionClosedError);
  });

  test('closing the module closes its sessions; later use fails clearly', async () => {
    const second = Module.load(token.modulePath);
    const other = await second.findSlot(token.label).openSession();
    second.close();
    expect(other.isClosed).toBe(true);
    await expect(other.random(8)).rejects.toThrow(/its module was closed/);
    expect(() => second.info()).toThrow(/is closed/);
    // The first module is unaffected: the process-wide initialisation is shared.
    expect(module.info().manufacturerID).toBe('SoftHSM');
    expect((await session.random(16)).length).toBe(16);
  });

  test('PKCS#11 failures surface as Pkcs11Error with name, code and function', async () => {
    const error = await session.login('not-the-pin', 'so').catch((e: unknown) => e);
    // Already logged in as user: SoftHSM2 refuses an SO login on the same token.
    expect(error).toBeInstanceOf(Pkcs11Error);
    expect((error as Pkcs11Error).function).toBe('C_Login');
    expect(typeof (error as Pkcs11Error).code).toBe('number');
  });
});
