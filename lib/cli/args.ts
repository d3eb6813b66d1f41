/**
 * Parsing a command's arguments with node:util parseArgs, and typed access to the result.
 * Every accessor turns a bad value into a UsageError naming the option.
 */
import { parseArgs } from 'node:util';

import type { Command } from './command';
import { UsageError } from './usage-error';

type Value = string | boolean | string[] | undefined;

export class ParsedArgs {
  constructor(
    readonly command: Command,
    private readonly values: Record<string, Value>,
    readonly positionals: string[],
  ) {}

  get json(): boolean {
    return this.values.json === true;
  }

  flag(name: string): boolean {
    return this.values[name] === true;
  }

  string(name: string): string | undefined {
    const value = this.values[name];
    return typeof value === 'string' ? value : undefined;
  }

  required(name: string): string {
    const value = this.string(name);
    if (value === undefined || value === '') throw new UsageError(`${this.command.name} needs --${name}`);
    return value;
  }

  all(name: string): string[] {
    const value = this.values[name];
    return Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
  }

  /** An integer option within [min, max], or the fallback when absent. */
  integer(name: string, fallback: number, min: number, max: number): number {
    const text = this.string(name);
    return text === undefined ? fallback : toInteger(`--${name}`, text, min, max);
  }

  positional(index: number): string | undefined {
    return this.positionals[index];
  }

  /** Refuses positionals beyond what the command takes. */
  atMost(count: number): void {
    if (this.positionals.length > count) {
      throw new UsageError(`unexpected argument '${this.positionals[count]}' for ${this.command.name}`);
    }
  }
}

export function toInteger(what: string, text: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`${what} must be a whole number, got '${text}'`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${what} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Parses argv for a command; unknown options and missing values are usage errors. */
export function parseCommandArgs(command: Command, argv: string[]): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(command.options)) {
    // parseArgs rejects keys present with an undefined value, so only set what is given.
    options[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}), ...(spec.multiple ? { multiple: true } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return new ParsedArgs(command, values as Record<string, Value>, positionals);
  } catch (error) {
    // parseArgs reports ERR_PARSE_ARGS_* TypeErrors; they are about the caller's input.
    const code = (error as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) throw new UsageError((error as Error).message);
    throw error;
  }
}
