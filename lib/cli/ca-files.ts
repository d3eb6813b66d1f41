/** The CA certificate file: the CA's own certificate first, then (optionally) its issuers. */
import { pemBlocks } from '../ca/pem';
import { readFile } from './files';

export async function readCaFile(path: string): Promise<{ certificate: Buffer; chain: Buffer[] }> {
  const bytes = await readFile(path, 'CA certificate');
  const text = bytes.toString('latin1');
  if (!text.includes('-----BEGIN')) return { certificate: bytes, chain: [] }; // DER
  const certs = pemBlocks(text).filter((b) => b.label === 'CERTIFICATE').map((b) => b.der);
  if (certs.length === 0) throw new Error(`${path} holds no PEM CERTIFICATE block`);
  return { certificate: certs[0], chain: certs.slice(1) };
}
