/**
 * Cryptography through the raw binding on a fresh SoftHSM2 token, every result checked against
 * node:crypto: signatures (ECDSA P-256/P-384, RSA PKCS#1 v1.5 and PSS, Ed25519) by every entry
 * point, AES-CBC-PAD / AES-GCM, RSA-OAEP, digests, AES key wrap, ECDH, random numbers, and the
 * binding's secure defaults for generated keys. Tests needing a mechanism the token does not
 * list are skipped (C_GetMechanismList).
 */
import * as crypto from 'crypto';
import * as zlib from 'zlib';

import {
  Attribute,
  C,
  GeneratedPair,
  Handle,
  bytes,
  expectRejectsPkcs11,
  expectThrowsPkcs11,
  expectTypeError,
  generateAesKey,
  generateEcKeyPair,
  generateEd25519KeyPair,
  generateRsaKeyPair,
  openTestModule,
  TestModule,
  testIfMechanism,
  thrownBy,
  valuesOf,
} from './support/binding-helpers';
import type { Mechanism } from '../lib/native/types';

const tm: TestModule = openTestModule();
const { p11, session } = tm;
afterAll(() => tm.close());

const hash = (algorithm: string, data: Buffer): Buffer => crypto.createHash(algorithm).update(data).digest();
/** The same bytes with one bit flipped. */
function corrupt(signature: Buffer): Buffer {
  const copy = Buffer.from(signature);
  copy[copy.length >> 1] ^= 0x01;
  return copy;
}
/** Splits into parts including an empty one, so empty updates are exercised too. */
function parts(data: Buffer): Buffer[] {
  const a = Math.floor(data.length / 3);
  return [data.subarray(0, a), Buffer.alloc(0), data.subarray(a, 2 * a), data.subarray(2 * a)];
}
/** An AES-256 key whose value the test knows (sensitive: false, extractable: true). */
function knownAesKey(extra: Attribute[] = []): { key: Handle; value: Buffer } {
  const key = generateAesKey(p11, session, [
    { type: C.CKA_SENSITIVE, value: false },
    { type: C.CKA_EXTRACTABLE, value: true },
    ...extra,
  ]);
  const [value] = p11.C_GetAttributeValue(session, key, [C.CKA_VALUE]);
  expect(value.status).toBeUndefined();
  return { key, value: value.value as Buffer };
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

const keys: Partial<Record<'p256' | 'p384' | 'rsa' | 'ed25519', GeneratedPair>> = {};
beforeAll(() => {
  keys.p256 = generateEcKeyPair(p11, session, 'P-256');
  keys.p384 = generateEcKeyPair(p11, session, 'P-384');
  keys.rsa = generateRsaKeyPair(p11, session, 2048);
  if (tm.has(C.CKM_EC_EDWARDS_KEY_PAIR_GEN)) keys.ed25519 = generateEd25519KeyPair(p11, session);
});

interface SignCase {
  title: string;
  requires: number[];
  key: keyof typeof keys;
  mechanism: Mechanism;
  /** What the token is given for `data` (a digest for raw ECDSA). */
  input(data: Buffer): Buffer;
  nodeVerify(key: crypto.KeyObject, data: Buffer, signature: Buffer): boolean;
  length: number;
  /** Same signature for the same data every time (RSA PKCS#1 v1.5, EdDSA). */
  deterministic: boolean;
  /** SoftHSM2 signs this mechanism in parts. */
  multiPart: boolean;
}

const p1363 = (digest: string) => (key: crypto.KeyObject, data: Buffer, signature: Buffer): boolean =>
  crypto.verify(digest, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
const PSS = { hashAlg: C.CKM_SHA256, mgf: C.CKG_MGF1_SHA256, saltLen: 32 };

const SIGN_CASES: SignCase[] = [
  {
    title: 'ECDSA P-256 (CKM_ECDSA on a SHA-256 digest)',
    requires: [C.CKM_EC_KEY_PAIR_GEN, C.CKM_ECDSA],
    key: 'p256',
    mechanism: C.CKM_ECDSA,
    input: (d) => hash('sha256', d),
    nodeVerify: p1363('sha256'),
    length: 64,
    deterministic: false,
    multiPart: false,
  },
  {
    title: 'ECDSA P-384 (CKM_ECDSA on a SHA-384 digest)',
    requires: [C.CKM_EC_KEY_PAIR_GEN, C.CKM_ECDSA],
    key: 'p384',
    mechanism: { mechanism: C.CKM_ECDSA },
    input: (d) => hash('sha384', d),
    nodeVerify: p1363('sha384'),
    length: 96,
    deterministic: false,
    multiPart: false,
  },
  {
    title: 'ECDSA P-256 with SHA-256 in the token (CKM_ECDSA_SHA256)',
    requires: [C.CKM_EC_KEY_PAIR_GEN, C.CKM_ECDSA_SHA256],
    key: 'p256',
    mechanism: C.CKM_ECDSA_SHA256,
    input: (d) => d,
    nodeVerify: p1363('sha256'),
    length: 64,
    deterministic: false,
    multiPart: true,
  },
  {
    title: 'RSA-2048 PKCS#1 v1.5 (CKM_SHA256_RSA_PKCS)',
    requires: [C.CKM_RSA_PKCS_KEY_PAIR_GEN, C.CKM_SHA256_RSA_PKCS],
    key: 'rsa',
    mechanism: C.CKM_SHA256_RSA_PKCS,
    input: (d) => d,
    nodeVerify: (key, data, signature) => crypto.verify('sha256', data, key, signature),
    length: 256,
    deterministic: true,
    multiPart: true,
  },
  {
    title: 'RSA-2048 PSS (CKM_SHA256_RSA_PKCS_PSS, MGF1-SHA256, 32-byte salt)',
    requires: [C.CKM_RSA_PKCS_KEY_PAIR_GEN, C.CKM_SHA256_RSA_PKCS_PSS],
    key: 'rsa',
    mechanism: { mechanism: C.CKM_SHA256_RSA_PKCS_PSS, parameter: PSS },
    input: (d) => d,
    nodeVerify: (key, data, signature) =>
      crypto.verify('sha256', data, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature),
    length: 256,
    deterministic: false,
    multiPart: true,
  },
  {
    title: 'Ed25519 (CKM_EDDSA)',
    requires: [C.CKM_EC_EDWARDS_KEY_PAIR_GEN, C.CKM_EDDSA],
    key: 'ed25519',
    mechanism: C.CKM_EDDSA,
    input: (d) => d,
    nodeVerify: (key, data, signature) => crypto.verify(null, data, key, signature),
    length: 64,
    deterministic: true,
    multiPart: false,
  },
];

describe.each(SIGN_CASES)('$title', (c) => {
  const run = testIfMechanism(tm, ...c.requires);
  const data = bytes(100, c.title.length);
  const pair = (): GeneratedPair => keys[c.key]!;
  const valid = (signature: Buffer, message = data): void => {
    expect(Buffer.isBuffer(signature)).toBe(true);
    expect(signature).toHaveLength(c.length);
    expect(c.nodeVerify(pair().publicKeyObject, message, signature)).toBe(true);
  };

  run('C_SignInit + C_Sign, C_SignInitAsync + C_SignAsync, sign and signSync: all valid for node:crypto', async () => {
    const { privateKey } = pair();
    p11.C_SignInit(session, c.mechanism, privateKey);
    const sync = p11.C_Sign(session, c.input(data));
    await p11.C_SignInitAsync(session, c.mechanism, privateKey);
    const async = await p11.C_SignAsync(session, c.input(data));
    const oneHop = await p11.sign(session, c.mechanism, privateKey, c.input(data));
    const oneHopSync = p11.signSync(session, c.mechanism, privateKey, c.input(data));
    for (const signature of [sync, async, oneHop, oneHopSync]) valid(signature);
    if (c.deterministic) {
      expect(async).toEqual(sync);
      expect(oneHop).toEqual(sync);
      expect(oneHopSync).toEqual(sync);
    }
  });

  run("the binding's verify: true for every signature, false for a corrupted or truncated one", async () => {
    const { privateKey, publicKey } = pair();
    const signature = p11.signSync(session, c.mechanism, privateKey, c.input(data));
    p11.C_VerifyInit(session, c.mechanism, publicKey);
    expect(p11.C_Verify(session, c.input(data), signature)).toBe(true);
    await p11.C_VerifyInitAsync(session, c.mechanism, publicKey);
    expect(await p11.C_VerifyAsync(session, c.input(data), signature)).toBe(true);
    expect(await p11.verify(session, c.mechanism, publicKey, c.input(data), signature)).toBe(true);
    expect(p11.verifySync(session, c.mechanism, publicKey, c.input(data), signature)).toBe(true);

    expect(p11.verifySync(session, c.mechanism, publicKey, c.input(data), corrupt(signature))).toBe(false);
    expect(await p11.verify(session, c.mechanism, publicKey, c.input(data), corrupt(signature))).toBe(false);
    // CKR_SIGNATURE_LEN_RANGE is a "no" too.
    expect(p11.verifySync(session, c.mechanism, publicKey, c.input(data), signature.subarray(1))).toBe(false);
    expect(p11.verifySync(session, c.mechanism, publicKey, c.input(bytes(100, 999)), signature)).toBe(false);
    // A node:crypto check of the corruption itself, so `false` above means what it says.
    expect(c.nodeVerify(pair().publicKeyObject, data, corrupt(signature))).toBe(false);
  });

  if (c.input(data) === data) {
    // The token hashes (or, for EdDSA, takes the message): 0 bytes of data is a real message.
    run('signing 0 bytes works (no CKR_ARGUMENTS_BAD) and leaves the session usable', async () => {
      const { privateKey, publicKey, publicKeyObject } = pair();
      const empty = Buffer.alloc(0);
      p11.C_SignInit(session, c.mechanism, privateKey);
      const viaSign = p11.C_Sign(session, empty);
      const viaOneHop = await p11.sign(session, c.mechanism, privateKey, new Uint8Array(0));
      for (const signature of [viaSign, viaOneHop]) expect(c.nodeVerify(publicKeyObject, empty, signature)).toBe(true);
      expect(p11.verifySync(session, c.mechanism, publicKey, new ArrayBuffer(0), viaSign)).toBe(true);
      // No operation was left behind: the session goes on with other work.
      expect(p11.digestSync(session, C.CKM_SHA256, Buffer.from('next'))).toEqual(hash('sha256', Buffer.from('next')));
      valid(p11.signSync(session, c.mechanism, privateKey, data));
    });
  }

  if (c.multiPart) {
    run('multi-part C_SignUpdate / C_SignFinal and C_VerifyUpdate / C_VerifyFinal', async () => {
      const { privateKey, publicKey } = pair();
      p11.C_SignInit(session, c.mechanism, privateKey);
      const chunks = parts(data);
      for (const [i, part] of chunks.entries()) {
        if (i % 2) await p11.C_SignUpdateAsync(session, part);
        else p11.C_SignUpdate(session, part);
      }
      const signature = p11.C_SignFinal(session);
      valid(signature);
      await p11.C_SignInitAsync(session, c.mechanism, privateKey);
      for (const part of chunks) await p11.C_SignUpdateAsync(session, part);
      valid(await p11.C_SignFinalAsync(session));

      p11.C_VerifyInit(session, c.mechanism, publicKey);
      for (const part of chunks) p11.C_VerifyUpdate(session, part);
      expect(p11.C_VerifyFinal(session, signature)).toBe(true);
      await p11.C_VerifyInitAsync(session, c.mechanism, publicKey);
      for (const part of chunks) await p11.C_VerifyUpdateAsync(session, part);
      expect(await p11.C_VerifyFinalAsync(session, corrupt(signature))).toBe(false);
    });
  } else {
    run('multi-part: SoftHSM2 signs this mechanism in one part only (CKR_OPERATION_NOT_INITIALIZED), then carries on', () => {
      const { privateKey } = pair();
      p11.C_SignInit(session, c.mechanism, privateKey);
      expectThrowsPkcs11(() => p11.C_SignUpdate(session, c.input(data)), 'CKR_OPERATION_NOT_INITIALIZED', 'C_SignUpdate');
      // The module ended the operation; the session is free for the next one.
      expectThrowsPkcs11(() => p11.C_SignFinal(session), 'CKR_OPERATION_NOT_INITIALIZED', 'C_SignFinal');
      valid(p11.signSync(session, c.mechanism, privateKey, c.input(data)));
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Encryption
// ---------------------------------------------------------------------------------------------

describe('AES-256', () => {
  const iv = bytes(16, 77);
  const cbc = { mechanism: C.CKM_AES_CBC_PAD, parameter: iv };

  testIfMechanism(tm, C.CKM_AES_KEY_GEN, C.CKM_AES_CBC_PAD)(
    'CBC_PAD: sync, async, one-hop and multi-part agree with node:crypto and decrypt back',
    async () => {
      const { key, value } = knownAesKey();
      for (const size of [0, 1, 16, 1000]) {
        const data = bytes(size, size + 3);
        const cipher = crypto.createCipheriv('aes-256-cbc', value, iv);
        const expected = Buffer.concat([cipher.update(data), cipher.final()]);

        p11.C_EncryptInit(session, cbc, key);
        const sync = p11.C_Encrypt(session, data);
        await p11.C_EncryptInitAsync(session, { mechanism: C.CKM_AES_CBC_PAD, parameter: { iv } }, key);
        const async = await p11.C_EncryptAsync(session, data);
        const oneHop = await p11.encrypt(session, cbc, key, data);
        const oneHopSync = p11.encryptSync(session, cbc, key, data);
        p11.C_EncryptInit(session, cbc, key);
        const pieces = parts(data).map((part) => p11.C_EncryptUpdate(session, part));
        const multi = Buffer.concat([...pieces, p11.C_EncryptFinal(session)]);
        for (const result of [sync, async, oneHop, oneHopSync, multi]) expect(result).toEqual(expected);

        p11.C_DecryptInit(session, cbc, key);
        expect(p11.C_Decrypt(session, expected)).toEqual(data);
        await p11.C_DecryptInitAsync(session, cbc, key);
        expect(await p11.C_DecryptAsync(session, expected)).toEqual(data);
        expect(await p11.decrypt(session, cbc, key, expected)).toEqual(data);
        expect(p11.decryptSync(session, cbc, key, expected)).toEqual(data);
        await p11.C_DecryptInitAsync(session, cbc, key);
        const plain: Buffer[] = [];
        for (const part of parts(expected)) plain.push(await p11.C_DecryptUpdateAsync(session, part));
        plain.push(await p11.C_DecryptFinalAsync(session));
        expect(Buffer.concat(plain)).toEqual(data);
      }
      expectThrowsPkcs11(() => p11.decryptSync(session, cbc, key, Buffer.alloc(15)), 'CKR_ENCRYPTED_DATA_LEN_RANGE', 'decrypt');
    },
  );

  testIfMechanism(tm, C.CKM_AES_KEY_GEN, C.CKM_AES_GCM)(
    'GCM with AAD: sync, async and multi-part agree with node:crypto (ciphertext ‖ tag) and decrypt back',
    async () => {
      const { key, value } = knownAesKey();
      const gcmIv = bytes(12, 5);
      const aad = Buffer.from('header');
      const gcm = { mechanism: C.CKM_AES_GCM, parameter: { iv: gcmIv, aad, tagBits: 128 } };
      for (const size of [0, 5, 5000]) {
        const data = bytes(size, size + 11);
        const cipher = crypto.createCipheriv('aes-256-gcm', value, gcmIv);
        cipher.setAAD(aad);
        const expected = Buffer.concat([cipher.update(data), cipher.final(), cipher.getAuthTag()]);

        expect(p11.encryptSync(session, gcm, key, data)).toEqual(expected);
        expect(await p11.encrypt(session, gcm, key, data)).toEqual(expected);
        await p11.C_EncryptInitAsync(session, gcm, key);
        const pieces: Buffer[] = [];
        for (const part of parts(data)) pieces.push(await p11.C_EncryptUpdateAsync(session, part));
        pieces.push(await p11.C_EncryptFinalAsync(session));
        expect(Buffer.concat(pieces)).toEqual(expected);

        expect(p11.decryptSync(session, gcm, key, expected)).toEqual(data);
        expect(await p11.decrypt(session, gcm, key, expected)).toEqual(data);
        // SoftHSM2 holds GCM plaintext back until C_DecryptFinal, which then returns all of it
        // (more than the binding's first-guess buffer for 5000 bytes).
        p11.C_DecryptInit(session, gcm, key);
        const plain = parts(expected).map((part) => p11.C_DecryptUpdate(session, part));
        plain.push(p11.C_DecryptFinal(session));
        expect(Buffer.concat(plain)).toEqual(data);
      }
      // A tampered ciphertext is refused (SoftHSM2 says CKR_GENERAL_ERROR where PKCS#11 3.0 has
      // CKR_AEAD_DECRYPT_FAILED), and the session goes on.
      const sealed = p11.encryptSync(session, gcm, key, Buffer.from('secret'));
      expectThrowsPkcs11(() => p11.decryptSync(session, gcm, key, corrupt(sealed)), 'CKR_GENERAL_ERROR', 'decrypt');
      expect(p11.decryptSync(session, gcm, key, sealed)).toEqual(Buffer.from('secret'));
    },
  );
});

describe('RSA-OAEP', () => {
  const OAEP_SHA1 = { mechanism: C.CKM_RSA_PKCS_OAEP, parameter: { hashAlg: C.CKM_SHA_1, mgf: C.CKG_MGF1_SHA1 } };

  testIfMechanism(tm, C.CKM_RSA_PKCS_KEY_PAIR_GEN, C.CKM_RSA_PKCS_OAEP)(
    'SHA-1 / MGF1-SHA1: encrypt with the public key, decrypt with the private key; node:crypto agrees both ways',
    async () => {
      const { publicKey, privateKey, publicKeyObject } = keys.rsa!;
      const message = Buffer.from('OAEP message ✓');
      const sync = p11.encryptSync(session, OAEP_SHA1, publicKey, message);
      const async = await p11.encrypt(session, OAEP_SHA1, publicKey, message);
      expect(sync).toHaveLength(256);
      expect(async).toHaveLength(256);
      expect(async).not.toEqual(sync); // OAEP is randomised
      expect(p11.decryptSync(session, OAEP_SHA1, privateKey, sync)).toEqual(message);
      expect(await p11.decrypt(session, OAEP_SHA1, privateKey, async)).toEqual(message);
      // node:crypto encrypts for the token's public key; the token decrypts.
      const fromNode = crypto.publicEncrypt({ key: publicKeyObject, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, message);
      p11.C_DecryptInit(session, OAEP_SHA1, privateKey);
      expect(p11.C_Decrypt(session, fromNode)).toEqual(message);
      // The largest message for SHA-1 OAEP and 2048 bits: 256 - 2·20 - 2 = 214 bytes.
      const longest = bytes(214, 3);
      expect(p11.decryptSync(session, OAEP_SHA1, privateKey, p11.encryptSync(session, OAEP_SHA1, publicKey, longest))).toEqual(longest);
    },
  );

  testIfMechanism(tm, C.CKM_RSA_PKCS_KEY_PAIR_GEN, C.CKM_RSA_PKCS_OAEP)(
    'what SoftHSM2 2.6 refuses: OAEP with SHA-256, with a label, or without parameters (CKR_ARGUMENTS_BAD)',
    () => {
      const { publicKey } = keys.rsa!;
      const message = Buffer.from('x');
      for (const mechanism of [
        { mechanism: C.CKM_RSA_PKCS_OAEP, parameter: { hashAlg: C.CKM_SHA256, mgf: C.CKG_MGF1_SHA256 } },
        { mechanism: C.CKM_RSA_PKCS_OAEP, parameter: { ...OAEP_SHA1.parameter, sourceData: Buffer.from('label') } },
        C.CKM_RSA_PKCS_OAEP,
      ]) {
        expectThrowsPkcs11(() => p11.encryptSync(session, mechanism, publicKey, message), 'CKR_ARGUMENTS_BAD', 'encrypt');
      }
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Digests, key wrapping, derivation, random
// ---------------------------------------------------------------------------------------------

describe('digests', () => {
  const DIGESTS = [
    ['SHA-256', C.CKM_SHA256, 'sha256'],
    ['SHA-384', C.CKM_SHA384, 'sha384'],
    ['SHA-512', C.CKM_SHA512, 'sha512'],
  ] as const;
  const MiB = bytes(1024 * 1024, 42);

  describe.each(DIGESTS)('%s', (_, mechanism, nodeName) => {
    testIfMechanism(tm, mechanism)('0 bytes and 1 MiB, by every entry point, equal node:crypto', async () => {
      for (const data of [Buffer.alloc(0), MiB]) {
        const expected = hash(nodeName, data);
        expect(p11.digestSync(session, mechanism, data)).toEqual(expected);
        expect(await p11.digest(session, { mechanism }, data)).toEqual(expected);
        p11.C_DigestInit(session, mechanism);
        expect(p11.C_Digest(session, data)).toEqual(expected);
        await p11.C_DigestInitAsync(session, mechanism);
        expect(await p11.C_DigestAsync(session, data)).toEqual(expected);
        p11.C_DigestInit(session, mechanism);
        for (const part of parts(data)) p11.C_DigestUpdate(session, part);
        expect(p11.C_DigestFinal(session)).toEqual(expected);
        await p11.C_DigestInitAsync(session, mechanism);
        for (const part of parts(data)) await p11.C_DigestUpdateAsync(session, part);
        expect(await p11.C_DigestFinalAsync(session)).toEqual(expected);
      }
    });
  });

  testIfMechanism(tm, C.CKM_SHA256, C.CKM_AES_KEY_GEN)('C_DigestKey hashes a secret key\'s value', async () => {
    const { key, value } = knownAesKey();
    p11.C_DigestInit(session, C.CKM_SHA256);
    p11.C_DigestUpdate(session, Buffer.from('prefix'));
    p11.C_DigestKey(session, key);
    expect(p11.C_DigestFinal(session)).toEqual(hash('sha256', Buffer.concat([Buffer.from('prefix'), value])));
    await p11.C_DigestInitAsync(session, C.CKM_SHA256);
    await p11.C_DigestKeyAsync(session, key);
    expect(await p11.C_DigestFinalAsync(session)).toEqual(hash('sha256', value));
  });
});

describe('AES key wrap', () => {
  const wrapMechanism = tm.has(C.CKM_AES_KEY_WRAP_PAD) ? C.CKM_AES_KEY_WRAP_PAD : C.CKM_AES_KEY_WRAP;
  const nodeCipher = wrapMechanism === C.CKM_AES_KEY_WRAP_PAD ? 'id-aes256-wrap-pad' : 'id-aes256-wrap';
  const nodeIv = wrapMechanism === C.CKM_AES_KEY_WRAP_PAD ? Buffer.from('a65959a6', 'hex') : Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

  testIfMechanism(tm, C.CKM_AES_KEY_GEN, C.CKM_AES_CBC_PAD, wrapMechanism)(
    'wrap an extractable AES key (as node:crypto would), unwrap it (secure by default), decrypt with the unwrapped key',
    async () => {
      const wrapping = knownAesKey([{ type: C.CKA_WRAP, value: true }, { type: C.CKA_UNWRAP, value: true }]);
      const target = knownAesKey();
      const wrapped = p11.C_WrapKey(session, wrapMechanism, wrapping.key, target.key);
      const cipher = crypto.createCipheriv(nodeCipher, wrapping.value, nodeIv);
      expect(wrapped).toEqual(Buffer.concat([cipher.update(target.value), cipher.final()]));
      expect(await p11.C_WrapKeyAsync(session, { mechanism: wrapMechanism }, wrapping.key, target.key)).toEqual(wrapped);

      const template: Attribute[] = [
        { type: C.CKA_CLASS, value: C.CKO_SECRET_KEY },
        { type: C.CKA_KEY_TYPE, value: C.CKK_AES },
        { type: C.CKA_TOKEN, value: false },
        { type: C.CKA_DECRYPT, value: true },
      ];
      const unwrapped = p11.C_UnwrapKey(session, wrapMechanism, wrapping.key, wrapped, template);
      const unwrappedAsync = await p11.C_UnwrapKeyAsync(session, wrapMechanism, wrapping.key, wrapped, template);
      for (const key of [unwrapped, unwrappedAsync]) {
        const values = valuesOf(p11.C_GetAttributeValue(session, key, [C.CKA_SENSITIVE, C.CKA_EXTRACTABLE, C.CKA_KEY_TYPE]));
        expect([values.get(C.CKA_SENSITIVE), values.get(C.CKA_EXTRACTABLE), values.get(C.CKA_KEY_TYPE)]).toEqual([true, false, C.CKK_AES]);
        const iv = bytes(16, 8);
        const message = Buffer.from('encrypted under the original key');
        const sealed = p11.encryptSync(session, { mechanism: C.CKM_AES_CBC_PAD, parameter: iv }, target.key, message);
        expect(p11.decryptSync(session, { mechanism: C.CKM_AES_CBC_PAD, parameter: iv }, key, sealed)).toEqual(message);
      }

      // A key created without CKA_EXTRACTABLE is not extractable (the binding's default).
      const locked = generateAesKey(p11, session);
      expectThrowsPkcs11(() => p11.C_WrapKey(session, wrapMechanism, wrapping.key, locked), 'CKR_KEY_UNEXTRACTABLE', 'C_WrapKey');
      // A damaged wrapping fails its integrity check (SoftHSM2 reports CKR_GENERAL_ERROR).
      await expectRejectsPkcs11(p11.C_UnwrapKeyAsync(session, wrapMechanism, wrapping.key, corrupt(wrapped), template), 'CKR_GENERAL_ERROR', 'C_UnwrapKey');
    },
  );
});

describe('ECDH', () => {
  const derivedTemplate = (extra: Attribute[] = []): Attribute[] => [
    { type: C.CKA_CLASS, value: C.CKO_SECRET_KEY },
    { type: C.CKA_KEY_TYPE, value: C.CKK_GENERIC_SECRET },
    { type: C.CKA_VALUE_LEN, value: 32 },
    { type: C.CKA_TOKEN, value: false },
    ...extra,
  ];
  const readable = [{ type: C.CKA_SENSITIVE, value: false }, { type: C.CKA_EXTRACTABLE, value: true }];
  const point = (publicKey: Handle): Buffer => p11.C_GetAttributeValue(session, publicKey, [C.CKA_EC_POINT])[0].value as Buffer;

  testIfMechanism(tm, C.CKM_EC_KEY_PAIR_GEN, C.CKM_ECDH1_DERIVE)(
    'CKM_ECDH1_DERIVE with CKD_NULL: both token keys derive the same secret, and node:crypto agrees',
    async () => {
      const derive: Attribute[] = [{ type: C.CKA_DERIVE, value: true }];
      const a = generateEcKeyPair(p11, session, 'P-256', derive, 'ecdh-a');
      const b = generateEcKeyPair(p11, session, 'P-256', derive, 'ecdh-b');
      const ab = p11.C_DeriveKey(session, { mechanism: C.CKM_ECDH1_DERIVE, parameter: { kdf: C.CKD_NULL, publicData: point(b.publicKey) } }, a.privateKey, derivedTemplate(readable));
      const ba = await p11.C_DeriveKeyAsync(session, { mechanism: C.CKM_ECDH1_DERIVE, parameter: { publicData: point(a.publicKey) } }, b.privateKey, derivedTemplate(readable));
      const secret = (key: Handle): Buffer => p11.C_GetAttributeValue(session, key, [C.CKA_VALUE])[0].value as Buffer;
      expect(secret(ab)).toHaveLength(32);
      expect(secret(ab)).toEqual(secret(ba));

      // node:crypto as the other party: its raw public point in, the token's point out.
      const node = crypto.createECDH('prime256v1');
      node.generateKeys();
      const withNode = p11.C_DeriveKey(session, { mechanism: C.CKM_ECDH1_DERIVE, parameter: { publicData: node.getPublicKey() } }, a.privateKey, derivedTemplate(readable));
      const tokenPoint = point(a.publicKey); // DER OCTET STRING around 04‖X‖Y
      expect(secret(withNode)).toEqual(node.computeSecret(tokenPoint.subarray(tokenPoint.length - 65)));

      // Without sensitivity attributes the derived key is sensitive and not extractable.
      const locked = p11.C_DeriveKey(session, { mechanism: C.CKM_ECDH1_DERIVE, parameter: { publicData: point(b.publicKey) } }, a.privateKey, derivedTemplate());
      expect(p11.C_GetAttributeValue(session, locked, [C.CKA_SENSITIVE, C.CKA_EXTRACTABLE, C.CKA_VALUE])).toEqual([
        { type: C.CKA_SENSITIVE, value: true },
        { type: C.CKA_EXTRACTABLE, value: false },
        { type: C.CKA_VALUE, value: null, status: 'CKR_ATTRIBUTE_SENSITIVE' },
      ]);
    },
  );
});

describe('C_GenerateRandom', () => {
  test('lengths 0, 1 and 1 MiB (sync and async); 1 MiB + 1 is refused before the module', async () => {
    expect(p11.C_GenerateRandom(session, 0)).toEqual(Buffer.alloc(0));
    expect(p11.C_GenerateRandom(session, 1)).toHaveLength(1);
    const a = p11.C_GenerateRandom(session, 1024 * 1024);
    const b = await p11.C_GenerateRandomAsync(session, 1024 * 1024);
    expect(a).toHaveLength(1024 * 1024);
    expect(b).toHaveLength(1024 * 1024);
    expect(a.equals(b)).toBe(false);
    // Random bytes compress poorly: a crude check that the buffer was really filled.
    expect(zlib.deflateRawSync(a).length).toBeGreaterThan(1024 * 1024);
    const message = "C_GenerateRandom: argument 'length' must be an integer from 0 to 1048576";
    expectTypeError(thrownBy(() => p11.C_GenerateRandom(session, 1024 * 1024 + 1)), message);
    expectTypeError(thrownBy(() => p11.C_GenerateRandomAsync(session, 1024 * 1024 + 1)), message);
    expectTypeError(
      thrownBy(() => p11.C_GenerateRandom(session, -1)),
      "C_GenerateRandom: argument 'length' must be a non-negative integer (a number up to 2^53-1, or a bigint up to the platform's CK_ULONG)",
    );
    // SoftHSM2 accepts a seed.
    p11.C_SeedRandom(session, Buffer.from('more entropy'));
    await p11.C_SeedRandomAsync(session, new Uint8Array([1, 2, 3]));
  });
});

describe('secure defaults for generated keys', () => {
  const sensitivity = [C.CKA_SENSITIVE, C.CKA_EXTRACTABLE, C.CKA_ALWAYS_SENSITIVE, C.CKA_NEVER_EXTRACTABLE];
  const read = (key: Handle): unknown[] => p11.C_GetAttributeValue(session, key, sensitivity).map((r) => r.value);
  const ecPair = (privateTemplate: Attribute[]) =>
    p11.C_GenerateKeyPair(
      session,
      C.CKM_EC_KEY_PAIR_GEN,
      [{ type: C.CKA_TOKEN, value: false }, { type: C.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }],
      [{ type: C.CKA_TOKEN, value: false }, { type: C.CKA_SIGN, value: true }, ...privateTemplate],
    );

  testIfMechanism(tm, C.CKM_EC_KEY_PAIR_GEN)('C_GenerateKeyPair without CKA_SENSITIVE / CKA_EXTRACTABLE: sensitive, not extractable', async () => {
    expect(read(ecPair([]).privateKey)).toEqual([true, false, true, true]);
    const viaAsync = await p11.C_GenerateKeyPairAsync(
      session,
      { mechanism: C.CKM_EC_KEY_PAIR_GEN },
      [{ type: C.CKA_TOKEN, value: false }, { type: C.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }],
      [{ type: C.CKA_TOKEN, value: false }],
    );
    expect(read(viaAsync.privateKey)).toEqual([true, false, true, true]);
    expect(p11.C_GetAttributeValue(session, viaAsync.privateKey, [C.CKA_VALUE])[0].status).toBe('CKR_ATTRIBUTE_SENSITIVE');
  });

  testIfMechanism(tm, C.CKM_EC_KEY_PAIR_GEN)('explicit values are respected, each on its own', () => {
    const open = ecPair([{ type: C.CKA_SENSITIVE, value: false }, { type: C.CKA_EXTRACTABLE, value: true }]).privateKey;
    expect(read(open)).toEqual([false, true, false, false]);
    const [value] = p11.C_GetAttributeValue(session, open, [C.CKA_VALUE]);
    // The P-256 private scalar: SoftHSM2 drops leading zero bytes (one key in 256 has one).
    expect(Buffer.isBuffer(value.value)).toBe(true);
    const scalar = value.value as Buffer;
    expect(scalar.length).toBeGreaterThanOrEqual(30);
    expect(scalar.length).toBeLessThanOrEqual(32);
    // Only CKA_SENSITIVE given: CKA_EXTRACTABLE still defaults to false.
    expect(read(ecPair([{ type: C.CKA_SENSITIVE, value: false }]).privateKey)).toEqual([false, false, false, true]);
    // Only CKA_EXTRACTABLE given: CKA_SENSITIVE still defaults to true.
    expect(read(ecPair([{ type: C.CKA_EXTRACTABLE, value: true }]).privateKey)).toEqual([true, true, true, false]);
  });

  testIfMechanism(tm, C.CKM_AES_KEY_GEN)('C_GenerateKey: the same defaults for secret keys', async () => {
    expect(read(generateAesKey(p11, session))).toEqual([true, false, true, true]);
    const key = await p11.C_GenerateKeyAsync(session, C.CKM_AES_KEY_GEN, [
      { type: C.CKA_TOKEN, value: false },
      { type: C.CKA_VALUE_LEN, value: 16 },
      { type: C.CKA_EXTRACTABLE, value: true },
    ]);
    expect(read(key)).toEqual([true, true, true, false]);
  });
});
