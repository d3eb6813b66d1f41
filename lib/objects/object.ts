import * as C from '../generated/constants';
import type { Bytes, Handle, Mechanism } from '../native/types';
import type { Session } from '../session/session';
import { attributeType, AttributeName, fromAttributes, Template, toAttributes } from '../template/template';
import { publicKeySpkiFromTemplate } from '../keys/public-key';
import { formatPkcs11Uri } from '../uri/pkcs11-uri';

/**
 * An object on a token, seen through the session that found or made it. Its handle is only
 * meaningful in that session's application; once the session closes, every call fails.
 */
export class Pkcs11Object {
  constructor(
    readonly session: Session,
    readonly handle: Handle,
  ) {}

  /** Reads attributes by name; sensitive or absent ones are left out. */
  async get<K extends AttributeName>(names: K[]): Promise<Pick<Template, K>> {
    const types = names.map((name) => attributeType(name));
    const results = await this.session.native
      .C_GetAttributeValueAsync(this.session.handle, this.handle, types)
      .catch((e) => Promise.reject(this.session.noteLoss(e)));
    return fromAttributes(results) as Pick<Template, K>;
  }

  async set(template: Template): Promise<void> {
    await this.session.native.C_SetAttributeValueAsync(this.session.handle, this.handle, toAttributes(template));
  }

  async copy(template: Template = {}): Promise<Pkcs11Object> {
    const handle = await this.session.native.C_CopyObjectAsync(this.session.handle, this.handle, toAttributes(template));
    return wrapObject(this.session, handle);
  }

  async destroy(): Promise<void> {
    await this.session.native.C_DestroyObjectAsync(this.session.handle, this.handle);
  }

  size(): number | bigint {
    return this.session.native.C_GetObjectSize(this.session.handle, this.handle);
  }

  /** The object's PKCS#11 URI: its token, label, id and type. */
  async uri(): Promise<string> {
    const { label, id, class: cls } = await this.get(['label', 'id', 'class']);
    const token = this.session.slot.tokenInfo();
    const type = URI_TYPES[String(cls)];
    return formatPkcs11Uri({
      path: {
        token: token.label,
        manufacturer: token.manufacturerID,
        serial: token.serialNumber,
        model: token.model,
        object: label || undefined,
        id: id && id.length > 0 ? id : undefined,
        type,
      },
      query: {},
      vendor: { path: {}, query: {} },
    });
  }
}

const URI_TYPES: Record<string, 'cert' | 'data' | 'private' | 'public' | 'secret-key' | undefined> = {
  certificate: 'cert',
  data: 'data',
  privateKey: 'private',
  publicKey: 'public',
  secretKey: 'secret-key',
};

export class PrivateKey extends Pkcs11Object {
  /** C_SignInit + C_Sign in one worker job. */
  async sign(mechanism: Mechanism, data: Bytes): Promise<Buffer> {
    return this.session.native.sign(this.session.handle, mechanism, this.handle, data);
  }

  async decrypt(mechanism: Mechanism, data: Bytes): Promise<Buffer> {
    return this.session.native.decrypt(this.session.handle, mechanism, this.handle, data);
  }
}

export class PublicKey extends Pkcs11Object {
  async verify(mechanism: Mechanism, data: Bytes, signature: Bytes): Promise<boolean> {
    return this.session.native.verify(this.session.handle, mechanism, this.handle, data, signature);
  }

  async encrypt(mechanism: Mechanism, data: Bytes): Promise<Buffer> {
    return this.session.native.encrypt(this.session.handle, mechanism, this.handle, data);
  }

  /** The public key as DER SubjectPublicKeyInfo (EC, RSA, Ed25519). */
  async spki(): Promise<Buffer> {
    const template = await this.get(['keyType', 'ecParams', 'ecPoint', 'modulus', 'publicExponent']);
    return publicKeySpkiFromTemplate(template);
  }
}

export class SecretKey extends Pkcs11Object {
  async encrypt(mechanism: Mechanism, data: Bytes): Promise<Buffer> {
    return this.session.native.encrypt(this.session.handle, mechanism, this.handle, data);
  }

  async decrypt(mechanism: Mechanism, data: Bytes): Promise<Buffer> {
    return this.session.native.decrypt(this.session.handle, mechanism, this.handle, data);
  }

  /** Wraps (exports, encrypted under this key) another key; it must be extractable. */
  async wrap(mechanism: Mechanism, key: Pkcs11Object): Promise<Buffer> {
    return this.session.native.C_WrapKeyAsync(this.session.handle, mechanism, this.handle, key.handle);
  }

  /** Unwraps a key into the token; the template defaults to sensitive and non-extractable. */
  async unwrap(mechanism: Mechanism, wrapped: Bytes, template: Template): Promise<Pkcs11Object> {
    const handle = await this.session.native.C_UnwrapKeyAsync(
      this.session.handle,
      mechanism,
      this.handle,
      wrapped,
      toAttributes(template),
    );
    return wrapObject(this.session, handle);
  }
}

export class Certificate extends Pkcs11Object {
  /** The certificate's DER (CKA_VALUE). */
  async der(): Promise<Buffer> {
    const { value } = await this.get(['value']);
    if (!value) throw new Error('the certificate object has no CKA_VALUE');
    return value;
  }
}

/** Wraps a handle in the class that fits its CKA_CLASS. */
export async function wrapObject(session: Session, handle: Handle): Promise<Pkcs11Object> {
  const [result] = await session.native.C_GetAttributeValueAsync(session.handle, handle, [C.CKA_CLASS]);
  switch (result.value === null ? -1 : Number(result.value)) {
    case C.CKO_PRIVATE_KEY:
      return new PrivateKey(session, handle);
    case C.CKO_PUBLIC_KEY:
      return new PublicKey(session, handle);
    case C.CKO_SECRET_KEY:
      return new SecretKey(session, handle);
    case C.CKO_CERTIFICATE:
      return new Certificate(session, handle);
    default:
      return new Pkcs11Object(session, handle);
  }
}
