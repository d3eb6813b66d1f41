/**
 * Certificate serial numbers (RFC 5280 section 4.1.2.2): positive, at most 20 octets, unique
 * per CA. Ours are 16 octets with 126 random bits from the OS CSRNG (well above the CA/Browser
 * Forum's 64), and a registry refuses any repeat within the CA.
 */
import { randomFillSync } from 'crypto';
import { CaError } from './errors';

/** Octets of every generated serial. */
export const SERIAL_OCTETS = 16;

/**
 * Records the serials a CA has used. `claim` returns false when the serial was seen before
 * (the CA then draws another). Plug in a persistent implementation to keep serials unique
 * across restarts and CA replicas; it may be async.
 */
export interface SerialRegistry {
  claim(serialHex: string): boolean | Promise<boolean>;
}

/** In-process registry: a set of every serial this CA object issued. */
export class MemorySerialRegistry implements SerialRegistry {
  private readonly seen = new Set<string>();

  claim(serialHex: string): boolean {
    if (this.seen.has(serialHex)) return false;
    this.seen.add(serialHex);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}

// Drawing randomness in 4 KiB blocks makes a serial cost a copy instead of a syscall.
const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

/** A fresh random serial: 16 octets, first octet 0x40-0x7f so it is positive and minimally encoded. */
export function randomSerial(): Buffer {
  if (poolOffset + SERIAL_OCTETS > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const serial = Buffer.allocUnsafe(SERIAL_OCTETS);
  pool.copy(serial, 0, poolOffset, poolOffset + SERIAL_OCTETS);
  pool.fill(0, poolOffset, poolOffset + SERIAL_OCTETS); // used randomness does not linger
  poolOffset += SERIAL_OCTETS;
  serial[0] = 0x40 | (serial[0] & 0x3f);
  return serial;
}

const MAX_ATTEMPTS = 8;

/**
 * A random serial the registry has accepted. Synchronous when the registry is (the in-memory
 * one is), so the common case adds no promise round trip per certificate.
 */
export function claimSerial(registry: SerialRegistry): Buffer | Promise<Buffer> {
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const serial = randomSerial();
    const claimed = registry.claim(serial.toString('hex'));
    if (claimed === true) return serial;
    if (claimed !== false) return claimed.then((ok) => (ok ? serial : claimAsync(registry, i + 1)));
  }
  throw exhausted();
}

async function claimAsync(registry: SerialRegistry, attempt: number): Promise<Buffer> {
  for (let i = attempt; i < MAX_ATTEMPTS; i++) {
    const serial = randomSerial();
    if (await registry.claim(serial.toString('hex'))) return serial;
  }
  throw exhausted();
}

function exhausted(): CaError {
  return new CaError('SERIAL_EXHAUSTED', `the serial registry refused ${MAX_ATTEMPTS} fresh random serials in a row`);
}

/**
 * Normalizes a serial given as hex (colons allowed) or bytes to the magnitude's lower-case hex,
 * checking it is a valid certificate serial (positive, at most 20 octets).
 */
export function normalizeSerial(serial: string | Buffer): Buffer {
  let bytes: Buffer;
  if (typeof serial === 'string') {
    const hex = serial.replace(/:/g, '');
    if (!/^[0-9A-Fa-f]+$/.test(hex)) throw new CaError('INVALID_ARGUMENT', `serial "${serial}" is not hexadecimal`);
    bytes = Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
  } else if (Buffer.isBuffer(serial)) {
    bytes = serial;
  } else {
    throw new CaError('INVALID_ARGUMENT', 'a serial must be a hex string or a Buffer');
  }
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  bytes = bytes.subarray(i);
  if (bytes.length === 0 || (bytes.length === 1 && bytes[0] === 0)) throw new CaError('INVALID_ARGUMENT', 'a serial must be positive');
  // The limit applies to the INTEGER's content, which gains a 0x00 when the high bit is set.
  const octets = bytes.length + (bytes[0] & 0x80 ? 1 : 0);
  if (octets > 20) throw new CaError('INVALID_ARGUMENT', `serial is ${octets} octets; RFC 5280 allows at most 20`);
  return Buffer.from(bytes);
}
