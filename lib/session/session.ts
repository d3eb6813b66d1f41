import * as C from '../generated/constants';
import { Pkcs11Error } from '../errors';
import type { Module } from '../module/module';
import type { Slot } from '../module/slot';
import type { Bytes, Handle, Mechanism, Pin, SessionInfo } from '../native/types';
import { wrapObject, Pkcs11Object } from '../objects/object';
import { toAttributes, Template } from '../template/template';

export type UserType = 'user' | 'so' | 'contextSpecific';

const USER_TYPES: Record<UserType, number> = {
  user: C.CKU_USER,
  so: C.CKU_SO,
  contextSpecific: C.CKU_CONTEXT_SPECIFIC,
};

/** Raised when a closed (or lost) session, or an object of one, is used. */
export class SessionClosedError extends Error {
  override name = 'SessionClosedError';
}

/**
 * A session on a token. Objects found or created through it belong to it: once the session is
 * closed (by you, by its module closing, or by the token), they fail with SessionClosedError.
 */
export class Session {
  private closedBecause: string | undefined;

  constructor(
    readonly module: Module,
    readonly slot: Slot,
    readonly handle: Handle,
  ) {
    module.track(this);
  }

  get isClosed(): boolean {
    return this.closedBecause !== undefined;
  }

  /** @internal The native binding, after checking the session is still usable. */
  get native() {
    if (this.closedBecause !== undefined) throw new SessionClosedError(`the session is closed: ${this.closedBecause}`);
    return this.module.native;
  }

  info(): SessionInfo {
    return this.lost(() => this.native.C_GetSessionInfo(this.handle));
  }

  /** Logs in. Login is token-wide: CKR_USER_ALREADY_LOGGED_IN counts as success. */
  async login(pin: Pin, userType: UserType = 'user'): Promise<void> {
    try {
      await this.native.C_LoginAsync(this.handle, USER_TYPES[userType], pin);
    } catch (error) {
      if (Pkcs11Error.is(error, 'CKR_USER_ALREADY_LOGGED_IN')) return;
      throw this.noteLoss(error);
    }
  }

  async logout(): Promise<void> {
    await this.native.C_LogoutAsync(this.handle).catch((e) => Promise.reject(this.noteLoss(e)));
  }

  async setPin(oldPin: Pin, newPin: Pin): Promise<void> {
    await this.native.C_SetPINAsync(this.handle, oldPin, newPin);
  }

  /** Sets the user PIN (as the security officer). */
  async initPin(pin: Pin): Promise<void> {
    await this.native.C_InitPINAsync(this.handle, pin);
  }

  /** Finds every object matching the template (all objects for an empty one). */
  async find(template: Template = {}, limit?: number): Promise<Pkcs11Object[]> {
    const handles = await this.native
      .findObjects(this.handle, toAttributes(template), limit)
      .catch((e) => Promise.reject(this.noteLoss(e)));
    return Promise.all(handles.map((handle) => wrapObject(this, handle)));
  }

  /** The one object matching the template; none or several is an error, never "the first one". */
  async findOne(template: Template): Promise<Pkcs11Object> {
    const found = await this.find(template, 2);
    if (found.length !== 1) {
      throw new Error(`${found.length === 0 ? 'no object matches' : 'more than one object matches'} ${JSON.stringify(redact(template))}`);
    }
    return found[0];
  }

  async createObject(template: Template): Promise<Pkcs11Object> {
    const handle = await this.native.C_CreateObjectAsync(this.handle, toAttributes(template));
    return wrapObject(this, handle);
  }

  async random(length: number): Promise<Buffer> {
    return this.native.C_GenerateRandomAsync(this.handle, length);
  }

  async digest(mechanism: Mechanism, data: Bytes): Promise<Buffer> {
    return this.native.digest(this.handle, mechanism, data);
  }

  /** Closes the session. Closing one session never logs the token's other sessions out. */
  async close(): Promise<void> {
    if (this.closedBecause !== undefined) return;
    const native = this.module.native;
    this.markClosed('closed by the application');
    await native.C_CloseSessionAsync(this.handle).catch((error) => {
      if (!Pkcs11Error.is(error, 'CKR_SESSION_HANDLE_INVALID') && !Pkcs11Error.is(error, 'CKR_SESSION_CLOSED')) throw error;
    });
  }

  /** @internal */
  markClosed(reason: string): void {
    if (this.closedBecause === undefined) this.closedBecause = reason;
    this.module.untrack(this);
  }

  /** @internal Marks the session closed when the module says it is gone; returns the error. */
  noteLoss(error: unknown): unknown {
    if (Pkcs11Error.is(error, 'CKR_SESSION_HANDLE_INVALID') || Pkcs11Error.is(error, 'CKR_SESSION_CLOSED')) {
      this.markClosed(`the token closed it (${(error as Pkcs11Error).name})`);
    }
    return error;
  }

  private lost<T>(call: () => T): T {
    try {
      return call();
    } catch (error) {
      throw this.noteLoss(error);
    }
  }
}

function redact(template: Template): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(template)) {
    shown[key] = Buffer.isBuffer(value) ? value.toString('hex') : value;
  }
  return shown;
}
