/**
 * The CA's HSM key as a Pkcs11Signer: a one-session SigningPool on the token the --key URI
 * names. The pool does the login, finds exactly one private key, and reads its public half,
 * which is what CertificateAuthority needs.
 */
import type { Pkcs11Signer } from '../keys/signer';
import { SigningPool } from '../pool/signing-pool';
import type { ParsedArgs } from './args';
import { keyCriteria } from './keys';
import { resolvePin } from './pin';
import { parseUriArgument, selectSlot, withModule } from './token';
import { UsageError } from './usage-error';

export async function withCaKey<T>(args: ParsedArgs, work: (signer: Pkcs11Signer) => Promise<T>): Promise<T> {
  const uri = parseUriArgument(args.required('key'), '--key');
  if (uri.path.type !== undefined && uri.path.type !== 'private') {
    throw new UsageError(`the key URI says type=${uri.path.type}; the CA signs with the private key (type=private)`);
  }
  return withModule(args, uri, async (module) => {
    const slot = selectSlot(module, uri);
    const pin = await resolvePin(args, uri, slot.tokenInfo().label.trimEnd());
    // The token is passed as its own URI (label, serial, ...), so the pool finds the slot chosen here.
    const pool = await SigningPool.open({ module, token: slot.uri(), key: keyCriteria(uri), pin, size: 1 });
    try {
      return await work(pool.asSigner());
    } finally {
      await pool.close();
    }
  });
}
