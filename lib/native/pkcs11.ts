import type {
  Attribute,
  AttributeResult,
  Bytes,
  FunctionListInfo,
  Handle,
  InitializeOptions,
  KeyPairHandles,
  LoadOptions,
  LockingInfo,
  Mechanism,
  MechanismInfo,
  ModuleInfo,
  Pin,
  SessionInfo,
  SlotInfo,
  TokenInfo,
  Ulong,
} from './types';

/**
 * The native `PKCS11` class: one loaded module, every PKCS#11 v2.40 function under its
 * standard name (synchronous), `…Async` variants that run on the addon's worker threads and
 * return promises, and one-hop calls (`sign`, `verify`, …) that do Init + the operation in a
 * single worker job. Failures throw (or reject with) a Pkcs11Error.
 */
export interface FinalizeOptions {
  drainTimeoutMs?: number;
  abandonCalls?: boolean;
}

export interface NativePKCS11 {
  load(path: string, options?: LoadOptions): void;
  /**
   * Finalizes (if this object initialized the module) and releases the module. Waits up to
   * `timeoutMs` (default 5,000) for calls still inside the module; if one is stuck (a hung HSM),
   * the module is finalized only when that call returns, and `drained` is false.
   */
  close(options?: { timeoutMs?: number }): { drained: boolean };
  readonly libraryPath: string | null;
  readonly initialized: boolean;
  /** Async calls of this object that are inside the module right now. */
  readonly callsInFlight: number;
  /** Calls given up on by `C_Finalize({ abandonCalls: true })` that have not returned yet. */
  readonly callsAbandoned: number;
  /** How the module locks, once initialised (null before). */
  readonly locking: LockingInfo | null;

  // General purpose
  C_Initialize(options?: InitializeOptions): void;
  /**
   * Waits up to `drainTimeoutMs` (default 5,000; the JS thread blocks) for async calls inside
   * the module to return first. If some do not, it throws an Error with code
   * `ERR_PKCS11_CALLS_IN_FLIGHT` and the module stays initialised, unless `abandonCalls` is
   * true: then it finalises under them (undefined behaviour for most modules; meant for a
   * network client whose calls are wedged on a dead connection).
   */
  C_Finalize(options?: FinalizeOptions): void;
  C_GetInfo(): ModuleInfo;
  C_GetFunctionList(): FunctionListInfo;

  // Slots and tokens
  C_GetSlotList(tokenPresent?: boolean): Handle[];
  C_GetSlotInfo(slotID: Handle): SlotInfo;
  C_GetTokenInfo(slotID: Handle): TokenInfo;
  C_GetMechanismList(slotID: Handle): Ulong[];
  C_GetMechanismInfo(slotID: Handle, type: Ulong): MechanismInfo;
  C_InitToken(slotID: Handle, soPin: Pin, label: string): void;
  C_InitTokenAsync(slotID: Handle, soPin: Pin, label: string): Promise<void>;
  C_InitPIN(session: Handle, pin: Pin): void;
  C_InitPINAsync(session: Handle, pin: Pin): Promise<void>;
  C_SetPIN(session: Handle, oldPin: Pin, newPin: Pin): void;
  C_SetPINAsync(session: Handle, oldPin: Pin, newPin: Pin): Promise<void>;
  /** Returns the slot with an event, or null for CKR_NO_EVENT (with CKF_DONT_BLOCK). */
  C_WaitForSlotEvent(flags?: Ulong): Handle | null;
  C_WaitForSlotEventAsync(flags?: Ulong): Promise<Handle | null>;

  // Sessions
  C_OpenSession(slotID: Handle, flags?: Ulong): Handle;
  C_OpenSessionAsync(slotID: Handle, flags?: Ulong): Promise<Handle>;
  C_CloseSession(session: Handle): void;
  C_CloseSessionAsync(session: Handle): Promise<void>;
  C_CloseAllSessions(slotID: Handle): void;
  C_GetSessionInfo(session: Handle): SessionInfo;
  C_GetOperationState(session: Handle): Buffer;
  C_SetOperationState(session: Handle, state: Bytes, encryptionKey?: Handle, authenticationKey?: Handle): void;
  /** Without a PIN: the token's protected authentication path (PIN pad). */
  C_Login(session: Handle, userType: Ulong, pin?: Pin): void;
  C_LoginAsync(session: Handle, userType: Ulong, pin?: Pin): Promise<void>;
  C_Logout(session: Handle): void;
  C_LogoutAsync(session: Handle): Promise<void>;

  // Objects
  C_CreateObject(session: Handle, template: Attribute[]): Handle;
  C_CreateObjectAsync(session: Handle, template: Attribute[]): Promise<Handle>;
  C_CopyObject(session: Handle, object: Handle, template: Attribute[]): Handle;
  C_CopyObjectAsync(session: Handle, object: Handle, template: Attribute[]): Promise<Handle>;
  C_DestroyObject(session: Handle, object: Handle): void;
  C_DestroyObjectAsync(session: Handle, object: Handle): Promise<void>;
  C_GetObjectSize(session: Handle, object: Handle): Ulong;
  C_GetAttributeValue(session: Handle, object: Handle, types: Array<Ulong | { type: Ulong }>): AttributeResult[];
  C_GetAttributeValueAsync(
    session: Handle,
    object: Handle,
    types: Array<Ulong | { type: Ulong }>,
  ): Promise<AttributeResult[]>;
  C_SetAttributeValue(session: Handle, object: Handle, template: Attribute[]): void;
  C_SetAttributeValueAsync(session: Handle, object: Handle, template: Attribute[]): Promise<void>;
  C_FindObjectsInit(session: Handle, template: Attribute[]): void;
  C_FindObjectsInitAsync(session: Handle, template: Attribute[]): Promise<void>;
  C_FindObjects(session: Handle, maxCount?: number): Handle[];
  C_FindObjectsAsync(session: Handle, maxCount?: number): Promise<Handle[]>;
  C_FindObjectsFinal(session: Handle): void;
  C_FindObjectsFinalAsync(session: Handle): Promise<void>;
  /** FindObjectsInit + FindObjects (until done or `limit`) + FindObjectsFinal in one job. */
  findObjects(session: Handle, template: Attribute[], limit?: number): Promise<Handle[]>;
  findObjectsSync(session: Handle, template: Attribute[], limit?: number): Handle[];

  // Encryption and decryption
  C_EncryptInit(session: Handle, mechanism: Mechanism, key: Handle): void;
  C_EncryptInitAsync(session: Handle, mechanism: Mechanism, key: Handle): Promise<void>;
  C_Encrypt(session: Handle, data: Bytes): Buffer;
  C_EncryptAsync(session: Handle, data: Bytes): Promise<Buffer>;
  C_EncryptUpdate(session: Handle, part: Bytes): Buffer;
  C_EncryptUpdateAsync(session: Handle, part: Bytes): Promise<Buffer>;
  C_EncryptFinal(session: Handle): Buffer;
  C_EncryptFinalAsync(session: Handle): Promise<Buffer>;
  C_DecryptInit(session: Handle, mechanism: Mechanism, key: Handle): void;
  C_DecryptInitAsync(session: Handle, mechanism: Mechanism, key: Handle): Promise<void>;
  C_Decrypt(session: Handle, data: Bytes): Buffer;
  C_DecryptAsync(session: Handle, data: Bytes): Promise<Buffer>;
  C_DecryptUpdate(session: Handle, part: Bytes): Buffer;
  C_DecryptUpdateAsync(session: Handle, part: Bytes): Promise<Buffer>;
  C_DecryptFinal(session: Handle): Buffer;
  C_DecryptFinalAsync(session: Handle): Promise<Buffer>;
  encrypt(session: Handle, mechanism: Mechanism, key: Handle, data: Bytes): Promise<Buffer>;
  encryptSync(session: Handle, mechanism: Mechanism, key: Handle, data: Bytes): Buffer;
  decrypt(session: Handle, mechanism: Mechanism, key: Handle, data: Bytes): Promise<Buffer>;
  decryptSync(session: Handle, mechanism: Mechanism, key: Handle, data: Bytes): Buffer;

  // Message digesting
  C_DigestInit(session: Handle, mechanism: Mechanism): void;
  C_DigestInitAsync(session: Handle, mechanism: Mechanism): Promise<void>;
  C_Digest(session: Handle, data: Bytes): Buffer;
  C_DigestAsync(session: Handle, data: Bytes): Promise<Buffer>;
  C_DigestUpdate(session: Handle, part: Bytes): void;
  C_DigestUpdateAsync(session: Handle, part: Bytes): Promise<void>;
  C_DigestKey(session: Handle, key: Handle): void;
  C_DigestKeyAsync(session: Handle, key: Handle): Promise<void>;
  C_DigestFinal(session: Handle): Buffer;
  C_DigestFinalAsync(session: Handle): Promise<Buffer>;
  digest(session: Handle, mechanism: Mechanism, data: Bytes): Promise<Buffer>;
  digestSync(session: Handle, mechanism: Mechanism, data: Bytes): Buffer;

  // Signing and MACing
  C_SignInit(session: Handle, mechanism: Mechanism, key: Handle): void;
  C_SignInitAsync(session: Handle, mechanism: Mechanism, key: Handle): Promise<void>;
  C_Sign(session: Handle, data: Bytes): Buffer;
  C_SignAsync(session: Handle, data: Bytes): Promise<Buffer>;
  C_SignUpdate(session: Handle, part: Bytes): void;
  C_SignUpdateAsync(session: Handle, part: Bytes): Promise<void>;
  C_SignFinal(session: Handle): Buffer;
  C_SignFinalAsync(session: Handle): Promise<Buffer>;
  C_SignRecoverInit(session: Handle, mechanism: Mechanism, key: Handle): void;
  C_SignRecoverInitAsync(session: Handle, mechanism: Mechanism, key: Handle): Promise<void>;
  C_SignRecover(session: Handle, data: Bytes): Buffer;
  C_SignRecoverAsync(session: Handle, data: Bytes): Promise<Buffer>;
  /** C_SignInit + C_Sign in one worker job: the JS thread does no PKCS#11 work. */
  sign(session: Handle, mechanism: Mechanism, key: Handle, data: Bytes): Promise<Buffer>;
  signSync(session: Handle, mechanism: Mechanism, key: Handle, data: Bytes): Buffer;
  /**
   * sign() answering through the completion sink (setSignSink) under `ticket`, an integer from 0
   * to 2^32 - 1, instead of through a promise: the signing pool's path (lib/pool/sign-sink.ts).
   * Arguments are checked at once (a TypeError naming the argument, from `signTo`); a module
   * failure reaches the sink as a Pkcs11Error whose function is `sign`, like sign()'s.
   */
  signTo(session: Handle, mechanism: Mechanism, key: Handle, data: Bytes, ticket: number): void;
  /**
   * `count` signTo() calls at once (lib/pool/sign-batch.ts): `fields` holds six numbers a request
   * (session, mechanism type, key, ticket, and the offset and length of its data in `data`); the
   * mechanism takes no parameter. All are checked first: a TypeError naming the bad field, and
   * then none was submitted.
   */
  signToBatch(count: number, fields: Float64Array, data: Uint8Array): void;

  // Verifying signatures and MACs: true when valid, false for CKR_SIGNATURE_INVALID / _LEN_RANGE
  C_VerifyInit(session: Handle, mechanism: Mechanism, key: Handle): void;
  C_VerifyInitAsync(session: Handle, mechanism: Mechanism, key: Handle): Promise<void>;
  C_Verify(session: Handle, data: Bytes, signature: Bytes): boolean;
  C_VerifyAsync(session: Handle, data: Bytes, signature: Bytes): Promise<boolean>;
  C_VerifyUpdate(session: Handle, part: Bytes): void;
  C_VerifyUpdateAsync(session: Handle, part: Bytes): Promise<void>;
  C_VerifyFinal(session: Handle, signature: Bytes): boolean;
  C_VerifyFinalAsync(session: Handle, signature: Bytes): Promise<boolean>;
  C_VerifyRecoverInit(session: Handle, mechanism: Mechanism, key: Handle): void;
  C_VerifyRecoverInitAsync(session: Handle, mechanism: Mechanism, key: Handle): Promise<void>;
  C_VerifyRecover(session: Handle, signature: Bytes): Buffer;
  C_VerifyRecoverAsync(session: Handle, signature: Bytes): Promise<Buffer>;
  verify(session: Handle, mechanism: Mechanism, key: Handle, data: Bytes, signature: Bytes): Promise<boolean>;
  verifySync(session: Handle, mechanism: Mechanism, key: Handle, data: Bytes, signature: Bytes): boolean;

  // Dual-function cryptographic operations
  C_DigestEncryptUpdate(session: Handle, part: Bytes): Buffer;
  C_DigestEncryptUpdateAsync(session: Handle, part: Bytes): Promise<Buffer>;
  C_DecryptDigestUpdate(session: Handle, part: Bytes): Buffer;
  C_DecryptDigestUpdateAsync(session: Handle, part: Bytes): Promise<Buffer>;
  C_SignEncryptUpdate(session: Handle, part: Bytes): Buffer;
  C_SignEncryptUpdateAsync(session: Handle, part: Bytes): Promise<Buffer>;
  C_DecryptVerifyUpdate(session: Handle, part: Bytes): Buffer;
  C_DecryptVerifyUpdateAsync(session: Handle, part: Bytes): Promise<Buffer>;

  // Key management (private/secret templates default to sensitive, non-extractable)
  C_GenerateKey(session: Handle, mechanism: Mechanism, template: Attribute[]): Handle;
  C_GenerateKeyAsync(session: Handle, mechanism: Mechanism, template: Attribute[]): Promise<Handle>;
  C_GenerateKeyPair(
    session: Handle,
    mechanism: Mechanism,
    publicKeyTemplate: Attribute[],
    privateKeyTemplate: Attribute[],
  ): KeyPairHandles;
  C_GenerateKeyPairAsync(
    session: Handle,
    mechanism: Mechanism,
    publicKeyTemplate: Attribute[],
    privateKeyTemplate: Attribute[],
  ): Promise<KeyPairHandles>;
  C_WrapKey(session: Handle, mechanism: Mechanism, wrappingKey: Handle, key: Handle): Buffer;
  C_WrapKeyAsync(session: Handle, mechanism: Mechanism, wrappingKey: Handle, key: Handle): Promise<Buffer>;
  C_UnwrapKey(
    session: Handle,
    mechanism: Mechanism,
    unwrappingKey: Handle,
    wrappedKey: Bytes,
    template: Attribute[],
  ): Handle;
  C_UnwrapKeyAsync(
    session: Handle,
    mechanism: Mechanism,
    unwrappingKey: Handle,
    wrappedKey: Bytes,
    template: Attribute[],
  ): Promise<Handle>;
  C_DeriveKey(session: Handle, mechanism: Mechanism, baseKey: Handle, template: Attribute[]): Handle;
  C_DeriveKeyAsync(session: Handle, mechanism: Mechanism, baseKey: Handle, template: Attribute[]): Promise<Handle>;

  // Random numbers
  C_SeedRandom(session: Handle, seed: Bytes): void;
  C_SeedRandomAsync(session: Handle, seed: Bytes): Promise<void>;
  C_GenerateRandom(session: Handle, length: number): Buffer;
  C_GenerateRandomAsync(session: Handle, length: number): Promise<Buffer>;

  // Legacy parallel function management (v2.40 modules answer CKR_FUNCTION_NOT_PARALLEL)
  C_GetFunctionStatus(session: Handle): void;
  C_CancelFunction(session: Handle): void;
}

/** The async engine's state (see ARCHITECTURE.md, "The async engine"). */
export interface EngineInfo {
  /**
   * Worker threads running (the first async call starts one; a thread stuck in an abandoned call
   * ends when it returns, and one beyond one per core ends once idle for `setThreadIdleTimeout`).
   */
  threads: number;
  /** The thread cap (setThreadCount; 0 = not chosen yet: max(8, 2 × cores) once the engine starts). */
  maxThreads: number;
  /** Calls allowed to run at once now: the cores while the module's calls compute, else the cap. */
  callLimit: number;
  /** Sampled calls do not wait (a local, CPU-bound module; the first guess on Linux): one call per core. */
  computeBound: boolean;
  /** Moving share of sampled calls that waited: gave up the core and were off it most of the call (0..1). */
  blockedShare: number;
  /** How often computeBound has flipped. */
  limitChanges: number;
  /**
   * The most calls that ran at once since the engine started or the last resetPeak, not counting
   * calls that had run past the long-call allowance (5 ms) by then.
   */
  peakRunning: number;
  /**
   * Moving average of a call's time inside the module, µs (1/16 per call, every kind of call;
   * 0 before the first). The time until the answer reaches JS adds the hand-overs to it.
   */
  averageCallMicros: number;
  /** Wake-ups of the JS thread to settle finished calls (one settles a batch), since the engine started. */
  jsWakeups: number;
  /** Wake-ups of the engine's flusher thread (it delivers batches no worker delivers), since the engine started. */
  flusherWakeups: number;
  /**
   * The worker threads run under SCHED_BATCH (Linux): treated as CPU-bound background work, a woken
   * worker does not preempt the JS thread. False before the first async call and where there is none.
   */
  batchScheduled: boolean;
  /**
   * How much higher than the thread that started them the worker threads set their nice value
   * (Linux; `setWorkerNice`, 0 by default). 0 before the first async call, elsewhere, or when refused.
   */
  workerNice: number;
  /** Whether a worker yields its core between calls while computing calls are queued (`setWorkerYield`, true by default). */
  workerYield: boolean;
  /** How many times a worker did, since the engine started. */
  workerYields: number;
  /**
   * Calls sampled for whether they waited (Linux), since the engine started: a thread samples a
   * call when at least 4 calls and 1 ms have passed since its last sample.
   */
  probes: number;
  /** Threads that ended after idling for the idle timeout (`setThreadIdleTimeout`), since the engine started. */
  threadsRetired: number;
}

export interface NativeBinding {
  PKCS11: new () => NativePKCS11;
  setErrorClass(errorClass: new (message: string) => Error): void;
  /** Worker threads for async calls; only before the first async call. */
  setThreadCount(count: number): void;
  /** How much higher the worker threads set their nice value, 0–19 (Linux); only before the first async call. */
  setWorkerNice(increment: number): void;
  /** Whether a worker yields its core between calls while jobs are queued; only before the first async call. */
  setWorkerYield(enabled: boolean): void;
  /** How long (ms) a worker thread beyond one per core may idle before it ends; only before the first async call. */
  setThreadIdleTimeout(ms: number): void;
  engineInfo(options?: { resetPeak?: boolean }): EngineInfo;
  /** Busy-poll support (lib/pool/busy-poll.ts): completions wait for pollCompletions() meanwhile. */
  startCompletionPolling(): void;
  /** Settles the finished calls; with none ready, first waits up to `spinMicros` (≤ 1000) for one. */
  pollCompletions(spinMicros?: number): number;
  stopCompletionPolling(): void;
  /**
   * Where signTo() answers (one registration per thread; lib/pool/sign-sink.ts owns it): after
   * each batch, onBatch(slab, count) with `count` records of [ticket, length] (native-endian
   * uint32) and the signature's bytes, padded to 4; failures, and signatures larger than the
   * slab, through onOne(ticket, value, failed). Both are called synchronously and must copy
   * what they need: the slab is rewritten by the next batch.
   */
  setSignSink(
    onBatch: (slab: ArrayBuffer, count: number) => void,
    onOne: (ticket: number, value: unknown, failed: boolean) => void,
    slabBytes: number,
  ): void;
  napiVersion: number;
}
