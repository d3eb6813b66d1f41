/**
 * Where the user PIN comes from, in order: --pin (only with --insecure-pin-arg), --pin-source,
 * the URI's pin-source, a pin-value in the URI (only with --insecure-pin-arg), $P11_PIN, and
 * finally a no-echo prompt when stdin is a terminal. The PIN is never printed.
 */
import { readPinSource } from '../uri/pin-source';
import type { Pkcs11Uri } from '../uri/pkcs11-uri';
import type { ParsedArgs } from './args';
import { promptHidden } from './prompt';
import { UsageError } from './usage-error';

const EXPOSED =
  'a PIN on the command line is visible to other users (ps, /proc) and kept in shell history; ' +
  'use --pin-source file:/path or env:NAME, $P11_PIN, or the prompt';

/** Refuses --pin without --insecure-pin-arg; warns when it is accepted. Runs before anything else. */
export function checkPinArgument(args: ParsedArgs): void {
  if (!('pin' in args.command.options) || args.string('pin') === undefined) return;
  if (!args.flag('insecure-pin-arg')) throw new UsageError(`refusing --pin: ${EXPOSED} (or add --insecure-pin-arg)`);
  process.stderr.write(`p11: warning: ${EXPOSED}\n`);
}

export async function resolvePin(args: ParsedArgs, uri: Pkcs11Uri | undefined, tokenLabel: string): Promise<string> {
  const inline = args.string('pin');
  if (inline !== undefined) return inline; // checkPinArgument already demanded --insecure-pin-arg
  const source = args.string('pin-source') ?? uri?.query.pinSource;
  if (source !== undefined) return readPinSource(source);
  if (uri?.query.pinValue !== undefined) {
    if (!args.flag('insecure-pin-arg')) throw new UsageError(`refusing the URI's pin-value: ${EXPOSED} (or add --insecure-pin-arg)`);
    process.stderr.write(`p11: warning: ${EXPOSED}\n`);
    return uri.query.pinValue;
  }
  const fromEnv = process.env.P11_PIN;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (process.stdin.isTTY) return promptHidden(`User PIN for token '${tokenLabel}': `);
  throw new UsageError('no PIN: give --pin-source file:/path or env:NAME, set P11_PIN, or run on a terminal to be prompted');
}
