/**
 * The issuing side of the service: a PKCS#11 module, a SigningPool on the CA key, and the
 * CertificateAuthority that signs through it. Opened from the configuration (or by demo.ts),
 * closed once on shutdown: the pool first (it lets accepted signatures finish), then the module.
 */
import { readFileSync } from 'fs';

import { CertificateAuthority, toPem } from '../../lib/ca';
import { pemBlocks } from '../../lib/ca/pem';
import { Module } from '../../lib/module/module';
import { SigningPool } from '../../lib/pool/signing-pool';
import { readPinSource } from '../../lib/uri/pin-source';
import { parsePkcs11Uri } from '../../lib/uri/pkcs11-uri';
import type { ServiceConfig } from './config';

export interface Issuer {
  ca: CertificateAuthority;
  pool: SigningPool;
  /** The CA certificate PEM that clients verify issued certificates against. */
  caPem: string;
  close(): Promise<void>;
}

/** Wraps opened resources into an Issuer whose close() runs once, in order. */
export function makeIssuer(ca: CertificateAuthority, pool: SigningPool, module: Module, afterClose: () => void = () => undefined): Issuer {
  let closing: Promise<void> | undefined;
  return {
    ca,
    pool,
    caPem: toPem('CERTIFICATE', ca.root ?? ca.certificate),
    close() {
      closing ??= (async () => {
        try {
          await pool.close();
        } finally {
          module.close();
          afterClose();
        }
      })();
      return closing;
    },
  };
}

export async function openIssuer(config: ServiceConfig): Promise<Issuer> {
  const keyUri = parsePkcs11Uri(config.keyUri as string);
  const pinSource = config.pinSource ?? keyUri.query.pinSource;
  const pin = pinSource === undefined ? undefined : await readPinSource(pinSource);
  const certs = pemBlocks(readFileSync(config.caCertPath as string, 'utf8')).filter((b) => b.label === 'CERTIFICATE');
  if (certs.length === 0) throw new Error(`${config.caCertPath} holds no PEM certificate`);

  const module = Module.load(config.modulePath as string);
  try {
    const pool = await SigningPool.open({
      module,
      token: config.tokenUri ?? keyUri,
      key: config.keyUri as string,
      pin,
      size: config.poolSize,
      maxQueue: config.maxQueue,
      timeoutMs: config.signTimeoutMs,
    });
    try {
      const ca = await CertificateAuthority.load({ signer: pool.asSigner(), certificate: certs[0].der, chain: certs.slice(1).map((c) => c.der) });
      return makeIssuer(ca, pool, module);
    } catch (error) {
      await pool.close();
      throw error;
    }
  } catch (error) {
    module.close();
    throw error;
  }
}
