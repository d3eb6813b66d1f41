/** Writing results: JSON on --json, text otherwise; always stdout, so stderr stays for errors. */
import type { ParsedArgs } from './args';

/** JSON.stringify that writes Buffers as hex and bigints as decimal strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    function (this: Record<string, unknown>, key: string, converted: unknown) {
      const raw = this[key];
      if (Buffer.isBuffer(raw)) return raw.toString('hex');
      if (typeof converted === 'bigint') return converted.toString();
      return converted;
    },
    2,
  );
}

/** Prints `json` with --json, else the text lines. */
export function emit(args: ParsedArgs, json: unknown, text: () => string | string[]): void {
  if (args.json) {
    process.stdout.write(`${toJson(json)}\n`);
    return;
  }
  const lines = text();
  const body = Array.isArray(lines) ? lines.join('\n') : lines;
  if (body.length > 0) process.stdout.write(body.endsWith('\n') ? body : `${body}\n`);
}

/** A status line for humans: goes to stderr, and not at all with --json. */
export function note(args: ParsedArgs, message: string): void {
  if (!args.json) process.stderr.write(`${message}\n`);
}

/** Two-column "Key: value" text. */
export function fields(rows: Array<[string, string | number | bigint | undefined]>): string[] {
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.filter(([, v]) => v !== undefined).map(([k, v]) => `${`${k}:`.padEnd(width)}${String(v)}`);
}
