/**
 * The main job, end to end: provision a SoftHSM2 token, generate an EC P-256 key pair in it
 * (private key sensitive and non-extractable), sign and verify through a signing pool.
 *
 *   npm run demo
 */
import { createHash, createPublicKey, verify } from 'crypto';

import { generateKeyPair, Module, SigningPool } from '../lib';
import { provisionSoftHsmToken } from '../lib/softhsm/provision';

async function main(): Promise<void> {
  const token = provisionSoftHsmToken({ label: 'demo-token' });
  Object.assign(process.env, token.env);
  console.log(`1. SoftHSM2 token '${token.label}' provisioned in ${token.dir}`);
  const module = Module.load(token.modulePath);
  try {
    const info = module.info();
    console.log(`2. Loaded ${info.libraryDescription} ${info.libraryVersion.major}.${info.libraryVersion.minor} (Cryptoki ${info.cryptokiVersion.major}.${info.cryptokiVersion.minor})`);

    const slot = module.findSlot(token.label);
    const session = await slot.openSession();
    await session.login(token.userPin);
    const { privateKey, publicKey } = await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' }, { label: 'demo-key' });
    const attributes = await privateKey.get(['sensitive', 'extractable', 'sign']);
    console.log(`3. EC P-256 key pair generated: ${await privateKey.uri()}`);
    console.log(`   private key sensitive=${attributes.sensitive} extractable=${attributes.extractable} sign=${attributes.sign}`);

    const pool = await SigningPool.open({ module, token: token.label, key: { label: 'demo-key' }, pin: token.userPin });
    const message = Buffer.from('hello from pkcs11-napi');
    const digest = createHash('sha256').update(message).digest();
    const signatures = await Promise.all(Array.from({ length: 100 }, () => pool.sign(digest)));
    const spki = await publicKey.spki();
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    const allValid = signatures.every((signature) => verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature));
    const onToken = await pool.verify(digest, signatures[0]);
    console.log(`4. 100 concurrent signatures through the pool: verified by node:crypto=${allValid}, by the token=${onToken}`);
    await pool.close();
    if (!allValid || !onToken) throw new Error('a signature did not verify');
    console.log('Done.');
  } finally {
    module.close();
    token.cleanup();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
