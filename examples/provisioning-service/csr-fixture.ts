/**
 * One EC P-256 key and CSR made with OpenSSL (an independent implementation, so the service
 * parses a request it did not produce), reused for every load-test request.
 */
import { execFileSync } from 'child_process';
import { createPublicKey } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface CsrFixture {
  csrPem: string;
  /** DER SPKI of the requested key: every certificate must certify exactly this key. */
  spki: Buffer;
  dnsName: string;
}

export function makeCsrFixture(dnsName = 'load.example.test'): CsrFixture {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'provisioning-load-'));
  try {
    const key = path.join(dir, 'key.pem');
    const csr = path.join(dir, 'req.pem');
    execFileSync(
      'openssl',
      ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/CN=${dnsName}`, '-addext', `subjectAltName=DNS:${dnsName}`, '-out', csr],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const spki = createPublicKey(fs.readFileSync(key)).export({ type: 'spki', format: 'der' });
    return { csrPem: fs.readFileSync(csr, 'utf8'), spki, dnsName };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
