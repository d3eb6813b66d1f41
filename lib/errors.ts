import { CKR_NAMES } from './generated/constants';

/**
 * A PKCS#11 function returned something other than CKR_OK.
 * `code` is the CK_RV number, `name` its CKR_ name, `function` the PKCS#11 function.
 * Instances are created by the native binding (it is handed this class at load time).
 */
export class Pkcs11Error extends Error {
  /** The CK_RV value, e.g. 0xa0. */
  declare code: number;
  /** The CKR_ name, e.g. 'CKR_PIN_INCORRECT' (or CKR_VENDOR_0x… for vendor codes). */
  declare name: string;
  /** The PKCS#11 function (or one-hop call) that failed, e.g. 'C_Login'. */
  declare function: string;

  constructor(message: string) {
    super(message);
  }

  /** True when `error` is a Pkcs11Error carrying the CKR_ name (or number) given. */
  static is(error: unknown, code?: string | number): error is Pkcs11Error {
    if (!(error instanceof Pkcs11Error)) return false;
    if (code === undefined) return true;
    return typeof code === 'number' ? error.code === code : error.name === code;
  }
}

/** The CKR_ name of a return value (CKR_VENDOR_0x… / CKR_0x… when unknown). */
export function rvName(rv: number): string {
  const known = CKR_NAMES[rv];
  if (known !== undefined) return known;
  const hex = rv.toString(16).toUpperCase().padStart(8, '0');
  return rv >= 0x80000000 ? `CKR_VENDOR_0x${hex}` : `CKR_0x${hex}`;
}
