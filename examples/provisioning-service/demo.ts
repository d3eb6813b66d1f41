/**
 * --demo: everything the service needs, made on the spot in a throw-away SoftHSM2 token: an EC
 * P-256 CA key (sensitive, non-extractable), a signing pool on it and a self-signed root CA.
 * The token directory (with ca.pem) is removed when the issuer closes.
 */
import * as fs from 'fs';
import * as path from 'path';

import { CertificateAuthority } from '../../lib/ca';
import { generateKeyPair } from '../../lib/keys/generate';
import { Module } from '../../lib/module/module';
import { SigningPool } from '../../lib/pool/signing-pool';
import { provisionSoftHsmToken } from '../../lib/softhsm/provision';
import type { ServiceConfig } from './config';
import { Issuer, makeIssuer } from './issuer';

const KEY_LABEL = 'issuing-ca';

export async function openDemoIssuer(config: ServiceConfig): Promise<{ issuer: Issuer; caCertPath: string; tokenDir: string }> {
  const token = provisionSoftHsmToken({ label: 'provisioning-demo' });
  // SoftHSM2 reads SOFTHSM2_CONF when the module initialises, so it must be set before the load.
  Object.assign(process.env, token.env);
  let module: Module | undefined;
  let pool: SigningPool | undefined;
  try {
    module = Module.load(token.modulePath);
    const session = await module.findSlot(token.label).openSession();
    try {
      await session.login(token.userPin);
      await generateKeyPair(session, { algorithm: 'ec', curve: 'P-256' }, { label: KEY_LABEL });
    } finally {
      await session.close();
    }
    pool = await SigningPool.open({
      module,
      token: token.label,
      key: { label: KEY_LABEL },
      pin: token.userPin,
      size: config.poolSize,
      maxQueue: config.maxQueue,
      timeoutMs: config.signTimeoutMs,
    });
    const ca = await CertificateAuthority.createRoot({
      signer: pool.asSigner(),
      subject: 'CN=pkcs11-napi provisioning demo root,O=pkcs11-napi',
      validityDays: 30,
    });
    const caCertPath = path.join(token.dir, 'ca.pem');
    fs.writeFileSync(caCertPath, ca.certificatePem);
    return { issuer: makeIssuer(ca, pool, module, () => token.cleanup()), caCertPath, tokenDir: token.dir };
  } catch (error) {
    await pool?.close();
    module?.close();
    token.cleanup();
    throw error;
  }
}
