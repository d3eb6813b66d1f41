/** Finding the key a --key URI names: by its object (label) and id, never "the first match". */
import { PrivateKey, PublicKey } from '../objects/object';
import type { Session } from '../session/session';
import type { Pkcs11Uri } from '../uri/pkcs11-uri';
import { UsageError } from './usage-error';

export function keyCriteria(uri: Pkcs11Uri): { label?: string; id?: Buffer } {
  const { object: label, id } = uri.path;
  if (label === undefined && id === undefined) throw new UsageError('the key URI must name the key with object= and/or id=');
  return { label, id };
}

export async function findPrivateKey(session: Session, uri: Pkcs11Uri): Promise<PrivateKey> {
  if (uri.path.type !== undefined && uri.path.type !== 'private') {
    throw new UsageError(`the key URI says type=${uri.path.type}; signing needs the private key (type=private)`);
  }
  const key = await session.findOne({ class: 'privateKey', ...keyCriteria(uri) });
  return key as PrivateKey;
}

/** The public half of the key the URI names (the URI may name either half). */
export async function findPublicKey(session: Session, uri: Pkcs11Uri): Promise<PublicKey> {
  const key = await session.findOne({ class: 'publicKey', ...keyCriteria(uri) });
  return key as PublicKey;
}
