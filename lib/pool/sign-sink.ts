import { binding } from '../binding';
import type { NativePKCS11 } from '../native/pkcs11';
import type { Bytes, Handle, Mechanism } from '../native/types';

/**
 * The pool's signatures without a promise each (native/async/completion_sink.h). `signTo` hands
 * the binding a ticket; after each batch of completions the binding calls `onBatch` once with a
 * slab of "ticket, length, bytes" records, and this module copies each signature into a Buffer
 * of its own and hands it to whoever holds the ticket. Errors arrive one at a time (`onOne`).
 */
export interface SignSinkClient<R> {
  signed(request: R, signature: Buffer): void;
  signFailed(request: R, error: unknown): void;
}

// 16 answers of RSA-4096 (512 bytes and an 8-byte header) fit; the binding flushes a full slab
// early and sends a larger signature through onOne.
const SLAB_BYTES = 16 * 1024;
const HEADER_BYTES = 8;
// Up to this length a byte loop beats creating a subarray for TypedArray#set.
const LOOP_COPY_MAX = 64;

const clients: (SignSinkClient<unknown> | undefined)[] = [];
const requests: unknown[] = [];
const freeTickets: number[] = [];
let registered = false;
let slab: ArrayBuffer | undefined;
let slabWords = new Uint32Array(0);
let slabBytes = new Uint8Array(0);

function take(ticket: number): [SignSinkClient<unknown>, unknown] | undefined {
  const client = clients[ticket];
  if (client === undefined) return undefined;
  const request = requests[ticket];
  clients[ticket] = undefined;
  requests[ticket] = undefined;
  freeTickets.push(ticket);
  return [client, request];
}

function deliver(ticket: number, value: unknown, failed: boolean): void {
  const holder = take(ticket);
  if (holder === undefined) return;
  const [client, request] = holder;
  try {
    if (failed) client.signFailed(request, value);
    else client.signed(request, value as Buffer);
  } catch (error) {
    // One client's bug must not cost the rest of the batch its answers.
    queueMicrotask(() => {
      throw error;
    });
  }
}

function onBatch(from: ArrayBuffer, count: number): void {
  if (from !== slab) {
    slab = from;
    slabWords = new Uint32Array(from);
    slabBytes = new Uint8Array(from);
  }
  let at = 0;
  for (let i = 0; i < count; i++) {
    const ticket = slabWords[at >>> 2];
    const length = slabWords[(at >>> 2) + 1];
    at += HEADER_BYTES;
    // A Buffer of its own, not a view of the slab: the slab is rewritten by the next batch.
    const signature = Buffer.alloc(length);
    if (length <= LOOP_COPY_MAX) {
      for (let j = 0; j < length; j++) signature[j] = slabBytes[at + j];
    } else {
      signature.set(slabBytes.subarray(at, at + length));
    }
    at += (length + 3) & ~3;
    deliver(ticket, signature, false);
  }
}

function onOne(ticket: number, value: unknown, failed: boolean): void {
  deliver(ticket, value, failed);
}

/**
 * C_SignInit + C_Sign on an engine thread, like `native.sign`, answering `client` with `request`
 * instead of through a promise. Throws (a TypeError) when the binding refuses the arguments; then
 * the client hears nothing.
 */
export function signTo<R>(
  native: NativePKCS11,
  session: Handle,
  mechanism: Mechanism,
  key: Handle,
  data: Bytes,
  client: SignSinkClient<R>,
  request: R,
): void {
  if (!registered) {
    binding.setSignSink(onBatch, onOne, SLAB_BYTES);
    registered = true;
  }
  const ticket = freeTickets.pop() ?? clients.length;
  clients[ticket] = client as SignSinkClient<unknown>;
  requests[ticket] = request;
  try {
    native.signTo(session, mechanism, key, data, ticket);
  } catch (error) {
    take(ticket);
    throw error;
  }
}

/** Tickets handed out and not yet answered (for tests: none may be left behind). */
export function ticketsOutstanding(): number {
  return clients.length - freeTickets.length;
}
