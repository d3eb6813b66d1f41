import { binding } from '../binding';
import * as C from '../generated/constants';
import { Pkcs11Error } from '../errors';
import type { FinalizeOptions, NativePKCS11 } from '../native/pkcs11';
import type { InitializeOptions, ModuleInfo } from '../native/types';
import { parsePkcs11Uri, matchesLibrary, matchesSlot, matchesToken } from '../uri/pkcs11-uri';
import type { Pkcs11Uri } from '../uri/pkcs11-uri';
import type { Session } from '../session/session';
import { Slot } from './slot';

export interface ModuleOptions {
  /** Passed in C_Initialize's pReserved (NSS softokn wants its configdir here). */
  libraryParameters?: string;
  /** C_Initialize flags; default CKF_OS_LOCKING_OK. */
  flags?: number;
  /** dlopen with RTLD_DEEPBIND (glibc only; not under AddressSanitizer). */
  deepBind?: boolean;
  /** Hand the module the addon's spinning mutexes at C_Initialize (default true; see InitializeOptions). */
  spinningMutexes?: boolean;
}

function initializeOptions(options: ModuleOptions): InitializeOptions {
  return {
    flags: options.flags ?? C.CKF_OS_LOCKING_OK,
    libraryParameters: options.libraryParameters,
    spinningMutexes: options.spinningMutexes,
  };
}

/**
 * A loaded and initialised PKCS#11 module. Closing it closes every session opened through it;
 * the module itself is finalised once the last user in the process lets go.
 */
export class Module {
  readonly native: NativePKCS11;
  readonly path: string;
  private readonly sessions = new Set<Session>();
  private closed = false;

  private constructor(
    native: NativePKCS11,
    path: string,
    private readonly options: ModuleOptions,
  ) {
    this.native = native;
    this.path = path;
  }

  static load(path: string, options: ModuleOptions = {}): Module {
    if (typeof path !== 'string' || path.length === 0) throw new TypeError('path must be a non-empty string');
    const native = new binding.PKCS11();
    native.load(path, { deepBind: options.deepBind ?? false });
    try {
      native.C_Initialize(initializeOptions(options));
    } catch (error) {
      native.close();
      throw error;
    }
    return new Module(native, path, options);
  }

  /** Loads the module named by a PKCS#11 URI's module-path query attribute. */
  static fromUri(uri: string | Pkcs11Uri, options: ModuleOptions = {}): Module {
    const parsed = typeof uri === 'string' ? parsePkcs11Uri(uri) : uri;
    const modulePath = parsed.query.modulePath;
    if (!modulePath) throw new TypeError('the PKCS#11 URI has no module-path to load');
    return Module.load(modulePath, options);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  info(): ModuleInfo {
    this.assertOpen();
    return this.native.C_GetInfo();
  }

  /** Slots, by default only those with a token present. */
  slots(options: { tokenPresent?: boolean } = {}): Slot[] {
    this.assertOpen();
    return this.native.C_GetSlotList(options.tokenPresent ?? true).map((id) => new Slot(this, id));
  }

  /**
   * The one slot whose token matches `selector` (a PKCS#11 URI or a token label). Zero or several
   * matches are errors: a signing service must never pick "the first one".
   */
  findSlot(selector: string | Pkcs11Uri): Slot {
    this.assertOpen();
    const uri: Pkcs11Uri =
      typeof selector === 'string'
        ? selector.toLowerCase().startsWith('pkcs11:')
          ? parsePkcs11Uri(selector)
          : { path: { token: selector }, query: {}, vendor: { path: {}, query: {} } }
        : selector;
    if (!matchesLibrary(uri, this.native.C_GetInfo())) {
      throw new Error(`the module at ${this.path} does not match the URI's library attributes`);
    }
    const matches = this.slots().filter((slot) => {
      const id = BigInt(slot.id);
      return matchesSlot(uri, id, slot.info()) && matchesToken(uri, slot.tokenInfo());
    });
    if (matches.length === 0) throw new Error(`no token matches ${describeSelector(selector)}`);
    if (matches.length > 1) {
      throw new Error(`${matches.length} tokens match ${describeSelector(selector)}; add token/serial attributes to choose one`);
    }
    return matches[0];
  }

  /**
   * Finalises and initialises the module again, for a device that went away and came back (a
   * network HSM whose connection was lost). Every session opened through this object is gone
   * afterwards. When other objects in the process share the module, it stays initialised for them.
   *
   * Async calls still inside the module are waited for (`drainTimeoutMs`, default 5,000, on the
   * JS thread); if they do not return, this throws (code `ERR_PKCS11_CALLS_IN_FLIGHT`) and
   * changes nothing, unless `abandonCalls` says to finalise under them.
   */
  reinitialize(options: FinalizeOptions = {}): void {
    this.assertOpen();
    try {
      this.native.C_Finalize(options);
    } catch (error) {
      // Not the module's answer (calls still inside, or bad options): nothing was finalised, and
      // the sessions are still good.
      if (!(error instanceof Pkcs11Error)) throw error;
      // The module's answer: already finalised, or the device is too far gone to say;
      // initialising again decides.
    }
    for (const session of [...this.sessions]) session.markClosed('the module was re-initialised');
    this.sessions.clear();
    this.native.C_Initialize(initializeOptions(this.options));
  }

  /** Async calls inside the module now, and calls abandoned by a forced re-initialisation that have not returned. */
  get callsInFlight(): { inside: number; abandoned: number } {
    return { inside: this.native.callsInFlight, abandoned: this.native.callsAbandoned };
  }

  /** Closes every session opened through this module, then finalises and releases it. */
  close(): void {
    if (this.closed) return;
    for (const session of [...this.sessions]) session.markClosed('its module was closed');
    this.sessions.clear();
    this.closed = true;
    this.native.close();
  }

  /** @internal */
  track(session: Session): void {
    this.sessions.add(session);
  }

  /** @internal */
  untrack(session: Session): void {
    this.sessions.delete(session);
  }

  /** @internal */
  assertOpen(): void {
    if (this.closed) throw new Error(`the PKCS#11 module ${this.path} is closed`);
  }
}

function describeSelector(selector: string | Pkcs11Uri): string {
  return typeof selector === 'string' ? `'${selector.replace(/pin-value=[^;&?]*/gi, 'pin-value=***')}'` : 'the given URI';
}
