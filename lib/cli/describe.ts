/** Plain-data views of PKCS#11 info structures, shared by the info, slots and mechanisms output. */
import * as C from '../generated/constants';
import type { Slot } from '../module/slot';
import type { TokenInfo, Version } from '../native/types';

export function version(v: Version): string {
  return `${v.major}.${v.minor}`;
}

/** The names of the CKF_ bits set in `flags`, from a table of candidates. */
export function flagNames(flags: number | bigint, table: Record<string, number>): string[] {
  const value = Number(flags);
  return Object.entries(table)
    .filter(([, bit]) => (value & bit) !== 0)
    .map(([name]) => name);
}

const TOKEN_FLAGS: Record<string, number> = {
  rng: C.CKF_RNG,
  writeProtected: C.CKF_WRITE_PROTECTED,
  loginRequired: C.CKF_LOGIN_REQUIRED,
  userPinInitialized: C.CKF_USER_PIN_INITIALIZED,
  tokenInitialized: C.CKF_TOKEN_INITIALIZED,
  userPinLocked: C.CKF_USER_PIN_LOCKED,
  soPinLocked: C.CKF_SO_PIN_LOCKED,
};

export const MECHANISM_FLAGS: Record<string, number> = {
  hw: C.CKF_HW,
  encrypt: C.CKF_ENCRYPT,
  decrypt: C.CKF_DECRYPT,
  digest: C.CKF_DIGEST,
  sign: C.CKF_SIGN,
  verify: C.CKF_VERIFY,
  generate: C.CKF_GENERATE,
  generateKeyPair: C.CKF_GENERATE_KEY_PAIR,
  wrap: C.CKF_WRAP,
  unwrap: C.CKF_UNWRAP,
  derive: C.CKF_DERIVE,
};

export function tokenSummary(info: TokenInfo) {
  return {
    label: info.label.trimEnd(),
    manufacturer: info.manufacturerID.trimEnd(),
    model: info.model.trimEnd(),
    serial: info.serialNumber.trimEnd(),
    flags: flagNames(info.flags, TOKEN_FLAGS),
  };
}

/** A slot with its token (when one is present). */
export function slotSummary(slot: Slot) {
  const info = slot.info();
  const present = (Number(info.flags) & C.CKF_TOKEN_PRESENT) !== 0;
  const token = present ? slot.tokenInfo() : undefined;
  const initialised = token !== undefined && (Number(token.flags) & C.CKF_TOKEN_INITIALIZED) !== 0;
  return {
    id: slot.id,
    description: info.slotDescription.trimEnd(),
    manufacturer: info.manufacturerID.trimEnd(),
    token: token ? tokenSummary(token) : undefined,
    // Only initialised tokens have a meaningful URI (an empty label would match nothing useful).
    uri: initialised ? slot.uri() : undefined,
  };
}
