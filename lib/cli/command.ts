/**
 * What a p11 command is: its name, options and help text, and the function that runs it.
 * Options are declared once and feed both node:util parseArgs and the --help text, so the two
 * cannot drift apart.
 */
import type { ParsedArgs } from './args';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** The option may be given several times (values are collected in order). */
  multiple?: boolean;
  /** Placeholder for the value in --help, e.g. 'PATH'. */
  value?: string;
  description: string;
}

export type OptionSet = Record<string, OptionSpec>;

export interface Command {
  /** 'objects', or 'ca init' for a subcommand. */
  name: string;
  /** One line for `p11 --help`. */
  summary: string;
  /** Synopsis lines, without the leading 'p11 '. */
  usage: string[];
  options: OptionSet;
  /** Free text after the options in --help. */
  details?: string;
  /** Passes the arguments through untouched instead of parsing them (bench). */
  raw?: boolean;
  /** Resolves to the exit status. */
  run(args: ParsedArgs): Promise<number>;
}

/** Options every command accepts. */
export const OUTPUT_OPTIONS: OptionSet = {
  json: { type: 'boolean', description: 'print machine-readable JSON on stdout' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

/** Where the PKCS#11 module comes from. */
export const MODULE_OPTIONS: OptionSet = {
  module: {
    type: 'string',
    value: 'PATH',
    description: 'PKCS#11 module to load (default: the URI\'s module-path, then $PKCS11_MODULE)',
  },
};

/**
 * Where the user PIN comes from. --pin exists only to be refused: a PIN in argv is visible in
 * `ps` and shell history, so it needs --insecure-pin-arg as well.
 */
export const PIN_OPTIONS: OptionSet = {
  'pin-source': {
    type: 'string',
    value: 'SRC',
    description: 'read the user PIN from file:/path, a path, or env:NAME (default: $P11_PIN, then a prompt)',
  },
  pin: { type: 'string', value: 'PIN', description: 'the PIN itself: refused unless --insecure-pin-arg is given too' },
  'insecure-pin-arg': { type: 'boolean', description: 'accept --pin (or a pin-value in a URI) despite the exposure' },
};
