import * as C from '../generated/constants';
import type { Handle, MechanismInfo, Pin, SlotInfo, TokenInfo } from '../native/types';
import { Session } from '../session/session';
import { formatPkcs11Uri } from '../uri/pkcs11-uri';
import type { Module } from './module';

export interface MechanismEntry {
  type: number;
  /** CKM_ name, when the constant table knows it. */
  name: string;
  info: MechanismInfo;
}

/** A slot of a module; most of what it offers needs a token present. */
export class Slot {
  constructor(
    readonly module: Module,
    readonly id: Handle,
  ) {}

  info(): SlotInfo {
    this.module.assertOpen();
    return this.module.native.C_GetSlotInfo(this.id);
  }

  tokenInfo(): TokenInfo {
    this.module.assertOpen();
    return this.module.native.C_GetTokenInfo(this.id);
  }

  /** The token's mechanisms with their key sizes and flags. */
  mechanisms(): MechanismEntry[] {
    this.module.assertOpen();
    return this.module.native.C_GetMechanismList(this.id).map((type) => {
      const number = Number(type);
      return {
        type: number,
        name: C.CKM_NAMES[number] ?? `CKM_0x${number.toString(16)}`,
        info: this.module.native.C_GetMechanismInfo(this.id, type),
      };
    });
  }

  hasMechanism(type: number): boolean {
    this.module.assertOpen();
    return this.module.native.C_GetMechanismList(this.id).some((m) => Number(m) === type);
  }

  /** Initialises (erases) the token. */
  async initToken(soPin: Pin, label: string): Promise<void> {
    this.module.assertOpen();
    await this.module.native.C_InitTokenAsync(this.id, soPin, label);
  }

  /** Opens a session: read-write unless `readOnly` is set. */
  async openSession(options: { readOnly?: boolean } = {}): Promise<Session> {
    this.module.assertOpen();
    const flags = options.readOnly ? 0 : C.CKF_RW_SESSION;
    const handle = await this.module.native.C_OpenSessionAsync(this.id, flags);
    return new Session(this.module, this, handle);
  }

  /** The token's PKCS#11 URI (token, manufacturer, serial, model). */
  uri(): string {
    const token = this.tokenInfo();
    return formatPkcs11Uri({
      path: { token: token.label, manufacturer: token.manufacturerID, serial: token.serialNumber, model: token.model },
      query: {},
      vendor: { path: {}, query: {} },
    });
  }
}
