/**
 * From a command's arguments to a loaded module, one chosen token, and a (logged-in) session.
 * Everything opened here is closed by `withToken`, error or not.
 */
import * as C from '../generated/constants';
import { Module } from '../module/module';
import type { Slot } from '../module/slot';
import type { Session } from '../session/session';
import { matchesLibrary, matchesSlot, matchesToken, parsePkcs11Uri, redactPkcs11Uri } from '../uri/pkcs11-uri';
import type { Pkcs11Uri } from '../uri/pkcs11-uri';
import type { ParsedArgs } from './args';
import { resolvePin } from './pin';
import { UsageError } from './usage-error';

/** Parses a URI argument; a malformed one is a usage error. */
export function parseUriArgument(text: string, what: string): Pkcs11Uri {
  try {
    return parsePkcs11Uri(text);
  } catch (error) {
    throw new UsageError(`${what} is not a valid PKCS#11 URI: ${(error as Error).message}`);
  }
}

/** The URI argument at `index`, parsed, or undefined when it is not given. */
export function optionalUriArgument(args: ParsedArgs, index: number, what = 'TOKEN-URI'): Pkcs11Uri | undefined {
  const text = args.positional(index);
  return text === undefined ? undefined : parseUriArgument(text, what);
}

export function modulePath(args: ParsedArgs, uri: Pkcs11Uri | undefined): string {
  const path = args.string('module') ?? uri?.query.modulePath ?? process.env.PKCS11_MODULE;
  if (path === undefined || path === '') {
    throw new UsageError('no PKCS#11 module: give --module PATH, put module-path in the URI, or set PKCS11_MODULE');
  }
  return path;
}

export function loadModule(args: ParsedArgs, uri: Pkcs11Uri | undefined): Module {
  return Module.load(modulePath(args, uri));
}

function initialized(slot: Slot): boolean {
  return (Number(slot.tokenInfo().flags) & C.CKF_TOKEN_INITIALIZED) !== 0;
}

/**
 * The one initialised token the URI selects (any initialised token when the URI names none).
 * Uninitialised tokens, such as SoftHSM2's spare slot, are never chosen; neither is "the first"
 * of several matches.
 */
export function selectSlot(module: Module, uri: Pkcs11Uri | undefined): Slot {
  const wanted: Pkcs11Uri = uri ?? parsePkcs11Uri('pkcs11:');
  if (!matchesLibrary(wanted, module.info())) throw new Error(`the module ${module.path} does not match the URI's library attributes`);
  const slots = module.slots().filter(initialized);
  const matches = slots.filter((s) => matchesSlot(wanted, BigInt(s.id), s.info()) && matchesToken(wanted, s.tokenInfo()));
  const shown = uri ? `'${redactPkcs11Uri(String(uri))}'` : 'no URI';
  const labels = slots.map((s) => `'${s.tokenInfo().label}'`).join(', ') || 'none';
  if (matches.length === 0) throw new Error(`no initialised token matches ${shown} (tokens: ${labels})`);
  if (matches.length > 1) throw new UsageError(`${matches.length} tokens match ${shown} (${labels}): name one with token=LABEL in a URI`);
  return matches[0];
}

export interface TokenHandle {
  module: Module;
  slot: Slot;
  session: Session;
}

/** Loads the module, runs `work`, and closes the module afterwards. */
export async function withModule<T>(args: ParsedArgs, uri: Pkcs11Uri | undefined, work: (module: Module) => T | Promise<T>): Promise<T> {
  const module = loadModule(args, uri);
  try {
    return await work(module);
  } finally {
    module.close();
  }
}

/**
 * Loads the module, picks the token, opens a session (logged in when `login`), runs `work`,
 * and closes everything afterwards.
 */
export function withToken<T>(
  args: ParsedArgs,
  uri: Pkcs11Uri | undefined,
  options: { login: boolean },
  work: (token: TokenHandle) => Promise<T>,
): Promise<T> {
  return withModule(args, uri, async (module) => {
    const slot = selectSlot(module, uri);
    const session = await slot.openSession();
    try {
      if (options.login) await session.login(await resolvePin(args, uri, slot.tokenInfo().label.trimEnd()));
      return await work({ module, slot, session });
    } finally {
      await session.close().catch(() => undefined);
    }
  });
}
