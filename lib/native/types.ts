/**
 * The shapes the native addon takes and returns. The addon checks every argument at run time
 * (a TypeError names the argument); these types let the compiler check them first.
 */

/** CK_ULONG values: a number when ≤ 2^53-1, otherwise a bigint (never rounded). */
export type Ulong = number | bigint;
/** Slot IDs, session and object handles. */
export type Handle = Ulong;
/** Input bytes. */
export type Bytes = Buffer | Uint8Array | ArrayBuffer;
/** A PIN: UTF-8 text or raw bytes. Copied into native memory that is wiped after the call. */
export type Pin = string | Bytes;

export interface Version {
  major: number;
  minor: number;
}

export interface ModuleInfo {
  cryptokiVersion: Version;
  manufacturerID: string;
  flags: Ulong;
  libraryDescription: string;
  libraryVersion: Version;
}

export interface SlotInfo {
  slotDescription: string;
  manufacturerID: string;
  flags: Ulong;
  hardwareVersion: Version;
  firmwareVersion: Version;
}

export interface TokenInfo {
  label: string;
  manufacturerID: string;
  model: string;
  serialNumber: string;
  flags: Ulong;
  /** CK_EFFECTIVELY_INFINITE is 0; CK_UNAVAILABLE_INFORMATION is the all-ones bigint. */
  maxSessionCount: Ulong;
  sessionCount: Ulong;
  maxRwSessionCount: Ulong;
  rwSessionCount: Ulong;
  maxPinLen: Ulong;
  minPinLen: Ulong;
  totalPublicMemory: Ulong;
  freePublicMemory: Ulong;
  totalPrivateMemory: Ulong;
  freePrivateMemory: Ulong;
  hardwareVersion: Version;
  firmwareVersion: Version;
  utcTime: string;
}

export interface SessionInfo {
  slotID: Handle;
  state: Ulong;
  flags: Ulong;
  deviceError: Ulong;
}

export interface MechanismInfo {
  minKeySize: Ulong;
  maxKeySize: Ulong;
  flags: Ulong;
}

export interface FunctionListInfo {
  version: Version;
  /** How the function list was found: 'C_GetInterface' (PKCS#11 3.x) or 'C_GetFunctionList'. */
  entryPoint: string;
}

/** Attribute values, converted by the attribute's kind (CK_BBOOL, CK_ULONG, bytes, UTF-8, CK_DATE …). */
export type AttributeValue = boolean | Ulong | string | Bytes | Date | Attribute[] | Ulong[];

export interface Attribute {
  type: Ulong;
  value?: AttributeValue | null;
}

/** One attribute read back. Without a value, `status` names why (e.g. CKR_ATTRIBUTE_SENSITIVE). */
export interface AttributeResult {
  type: Ulong;
  value: boolean | Ulong | string | Buffer | Date | AttributeResult[] | Ulong[] | null;
  status?: string;
}

export interface RsaPssParameter {
  hashAlg: Ulong;
  mgf: Ulong;
  saltLen: Ulong;
}

export interface RsaOaepParameter {
  hashAlg: Ulong;
  mgf: Ulong;
  /** Defaults to CKZ_DATA_SPECIFIED. */
  source?: Ulong;
  sourceData?: Bytes;
}

export interface Ecdh1DeriveParameter {
  /** Defaults to CKD_NULL. */
  kdf?: Ulong;
  sharedData?: Bytes;
  publicData: Bytes;
}

export interface GcmParameter {
  iv: Bytes;
  aad?: Bytes;
  /** Defaults to 128. */
  tagBits?: Ulong;
  /** Defaults to the IV's length in bits. */
  ivBits?: Ulong;
}

export interface CtrParameter {
  counterBits: Ulong;
  /** Exactly 16 bytes. */
  counterBlock: Bytes;
}

export interface EddsaParameter {
  phFlag?: boolean;
  contextData?: Bytes;
}

export interface IvParameter {
  iv: Bytes;
}

export type MechanismParameter =
  | Bytes
  | Ulong
  | RsaPssParameter
  | RsaOaepParameter
  | Ecdh1DeriveParameter
  | GcmParameter
  | CtrParameter
  | EddsaParameter
  | IvParameter;

export type Mechanism = Ulong | { mechanism: Ulong; parameter?: MechanismParameter | null };

export interface LoadOptions {
  /**
   * dlopen with RTLD_DEEPBIND (glibc): the module binds to its own dependencies (e.g. the
   * system libcrypto) before the symbols Node exports (its bundled OpenSSL). Not with ASan.
   */
  deepBind?: boolean;
}

export interface InitializeOptions {
  /** CK_C_INITIALIZE_ARGS flags; default CKF_OS_LOCKING_OK. */
  flags?: Ulong;
  /** Passed in pReserved, e.g. NSS softokn's "configdir='sql:DIR' certPrefix='' …". */
  libraryParameters?: string | null;
  /**
   * With CKF_OS_LOCKING_OK, also hand the module the addon's mutex functions (default true),
   * which spin briefly before they sleep; the module may use them or its own OS locks.
   * SoftHSM2 uses them; measured gains and their limits are in ARCHITECTURE.md (the loader).
   */
  spinningMutexes?: boolean;
}

export interface LockingInfo {
  /** Every call is serialised by the binding (the module cannot lock, or no CKF_OS_LOCKING_OK). */
  serialized: boolean;
  /** The module accepted the addon's mutex functions at C_Initialize. */
  spinningMutexes: boolean;
  /** Mutexes that modules made with those functions and have not destroyed, process-wide. */
  spinningMutexesLive: number;
}

export interface KeyPairHandles {
  publicKey: Handle;
  privateKey: Handle;
}
