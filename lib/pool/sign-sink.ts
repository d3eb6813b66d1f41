import { binding } from '../binding';
import type { NativePKCS11 } from '../native/pkcs11';
import type { Bytes, Handle, Mechanism } from '../native/types';
import { SignBatch } from './sign-batch';

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

// A full batch (32 answers, native/async/engine.cc) of RSA-4096 (512 bytes and an 8-byte header)
// fits; the binding flushes a full slab early and sends a larger signature through onOne.
const SLAB_BYTES = 32 * 1024;
const HEADER_BYTES = 8;
// Short signatures (every ECDSA P-256 and Ed25519 one) are copied byte by byte, sparing the
// subarray that TypedArray#set needs.
const LOOP_COPY_MAX = 64;
// Calls are staged for a batch (sign-batch.ts) only while more than this many are outstanding.
const STAGE_ABOVE = 2;

/**
 * The tickets and the slab's views. Kept on the binding's exports rather than in this module:
 * the addon has one sink per thread, and two copies of this module that load the same addon file
 * (a bundle that inlines lib/ next to the package itself, say) must share it; otherwise the
 * second registration would hand the first one's answers to whoever holds the same ticket number
 * in the second.
 */
class SinkState {
  readonly clients: (SignSinkClient<unknown> | undefined)[] = [];
  readonly requests: unknown[] = [];
  readonly freeTickets: number[] = [];
  readonly batch = new SignBatch((ticket, error) => this.deliver(ticket, error, true));
  private slab: ArrayBuffer | undefined;
  private slabWords = new Uint32Array(0);
  private slabBytes = new Uint8Array(0);

  constructor() {
    binding.setSignSink(
      (slab, count) => this.onBatch(slab, count),
      (ticket, value, failed) => this.deliver(ticket, value, failed),
      SLAB_BYTES,
    );
  }

  take(ticket: number): [SignSinkClient<unknown>, unknown] | undefined {
    const client = this.clients[ticket];
    if (client === undefined) return undefined;
    const request = this.requests[ticket];
    this.clients[ticket] = undefined;
    this.requests[ticket] = undefined;
    this.freeTickets.push(ticket);
    return [client, request];
  }

  deliver(ticket: number, value: unknown, failed: boolean): void {
    const holder = this.take(ticket);
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

  private onBatch(slab: ArrayBuffer, count: number): void {
    if (slab !== this.slab) {
      this.slab = slab;
      this.slabWords = new Uint32Array(slab);
      this.slabBytes = new Uint8Array(slab);
    }
    const words = this.slabWords;
    const bytes = this.slabBytes;
    let at = 0;
    for (let i = 0; i < count; i++) {
      const ticket = words[at >>> 2];
      const length = words[(at >>> 2) + 1];
      at += HEADER_BYTES;
      // A Buffer of its own, not a view of the slab: the slab is rewritten by the next batch.
      const signature = Buffer.alloc(length);
      if (length <= LOOP_COPY_MAX) {
        for (let j = 0; j < length; j++) signature[j] = bytes[at + j];
      } else {
        signature.set(bytes.subarray(at, at + length));
      }
      at += (length + 3) & ~3;
      this.deliver(ticket, signature, false);
    }
  }
}

const STATE_KEY = Symbol.for('pkcs11-napi.signSink');

let cached: SinkState | undefined; // this module's binding never changes: look it up once

function sinkState(): SinkState {
  if (cached !== undefined) return cached;
  const holder = binding as unknown as { [STATE_KEY]?: SinkState };
  cached = holder[STATE_KEY];
  if (cached === undefined) {
    cached = new SinkState();
    Object.defineProperty(holder, STATE_KEY, { value: cached });
  }
  return cached;
}

/**
 * C_SignInit + C_Sign on an engine thread, like `native.sign`, answering `client` with `request`
 * instead of through a promise. Throws (a TypeError) when the binding refuses the arguments; then
 * the client hears nothing. Otherwise the client hears exactly once, also when a batch the call
 * was staged in (sign-batch.ts) is refused when it goes to the binding.
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
  const state = sinkState();
  const ticket = state.freeTickets.pop() ?? state.clients.length;
  state.clients[ticket] = client as SignSinkClient<unknown>;
  state.requests[ticket] = request;
  // With one or two calls outstanding there is nothing to batch with (1.0 a batch when measured):
  // staging would only add a microtask to the round trip that one request in flight pays in full.
  const outstanding = state.clients.length - state.freeTickets.length;
  if (outstanding > STAGE_ABOVE && state.batch.stage(native, session, mechanism, key, data, ticket)) return;
  state.batch.flush(); // what is staged goes first: a session's calls keep their order
  try {
    native.signTo(session, mechanism, key, data, ticket);
  } catch (error) {
    state.take(ticket);
    throw error;
  }
}

/** Tickets handed out and not yet answered (for tests: none may be left behind). */
export function ticketsOutstanding(): number {
  const state = sinkState();
  return state.clients.length - state.freeTickets.length;
}
