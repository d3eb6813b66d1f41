/**
 * Test support for the CA: Pkcs11Signer objects over the RAW binding and a real SoftHSM2
 * token (no mocks). A small session pool lets many signatures run at once, since one PKCS#11
 * session runs one operation at a time.
 */
import {
  CKA_EC_PARAMS,
  CKA_EC_POINT,
  CKA_MODULUS,
  CKA_MODULUS_BITS,
  CKA_PUBLIC_EXPONENT,
  CKA_SIGN,
  CKA_TOKEN,
  CKA_VERIFY,
  CKF_RW_SESSION,
  CKF_SERIAL_SESSION,
  CKM_EC_EDWARDS_KEY_PAIR_GEN,
  CKM_EC_KEY_PAIR_GEN,
  CKM_RSA_PKCS_KEY_PAIR_GEN,
  CKU_USER,
  PKCS11,
} from '../../lib';
import type { Attribute, AttributeResult, Handle, Mechanism } from '../../lib';
import type { Pkcs11Signer, SignerKeyType } from '../../lib/keys/signer';
import { NULL_DER, algorithmIdentifier, bitString, oid, sequence, unsignedInteger } from '../../lib/ca/der-writer';
import { createTestToken, TestToken } from './softhsm';

export type TestKeyKind = 'p256' | 'p384' | 'rsa2048' | 'ed25519';

const EC_PARAMS: Record<'p256' | 'p384', Buffer> = {
  p256: Buffer.from('06082a8648ce3d030107', 'hex'),
  p384: Buffer.from('06052b81040022', 'hex'),
};
/** Ed25519 CKA_EC_PARAMS: modules differ in which form they accept, so both are tried. */
const ED25519_PARAMS = [Buffer.from('06032b6570', 'hex'), Buffer.from('130c656477617264733235353139', 'hex')];

export interface TestSigner extends Pkcs11Signer {
  readonly privateKey: Handle;
  /** Number of sign calls made, to compare issuance against raw signing. */
  signCount: number;
}

/** One logged-in SoftHSM2 token with a pool of sessions for signing. */
export class TestHsm {
  readonly m: PKCS11;
  readonly slot: Handle;
  private readonly admin: Handle;
  private readonly free: Handle[] = [];
  private readonly waiting: ((s: Handle) => void)[] = [];
  private readonly mechanisms: Set<number>;
  private readonly token: TestToken;

  private constructor(token: TestToken, sessions: number) {
    this.token = token;
    this.m = new PKCS11();
    this.m.load(token.modulePath);
    this.m.C_Initialize();
    this.slot = this.m.C_GetSlotList(true)[token.slotIndexHint ?? 0];
    this.mechanisms = new Set(this.m.C_GetMechanismList(this.slot).map(Number));
    this.admin = this.m.C_OpenSession(this.slot, CKF_RW_SESSION | CKF_SERIAL_SESSION);
    this.m.C_Login(this.admin, CKU_USER, token.userPin);
    // Login state is per application, so the pool's sessions are logged in too.
    for (let i = 0; i < sessions; i++) this.free.push(this.m.C_OpenSession(this.slot, CKF_SERIAL_SESSION));
  }

  /** A fresh token, initialized and logged in. */
  static open(sessions = 8): TestHsm {
    return new TestHsm(createTestToken(), sessions);
  }

  /** Whether the token lists a mechanism (the only reason a test may skip). */
  has(mechanism: number): boolean {
    return this.mechanisms.has(mechanism);
  }

  private acquire(): Promise<Handle> {
    const s = this.free.pop();
    if (s !== undefined) return Promise.resolve(s);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(s: Handle): void {
    const next = this.waiting.shift();
    if (next) next(s);
    else this.free.push(s);
  }

  /** Generates a session key pair and wraps it as a Pkcs11Signer. */
  generate(kind: TestKeyKind, options: { canSign?: boolean } = {}): TestSigner {
    const sign = options.canSign ?? true;
    const pub: Attribute[] = [{ type: CKA_TOKEN, value: false }, { type: CKA_VERIFY, value: true }];
    const priv: Attribute[] = [{ type: CKA_TOKEN, value: false }, { type: CKA_SIGN, value: sign }];
    let handles;
    let keyType: SignerKeyType;
    if (kind === 'rsa2048') {
      keyType = 'rsa';
      pub.push({ type: CKA_MODULUS_BITS, value: 2048 }, { type: CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) });
      handles = this.m.C_GenerateKeyPair(this.admin, CKM_RSA_PKCS_KEY_PAIR_GEN, pub, priv);
    } else if (kind === 'ed25519') {
      keyType = 'ed25519';
      let lastError: unknown;
      for (const params of ED25519_PARAMS) {
        try {
          handles = this.m.C_GenerateKeyPair(this.admin, CKM_EC_EDWARDS_KEY_PAIR_GEN, [...pub, { type: CKA_EC_PARAMS, value: params }], priv);
          break;
        } catch (e) {
          lastError = e;
        }
      }
      if (!handles) throw lastError;
    } else {
      keyType = 'ec';
      handles = this.m.C_GenerateKeyPair(this.admin, CKM_EC_KEY_PAIR_GEN, [...pub, { type: CKA_EC_PARAMS, value: EC_PARAMS[kind] }], priv);
    }
    const spki = this.readSpki(handles.publicKey, kind);
    const [canSign] = this.m.C_GetAttributeValue(this.admin, handles.privateKey, [CKA_SIGN]);
    const privateKey = handles.privateKey;
    const signer: TestSigner = {
      keyType,
      publicKeySpki: spki,
      canSign: canSign.value === true,
      privateKey,
      signCount: 0,
      sign: async (mechanism: Mechanism, data: Buffer): Promise<Buffer> => {
        signer.signCount++;
        const session = await this.acquire();
        try {
          return await this.m.sign(session, mechanism, privateKey, data);
        } finally {
          this.release(session);
        }
      },
    };
    return signer;
  }

  private readSpki(publicKey: Handle, kind: TestKeyKind): Buffer {
    const value = (r: AttributeResult): Buffer => {
      if (!Buffer.isBuffer(r.value)) throw new Error(`attribute ${String(r.type)} has no byte value`);
      return r.value;
    };
    if (kind === 'rsa2048') {
      const [n, e] = this.m.C_GetAttributeValue(this.admin, publicKey, [CKA_MODULUS, CKA_PUBLIC_EXPONENT]).map(value);
      return sequence([algorithmIdentifier('1.2.840.113549.1.1.1', NULL_DER), bitString(sequence([unsignedInteger(n), unsignedInteger(e)]))]);
    }
    const [point, params] = this.m.C_GetAttributeValue(this.admin, publicKey, [CKA_EC_POINT, CKA_EC_PARAMS]).map(value);
    // CKA_EC_POINT is a DER OCTET STRING around the raw point (short form length for these sizes).
    const raw = point[0] === 0x04 && point[1] === point.length - 2 ? point.subarray(2) : point;
    if (kind === 'ed25519') return sequence([algorithmIdentifier('1.3.101.112'), bitString(raw)]);
    return sequence([sequence([oid('1.2.840.10045.2.1'), params]), bitString(raw)]);
  }

  close(): void {
    try {
      this.m.C_Finalize();
    } finally {
      this.token.cleanup();
    }
  }
}
