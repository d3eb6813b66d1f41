/** Reading command input (a file or '-' for stdin) and writing results to --out. */
import { promises as fs } from 'fs';

import { UsageError } from './usage-error';

// Signing input is read whole; the cap keeps a mistaken device file from exhausting memory.
const MAX_INPUT_BYTES = 256 * 1024 * 1024;

export async function readInput(path: string | undefined): Promise<Buffer> {
  if (path === undefined || path === '-') {
    if (process.stdin.isTTY) throw new UsageError('no input: give --in FILE, or pipe the data to stdin');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of process.stdin) {
      size += (chunk as Buffer).length;
      if (size > MAX_INPUT_BYTES) throw new Error(`stdin is larger than ${MAX_INPUT_BYTES} bytes`);
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }
  return readFile(path, 'input');
}

export async function readFile(path: string, what: string): Promise<Buffer> {
  try {
    return await fs.readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`cannot read ${what} ${path}${code ? ` (${code})` : ''}`);
  }
}

/** Writes a file in one piece: a temp file renamed over the target, so readers never see half of it. */
export async function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  try {
    await fs.writeFile(temp, data);
    await fs.rename(temp, path);
  } catch (error) {
    await fs.rm(temp, { force: true }).catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`cannot write ${path}${code ? ` (${code})` : ''}`);
  }
}
