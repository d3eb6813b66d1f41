import type { NativePKCS11 } from '../native/pkcs11';
import type { Bytes, Handle, Mechanism } from '../native/types';

/**
 * The pool's signTo() calls, handed to the binding in batches (`signToBatch`). Under load the
 * answers of one batch resume many callers in one microtask checkpoint, and each resubmits: one
 * crossing into the addon per request cost the JS thread more than the request's share of
 * everything else the addon does for it (native/ops/sign_ops.cc says what). Requests staged
 * here go to the binding together in a microtask queued by the first of them, so they reach
 * the module within the same turn of the event loop, in the order they were made. sign-sink.ts
 * stages only while more than two calls are outstanding: below that there is nothing to batch.
 *
 * Only the common case is staged: handles and a mechanism type that are 32-bit numbers, and data
 * in a Uint8Array (a Buffer) of 1 to MAX_STAGED_BYTES bytes. Anything else goes to signTo() at
 * once, after what is staged (so a session's calls keep their order), and its argument errors
 * are thrown there, as before.
 */

/** Numbers per request in `fields`: session, mechanism, key, ticket, data offset, data length. */
const FIELDS = 6;
const MAX_REQUESTS = 256;
const DATA_BYTES = 64 * 1024;
// Larger inputs (a whole message for a hash-and-sign mechanism) go alone: copying them twice
// would cost more than the crossing saved.
const MAX_STAGED_BYTES = 4096;
// Short inputs (digests) are copied byte by byte, sparing the subarray TypedArray#set needs.
const LOOP_COPY_MAX = 64;

export class SignBatch {
  private readonly fields = new Float64Array(MAX_REQUESTS * FIELDS);
  private readonly data = new Uint8Array(DATA_BYTES);
  private count = 0;
  private used = 0;
  private native: NativePKCS11 | undefined;
  private scheduled = false;

  /** `refused`: a staged request the binding would not take after all; it gets that error. */
  constructor(private readonly refused: (ticket: number, error: unknown) => void) {}

  /**
   * Stages the call and returns true, or returns false when it is not of the staged kind: then
   * the caller makes it with signTo() after flush().
   */
  stage(native: NativePKCS11, session: Handle, mechanism: Mechanism, key: Handle, data: Bytes, ticket: number): boolean {
    // `x >>> 0 === x`: a whole number from 0 to 2^32 - 1 (bigints and larger numbers go alone).
    if (typeof session !== 'number' || session >>> 0 !== session) return false;
    if (typeof key !== 'number' || key >>> 0 !== key) return false;
    if (typeof mechanism !== 'number' || mechanism >>> 0 !== mechanism) return false;
    if (!(data instanceof Uint8Array)) return false;
    const length = data.length;
    // Empty data goes alone too: a detached view also reads as empty, and signTo() tells them apart.
    if (length === 0 || length > MAX_STAGED_BYTES) return false;
    if (this.count > 0 && (native !== this.native || this.count === MAX_REQUESTS || this.used + length > DATA_BYTES)) {
      this.flush();
    }
    this.native = native;
    const at = this.count * FIELDS;
    const fields = this.fields;
    fields[at] = session;
    fields[at + 1] = mechanism;
    fields[at + 2] = key;
    fields[at + 3] = ticket;
    fields[at + 4] = this.used;
    fields[at + 5] = length;
    const bytes = this.data;
    const offset = this.used;
    if (length <= LOOP_COPY_MAX) {
      for (let i = 0; i < length; i++) bytes[offset + i] = data[i];
    } else {
      bytes.set(data, offset);
    }
    this.used = offset + length;
    this.count++;
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushScheduled);
    }
    return true;
  }

  /** Hands everything staged to the binding now. */
  flush(): void {
    const count = this.count;
    if (count === 0) return;
    const native = this.native as NativePKCS11;
    const used = this.used;
    this.count = 0;
    this.used = 0;
    try {
      native.signToBatch(count, this.fields, this.data);
    } catch {
      // Refused as a whole (the module was finalized meanwhile, say): each request is made on its
      // own, so that each gets its own answer or its own error. A copy of the staged requests,
      // as a client told of its error may stage new ones.
      this.one(native, this.fields.slice(0, count * FIELDS), this.data.slice(0, used), count);
    }
  }

  private one(native: NativePKCS11, fields: Float64Array, data: Uint8Array, count: number): void {
    for (let i = 0; i < count; i++) {
      const at = i * FIELDS;
      const ticket = fields[at + 3];
      const offset = fields[at + 4];
      try {
        native.signTo(fields[at], fields[at + 1], fields[at + 2], data.subarray(offset, offset + fields[at + 5]), ticket);
      } catch (error) {
        this.refused(ticket, error);
      }
    }
  }

  private readonly flushScheduled = (): void => {
    this.scheduled = false;
    this.flush();
  };
}
