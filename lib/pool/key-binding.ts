import { createHash, createPublicKey, randomBytes, verify as verifySignature } from 'crypto';

import * as C from '../generated/constants';
import type { NativePKCS11 } from '../native/pkcs11';
import type { Attribute, Handle } from '../native/types';
import type { SignerKeyType } from '../keys/signer';
import { publicKeySpkiFromTemplate } from '../keys/public-key';
import { fromAttributes } from '../template/template';
import { parsePkcs11Uri } from '../uri/pkcs11-uri';

/** Which key a pool signs with: a PKCS#11 URI, or label and/or id. It must match exactly one key. */
export type KeyLocator = string | { label?: string; id?: Buffer };

interface Criteria {
  label?: string;
  id?: Buffer;
}

export function locatorCriteria(locator: KeyLocator): Criteria {
  if (typeof locator === 'string') {
    const uri = parsePkcs11Uri(locator);
    if (uri.path.type !== undefined && uri.path.type !== 'private') {
      throw new TypeError(`the key URI names type=${uri.path.type}; a signing key must be type=private`);
    }
    const criteria: Criteria = { label: uri.path.object, id: uri.path.id };
    if (criteria.label === undefined && criteria.id === undefined) {
      throw new TypeError('the key URI must name the key by object= and/or id=');
    }
    return criteria;
  }
  if (locator.label === undefined && locator.id === undefined) {
    throw new TypeError('the key locator must give a label and/or an id');
  }
  return { label: locator.label, id: locator.id };
}

function template(criteria: Criteria, objectClass: number): Attribute[] {
  const attributes: Attribute[] = [{ type: C.CKA_CLASS, value: objectClass }];
  if (criteria.label !== undefined) attributes.push({ type: C.CKA_LABEL, value: criteria.label });
  if (criteria.id !== undefined) attributes.push({ type: C.CKA_ID, value: criteria.id });
  return attributes;
}

function describe(criteria: Criteria): string {
  const parts = [];
  if (criteria.label !== undefined) parts.push(`label '${criteria.label}'`);
  if (criteria.id !== undefined) parts.push(`id ${criteria.id.toString('hex')}`);
  return parts.join(' and ');
}

/** The handle of the one private key matching `criteria`; none or several is an error. */
export async function findPrivateKey(native: NativePKCS11, session: Handle, criteria: Criteria): Promise<Handle> {
  const found = await native.findObjects(session, template(criteria, C.CKO_PRIVATE_KEY), 2);
  if (found.length === 0) throw new Error(`no private key with ${describe(criteria)} on the token`);
  if (found.length > 1) throw new Error(`more than one private key with ${describe(criteria)}: name one key exactly`);
  return found[0];
}

export interface KeyFacts {
  keyType: SignerKeyType;
  canSign: boolean;
  publicKeySpki: Buffer;
}

const KEY_TYPES: Record<string, SignerKeyType> = { ec: 'ec', rsa: 'rsa', ecEdwards: 'ed25519' };

/**
 * Reads what the pool must know about the key: its type, CKA_SIGN, and its public key (from the
 * matching public key object, or for RSA from the private key's own modulus and exponent).
 */
export async function readKeyFacts(
  native: NativePKCS11,
  session: Handle,
  criteria: Criteria,
  privateKey: Handle,
): Promise<KeyFacts> {
  const own = fromAttributes(
    await native.C_GetAttributeValueAsync(session, privateKey, [
      C.CKA_KEY_TYPE,
      C.CKA_SIGN,
      C.CKA_MODULUS,
      C.CKA_PUBLIC_EXPONENT,
    ]),
  );
  const keyType = KEY_TYPES[String(own.keyType)];
  if (keyType === undefined) throw new Error(`the key's type (${String(own.keyType)}) is not one the pool signs with`);
  const publics = await native.findObjects(session, template(criteria, C.CKO_PUBLIC_KEY), 2);
  let spki: Buffer;
  if (publics.length === 1) {
    const attributes = fromAttributes(
      await native.C_GetAttributeValueAsync(session, publics[0], [
        C.CKA_KEY_TYPE,
        C.CKA_EC_PARAMS,
        C.CKA_EC_POINT,
        C.CKA_MODULUS,
        C.CKA_PUBLIC_EXPONENT,
      ]),
    );
    spki = publicKeySpkiFromTemplate(attributes);
  } else if (keyType === 'rsa' && own.modulus && own.publicExponent) {
    spki = publicKeySpkiFromTemplate(own);
  } else {
    throw new Error(
      `found ${publics.length} public keys with ${describe(criteria)}; the pool needs exactly one to know the key's public half`,
    );
  }
  return { keyType, canSign: own.sign === true, publicKeySpki: spki };
}

/**
 * Proves that `privateKey` is the key whose public half is `spki`: it signs a fresh random
 * challenge and the signature is checked in software. Used when a handle had to be found again.
 */
export async function proveKey(
  native: NativePKCS11,
  session: Handle,
  privateKey: Handle,
  keyType: SignerKeyType,
  spki: Buffer,
): Promise<boolean> {
  const publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const challenge = randomBytes(32);
  switch (keyType) {
    case 'ec': {
      const digest = createHash('sha256').update(challenge).digest();
      const signature = await native.sign(session, C.CKM_ECDSA, privateKey, digest);
      return verifySignature('sha256', challenge, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    }
    case 'rsa': {
      const signature = await native.sign(session, C.CKM_SHA256_RSA_PKCS, privateKey, challenge);
      return verifySignature('sha256', challenge, publicKey, signature);
    }
    case 'ed25519': {
      const signature = await native.sign(session, C.CKM_EDDSA, privateKey, challenge);
      return verifySignature(null, challenge, publicKey, signature);
    }
  }
}

/** The mechanism a pool uses when the caller names none. */
export function defaultMechanism(keyType: SignerKeyType): number {
  switch (keyType) {
    case 'ec':
      return C.CKM_ECDSA;
    case 'rsa':
      return C.CKM_SHA256_RSA_PKCS;
    case 'ed25519':
      return C.CKM_EDDSA;
  }
}
