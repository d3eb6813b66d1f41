/** Binary values as text: hex or base64, for signatures and random bytes. */
import { UsageError } from './usage-error';

export function encodeBytes(bytes: Buffer, format: string): string {
  if (format === 'hex') return bytes.toString('hex');
  if (format === 'base64') return bytes.toString('base64');
  throw new UsageError(`--format must be hex or base64, got '${format}'`);
}

/** Refuses a bad --format before any work is done. */
export function checkFormat(format: string): string {
  encodeBytes(Buffer.alloc(0), format);
  return format;
}

/** A value given as hex or base64 text. */
export function decodeBytes(text: string, what: string): Buffer {
  const trimmed = text.trim();
  if (/^([0-9a-fA-F]{2})+$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) && trimmed.length % 4 === 0) return Buffer.from(trimmed, 'base64');
  throw new UsageError(`${what} must be hex or base64 text`);
}
