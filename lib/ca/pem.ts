/** PEM (RFC 7468) encoding and decoding for certificates, CRLs and CSRs. */
import { CaError, CaErrorCode } from './errors';

/** DER to PEM with 64-character lines. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + '\n';
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/**
 * DER from a Buffer (returned as is) or from the first PEM block with one of `labels`.
 * Strict base64 so that a corrupted PEM fails here rather than as odd DER later.
 */
export function toDer(input: Buffer | Uint8Array | string, labels: readonly string[], code: CaErrorCode, what: string): Buffer {
  if (typeof input !== 'string') {
    if (!(input instanceof Uint8Array)) throw new CaError('INVALID_ARGUMENT', `${what} must be DER bytes or a PEM string`);
    return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  }
  const blocks = pemBlocks(input);
  const block = blocks.find((b) => labels.includes(b.label));
  if (!block) throw new CaError(code, `${what}: no PEM block labelled ${labels.map((l) => `"${l}"`).join(' or ')}`);
  return block.der;
}

/** Every PEM block in `text`, in order. */
export function pemBlocks(text: string): { label: string; der: Buffer }[] {
  const out: { label: string; der: Buffer }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const body = m[2].replace(/[ \t\r\n]/g, '');
    if (body.length === 0 || body.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(body)) {
      throw new CaError('INVALID_ARGUMENT', `PEM: the body of the ${m[1]} block is not valid base64`);
    }
    out.push({ label: m[1], der: Buffer.from(body, 'base64') });
  }
  return out;
}
