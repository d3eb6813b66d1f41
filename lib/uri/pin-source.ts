/**
 * Resolves an RFC 7512 pin-source value to the PIN. Supported: file: URIs, plain file
 * paths and env:NAME. Error messages name the source, never its content.
 */
import { open } from 'node:fs/promises';
import { TextDecoder } from 'node:util';
import { fileURLToPath } from 'node:url';

export class PinSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PinSourceError';
  }
}

// A PIN is short; the cap keeps a mistaken /dev/zero or large file from being slurped.
const MAX_PIN_FILE_BYTES = 4096;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export async function readPinSource(value: string): Promise<string> {
  if (typeof value !== 'string' || value.length === 0) throw new PinSourceError('pin-source is empty');
  if (value.startsWith('env:')) return readEnv(value.slice(4));
  return readPinFile(toPath(value));
}

function readEnv(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new PinSourceError('pin-source env: needs a variable name, e.g. env:TOKEN_PIN');
  const pin = process.env[name];
  if (pin === undefined) throw new PinSourceError(`pin-source: environment variable ${name} is not set`);
  return pin;
}

function toPath(value: string): string {
  if (/^file:/i.test(value)) {
    try {
      return fileURLToPath(new URL(value));
    } catch (e) {
      throw new PinSourceError(`pin-source: unusable file URI (${(e as Error).message})`);
    }
  }
  // Anything else with a scheme (e.g. "|/bin/getpin", "https:") is not something we run or fetch.
  // A single letter before ":" is a Windows drive, not a scheme.
  if (/^[A-Za-z][A-Za-z0-9+.-]+:/.test(value) || value.startsWith('|')) {
    throw new PinSourceError('pin-source: only file: URIs, file paths and env:NAME are supported');
  }
  return value;
}

async function readPinFile(path: string): Promise<string> {
  let bytes: Buffer;
  try {
    const handle = await open(path, 'r');
    try {
      const buf = Buffer.alloc(MAX_PIN_FILE_BYTES + 1);
      let n = 0;
      // Loop because a read may return fewer bytes than asked (pipes, FIFOs); stops at EOF or the cap.
      while (n < buf.length) {
        const { bytesRead } = await handle.read(buf, n, buf.length - n, null);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      bytes = buf.subarray(0, n);
    } finally {
      await handle.close();
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PinSourceError(`pin-source: cannot read ${path}${code ? ` (${code})` : ''}`);
  }
  if (bytes.length > MAX_PIN_FILE_BYTES) throw new PinSourceError(`pin-source: ${path} is larger than ${MAX_PIN_FILE_BYTES} bytes`);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new PinSourceError(`pin-source: ${path} is not valid UTF-8`);
  }
  // Files written by `echo` end in one newline that is not part of the PIN.
  if (text.endsWith('\r\n')) return text.slice(0, -2);
  if (text.endsWith('\n')) return text.slice(0, -1);
  return text;
}
