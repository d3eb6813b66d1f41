/**
 * What the benchmark signs with: a throw-away SoftHSM2 token it makes itself (temp dir, its own
 * SOFTHSM2_CONF, softhsm2-util --init-token, fresh keys), optionally served through
 * `p11-kit server` (--remote), or a module, token and keys the user names.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { generateKeyPair, Module, provisionSoftHsmToken, SigningPool } from '../lib';
import * as C from '../lib/generated/constants';
import { readPinSource } from '../lib/uri/pin-source';
import { describeKey, KeyKind } from './mechanisms';
import type { Target } from './types';

export interface BenchKey {
  label: string;
  kind: KeyKind;
  spki: Buffer;
  /** "EC P-256", "RSA-2048", … read from the key itself. */
  description: string;
}

export interface Provisioned {
  target: Target;
  keys: Partial<Record<KeyKind, BenchKey>>;
  /** The token's mechanism list: mechanisms it lacks are skipped, not failed. */
  mechanisms: Set<number>;
  /** Environment for every process that loads the module (SOFTHSM2_CONF, P11_KIT_SERVER_ADDRESS). */
  env: NodeJS.ProcessEnv;
  /** What is being measured, for the report: module, library version, setup. */
  description: string;
  cleanup(): Promise<void>;
}

const P11_KIT_CLIENT_PATHS = [
  '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so',
  '/usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so',
  '/usr/lib64/pkcs11/p11-kit-client.so',
  '/usr/lib/pkcs11/p11-kit-client.so',
];

function firstExisting(paths: string[], what: string): string {
  const found = paths.find((p) => fs.existsSync(p));
  if (!found) throw new Error(`${what} not found; tried:\n  ${paths.join('\n  ')}`);
  return found;
}

const TOKEN_LABEL = 'pkcs11-napi-bench';
const SO_PIN = 'bench-so-pin';
const USER_PIN = 'bench-user-pin';
const KEY_LABELS: Record<KeyKind, string> = { ec: 'bench-ec-p256', rsa: 'bench-rsa-2048', ed25519: 'bench-ed25519' };

/** Reads a key's type and public half through a one-session pool (which also proves it is unique). */
async function describeBenchKey(module: Module, target: Target, label: string): Promise<BenchKey> {
  const pool = await SigningPool.open({ module, token: target.token, key: { label }, pin: target.pin, size: 1 });
  try {
    return { label, kind: pool.keyType, spki: pool.publicKeySpki, description: describeKey(pool.publicKeySpki) };
  } finally {
    await pool.close();
  }
}

function libraryDescription(module: Module): string {
  const info = module.info();
  const version = `${info.libraryVersion.major}.${info.libraryVersion.minor}`;
  return `${info.libraryDescription.trim()} ${version} (${info.manufacturerID.trim()})`;
}

/** A fresh SoftHSM2 token with one key of each kind asked for; with `remote`, behind p11-kit server. */
export async function provisionSoftHsm(options: { kinds: KeyKind[]; remote: boolean }): Promise<Provisioned> {
  // The package's own provisioner: a temp directory with its softhsm2.conf and the token.
  const token = provisionSoftHsmToken({ label: TOKEN_LABEL, soPin: SO_PIN, userPin: USER_PIN });
  const softhsm = token.modulePath;
  const dir = token.dir;
  let server: ChildProcess | undefined;
  const cleanup = async () => {
    if (server) await stopServer(server);
    token.cleanup();
  };
  try {
    // The module reads SOFTHSM2_CONF in C_Initialize: this process (key generation) and every
    // load process must see it.
    process.env.SOFTHSM2_CONF = token.conf;
    const target: Target = { modulePath: softhsm, token: TOKEN_LABEL, pin: USER_PIN };
    const module = Module.load(softhsm);
    const keys: Partial<Record<KeyKind, BenchKey>> = {};
    let description: string;
    try {
      const slot = module.findSlot(TOKEN_LABEL);
      const session = await slot.openSession();
      await session.login(USER_PIN);
      const mechanisms = new Set(slot.mechanisms().map((m) => m.type));
      for (const kind of new Set(options.kinds)) {
        if (kind === 'ed25519' && !mechanisms.has(C.CKM_EC_EDWARDS_KEY_PAIR_GEN)) continue;
        const label = KEY_LABELS[kind];
        const spec =
          kind === 'ec'
            ? ({ algorithm: 'ec', curve: 'P-256' } as const)
            : kind === 'rsa'
              ? ({ algorithm: 'rsa', modulusBits: 2048 } as const)
              : ({ algorithm: 'ed25519' } as const);
        await generateKeyPair(session, spec, { label });
      }
      await session.close();
      for (const kind of new Set(options.kinds)) {
        if (kind === 'ed25519' && !mechanisms.has(C.CKM_EC_EDWARDS_KEY_PAIR_GEN)) continue;
        keys[kind] = await describeBenchKey(module, target, KEY_LABELS[kind]);
      }
      description = `${libraryDescription(module)}, temporary token in ${dir}`;
    } finally {
      module.close();
    }
    if (!options.remote) {
      return { target, keys, mechanisms: await mechanismList(target), env: { ...process.env }, description, cleanup };
    }

    const started = await startP11KitServer(softhsm, TOKEN_LABEL, path.join(dir, 'p11-kit.sock'));
    server = started.server;
    process.env.P11_KIT_SERVER_ADDRESS = started.address;
    const client = firstExisting(P11_KIT_CLIENT_PATHS, 'p11-kit-client.so');
    const remoteTarget: Target = { ...target, modulePath: client };
    // Through the client the keys have other handles, but the same labels and public halves.
    return {
      target: remoteTarget,
      keys,
      mechanisms: await mechanismList(remoteTarget),
      env: { ...process.env },
      description: `p11-kit-client.so → p11-kit server (${started.address}) → ${description}`,
      cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** Child processes of `pid` (Linux /proc; elsewhere none are seen). */
function childrenOf(pid: number): number[] {
  let names: string[];
  try {
    names = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
  return names
    .map(Number)
    .filter((child) => {
      try {
        const stat = fs.readFileSync(`/proc/${child}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    });
}

/**
 * Stops p11-kit server. Its per-connection children end when their clients disconnect (the load
 * processes are stopped first); waiting for that lets the server reap them, so none is left
 * orphaned. Then SIGTERM, and SIGKILL if it lingers.
 */
async function stopServer(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null || server.pid === undefined) return;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  for (let waited = 0; waited < 3000 && childrenOf(server.pid).length > 0; waited += 50) await sleep(50);
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  server.kill('SIGTERM');
  const timer = setTimeout(() => server.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/**
 * `p11-kit server -f -n SOCKET "pkcs11:token=LABEL"` exports one token over a Unix socket and
 * prints the P11_KIT_SERVER_ADDRESS to use. It forks one server process per client connection.
 */
async function startP11KitServer(
  provider: string,
  token: string,
  socket: string,
): Promise<{ server: ChildProcess; address: string }> {
  const server = spawn('p11-kit', ['server', '--provider', provider, '-f', '-n', socket, `pkcs11:token=${token}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  });
  let output = '';
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`p11-kit server did not start:\n${output}`)), 10_000);
    const scan = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /P11_KIT_SERVER_ADDRESS=([^;\s]+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    server.stdout!.on('data', scan);
    server.stderr!.on('data', scan);
    server.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run p11-kit server: ${error.message}`));
    });
    server.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`p11-kit server exited (code ${code}):\n${output}`));
    });
  });
  server.stdout!.resume();
  server.stderr!.resume();
  return { server, address };
}

async function mechanismList(target: Target): Promise<Set<number>> {
  const module = Module.load(target.modulePath);
  try {
    return new Set(module.findSlot(target.token).mechanisms().map((m) => m.type));
  } finally {
    module.close();
  }
}

/** The user's own module, token and keys (--module, --token, --pin-source, --key-label). */
export async function useExisting(options: {
  modulePath: string;
  token: string;
  pinSource: string;
  keyLabels: string[];
}): Promise<Provisioned> {
  const pin = await readPinSource(options.pinSource);
  const target: Target = { modulePath: options.modulePath, token: options.token, pin };
  const module = Module.load(options.modulePath);
  try {
    const keys: Partial<Record<KeyKind, BenchKey>> = {};
    for (const label of options.keyLabels) {
      const key = await describeBenchKey(module, target, label);
      if (keys[key.kind]) throw new Error(`keys '${keys[key.kind]!.label}' and '${label}' are both ${key.kind}: name one per kind`);
      keys[key.kind] = key;
    }
    const mechanisms = new Set(module.findSlot(options.token).mechanisms().map((m) => m.type));
    return {
      target,
      keys,
      mechanisms,
      env: { ...process.env },
      description: `${libraryDescription(module)} at ${options.modulePath}, token '${options.token}'`,
      cleanup: async () => undefined,
    };
  } finally {
    module.close();
  }
}
