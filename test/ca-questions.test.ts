/**
 * The answers in docs/pkcs11-for-cas.md, each shown on a real SoftHSM2 token.
 */
import { createHash, createPublicKey, verify as verifySignature } from 'crypto';

import {
  CKM_AES_KEY_WRAP_PAD,
  CKM_ECDSA,
  CKA_VALUE,
  generateKey,
  generateKeyPair,
  Module,
  Pkcs11Error,
  Session,
  SecretKey,
} from '../lib';
import { createTestToken, TestToken } from './support/softhsm';

describe('PKCS#11 for certificate authorities: the answers, demonstrated', () => {
  let token: TestToken;
  let module: Module;
  let session: Session;
  let wrappingKey: SecretKey;

  beforeAll(async () => {
    token = createTestToken();
    module = Module.load(token.modulePath);
    session = await module.findSlot(token.label).openSession();
    await session.login(token.userPin);
    wrappingKey = await generateKey(session, { algorithm: 'aes', bits: 256 }, { privateTemplate: { wrap: true, unwrap: true } });
  });

  afterAll(() => {
    module?.close();
    token?.cleanup();
  });

  const valueOf = (key: SecretKey) =>
    module.native.C_GetAttributeValue(session.handle, key.handle, [CKA_VALUE])[0];

  describe('Q1: CKA_SENSITIVE versus CKA_EXTRACTABLE', () => {
    test('sensitive and extractable: the value cannot be read, but the key can be wrapped out (backup)', async () => {
      const key = await generateKey(session, { algorithm: 'aes', bits: 128 }, { sensitive: true, extractable: true });
      expect(valueOf(key)).toMatchObject({ value: null, status: 'CKR_ATTRIBUTE_SENSITIVE' });
      const wrapped = await wrappingKey.wrap(CKM_AES_KEY_WRAP_PAD, key);
      expect(wrapped.length).toBeGreaterThanOrEqual(16 + 8);
    });

    test('not sensitive and extractable: the value is readable in clear, and can be wrapped', async () => {
      const key = await generateKey(session, { algorithm: 'aes', bits: 128 }, { sensitive: false, extractable: true });
      expect((valueOf(key).value as Buffer).length).toBe(16);
      expect((await wrappingKey.wrap(CKM_AES_KEY_WRAP_PAD, key)).length).toBeGreaterThanOrEqual(24);
    });

    test('not sensitive but not extractable: the standard counts unextractable values as unrevealable too', async () => {
      const key = await generateKey(session, { algorithm: 'aes', bits: 128 }, { sensitive: false, extractable: false });
      expect(valueOf(key)).toMatchObject({ value: null, status: 'CKR_ATTRIBUTE_SENSITIVE' });
      await expect(wrappingKey.wrap(CKM_AES_KEY_WRAP_PAD, key)).rejects.toMatchObject({
        name: 'CKR_KEY_UNEXTRACTABLE',
      });
    });

    test('sensitive and not extractable (the default, and the CA key setting): neither', async () => {
      const key = await generateKey(session, { algorithm: 'aes', bits: 128 });
      expect(valueOf(key)).toMatchObject({ value: null, status: 'CKR_ATTRIBUTE_SENSITIVE' });
      await expect(wrappingKey.wrap(CKM_AES_KEY_WRAP_PAD, key)).rejects.toBeInstanceOf(Pkcs11Error);
      // The protection is one-way: CKA_SENSITIVE cannot be turned off, nor CKA_EXTRACTABLE on.
      await expect(key.set({ sensitive: false })).rejects.toMatchObject({ name: 'CKR_ATTRIBUTE_READ_ONLY' });
      await expect(key.set({ extractable: true })).rejects.toMatchObject({ name: 'CKR_ATTRIBUTE_READ_ONLY' });
    });
  });

  describe('Q2: session objects versus token objects', () => {
    test('a session object disappears with its session; a token object outlives sessions and modules', async () => {
      const scratch = await module.findSlot(token.label).openSession();
      await generateKeyPair(scratch, { algorithm: 'ec', curve: 'P-256' }, { label: 'ephemeral', token: false });
      await generateKeyPair(scratch, { algorithm: 'ec', curve: 'P-256' }, { label: 'persistent' });
      expect(await session.find({ label: 'ephemeral' })).toHaveLength(2); // visible to the application's sessions…
      await scratch.close();
      expect(await session.find({ label: 'ephemeral' })).toHaveLength(0); // …and gone with the session
      expect(await session.find({ label: 'persistent' })).toHaveLength(2);

      // A new process would load the module afresh; finalising every user and loading again is the same.
      module.close();
      module = Module.load(token.modulePath);
      session = await module.findSlot(token.label).openSession();
      await session.login(token.userPin);
      expect(await session.find({ label: 'persistent', class: 'privateKey' })).toHaveLength(1);
      wrappingKey = await generateKey(session, { algorithm: 'aes', bits: 256 }, { privateTemplate: { wrap: true } });
    });
  });

  describe('Q3: "the CA signs a leaf certificate" in PKCS#11 calls', () => {
    test('C_SignInit + C_Sign over the digest of the to-be-signed bytes, by hand and in one hop, give valid signatures', async () => {
      const { privateKey, publicKey } = await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' }, { label: 'issuer' });
      const tbs = Buffer.from('the DER of a TBSCertificate');
      const digest = createHash('sha256').update(tbs).digest();
      module.native.C_SignInit(session.handle, CKM_ECDSA, privateKey.handle);
      const byHand = module.native.C_Sign(session.handle, digest);
      const oneHop = await privateKey.sign(CKM_ECDSA, digest);
      const key = createPublicKey({ key: await publicKey.spki(), format: 'der', type: 'spki' });
      for (const signature of [byHand, oneHop]) {
        expect(verifySignature('sha256', tbs, { key, dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
      }
    });
  });
});
