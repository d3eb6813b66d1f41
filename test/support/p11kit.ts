/**
 * Test support: a "network HSM" made of SoftHSM2 behind `p11-kit server`, reached through
 * p11-kit-client.so (the p11-kit RPC protocol over a unix socket).
 *
 *   const server = new P11KitServer({ provider: token.modulePath, tokenLabel: token.label, softhsmConf: token.conf });
 *   await server.start();
 *   setRealEnv('P11_KIT_SERVER_ADDRESS', server.address);   // before the client is initialised
 *   const module = Module.load(findP11KitClient());
 *   ...
 *   await server.kill();      // the HSM goes away (SIGKILL)
 *   await server.start();     // and comes back on the same socket
 *   await server.stop(); server.cleanup();
 *
 * `p11-kit server` forks one process per client connection, so killing only the listening
 * process would leave connected clients served. kill() ends the whole process group (the server
 * runs in a group of its own), which is what a crashed or unplugged network HSM looks like to
 * the client: its connection drops, and new connections are refused until start() again.
 *
 * p11-kit and p11-kit-modules are installed by scripts/ensure-system-deps.sh.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

const CLIENT_CANDIDATES = [
  '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so',
  '/usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so',
  '/usr/lib64/pkcs11/p11-kit-client.so',
  '/usr/lib/pkcs11/p11-kit-client.so',
  '/usr/local/lib/pkcs11/p11-kit-client.so',
  '/opt/homebrew/lib/pkcs11/p11-kit-client.so',
];

const HINT = 'Run `bash scripts/ensure-system-deps.sh` (packages p11-kit and p11-kit-modules).';

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The path of p11-kit-client.so: pkg-config's p11_module_path first, then the usual places. */
export function findP11KitClient(): string {
  const candidates: string[] = [];
  try {
    const dir = execFileSync('pkg-config', ['--variable=p11_module_path', 'p11-kit-1'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    }).trim();
    if (dir) candidates.push(path.join(dir, 'p11-kit-client.so'));
  } catch {
    // no pkg-config, or no p11-kit-1.pc: the fixed list decides
  }
  candidates.push(...CLIENT_CANDIDATES);
  for (const candidate of candidates) if (isFile(candidate)) return candidate;
  throw new Error(`p11-kit-client.so not found. Tried:\n${candidates.map((c) => `  ${c}`).join('\n')}\n${HINT}`);
}

/** The p11-kit executable (throws with a hint when it is missing). */
export function findP11Kit(): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'p11-kit');
    if (dir && isFile(candidate)) return candidate;
  }
  throw new Error(`the p11-kit command is not on PATH. ${HINT}`);
}

export interface P11KitServerOptions {
  /** The PKCS#11 module the server exports (libsofthsm2.so). */
  provider: string;
  /** The token to export (p11-kit server serves the tokens matching pkcs11:token=<label>). */
  tokenLabel: string;
  /** SOFTHSM2_CONF for the server process. */
  softhsmConf: string;
  /** Where the socket lives (default: a fresh temp dir, removed by cleanup()). */
  dir?: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A `p11-kit server` child process on a unix socket; start() and kill() any number of times. */
export class P11KitServer {
  readonly dir: string;
  readonly socketPath: string;
  /** Value for P11_KIT_SERVER_ADDRESS. */
  readonly address: string;
  /** Times start() brought a server up. */
  starts = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private output = '';
  private readonly ownsDir: boolean;
  private readonly executable: string;

  constructor(private readonly options: P11KitServerOptions) {
    this.executable = findP11Kit();
    this.ownsDir = options.dir === undefined;
    this.dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'pkcs11-napi-p11kit-'));
    this.socketPath = path.join(this.dir, 'p11-kit.sock');
    this.address = `unix:path=${this.socketPath}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the server and waits (at most `timeoutMs`) until its socket accepts connections. */
  async start(timeoutMs = 5000): Promise<void> {
    if (this.child) throw new Error('the p11-kit server is already running');
    fs.rmSync(this.socketPath, { force: true }); // a socket left by a killed server
    this.output = '';
    const child = spawn(
      this.executable,
      ['server', '--provider', this.options.provider, '-f', '-n', this.socketPath, `pkcs11:token=${this.options.tokenLabel}`],
      {
        env: { ...process.env, SOFTHSM2_CONF: this.options.softhsmConf },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // a process group of its own: kill() reaches the per-connection children
      },
    );
    this.child = child;
    const collect = (chunk: Buffer) => {
      if (this.output.length < 8192) this.output += chunk.toString('utf8');
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    let gone = false;
    void this.exited.then(() => (gone = true));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (gone) {
        this.child = undefined;
        throw new Error(`p11-kit server exited before its socket was ready: ${this.output.trim() || '(no output)'}`);
      }
      if (fs.existsSync(this.socketPath) && (await canConnect(this.socketPath))) break;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`p11-kit server socket ${this.socketPath} not ready after ${timeoutMs} ms: ${this.output.trim()}`);
      }
      await sleep(10);
    }
    this.starts++;
  }

  /**
   * Kills the server and every connection it serves (the process group) with `signal`, and
   * waits (at most `timeoutMs`) until the listener has exited.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 5000): Promise<void> {
    const child = this.child;
    if (!child || child.pid === undefined) return;
    this.child = undefined;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // the group is already gone
    }
    const exited = await Promise.race([this.exited!.then(() => true), sleep(timeoutMs).then(() => false)]);
    if (!exited) throw new Error(`p11-kit server ${child.pid} did not exit within ${timeoutMs} ms of ${signal}`);
    // Connection handlers are not our children: wait until none is left in the group.
    const deadline = Date.now() + timeoutMs;
    while (groupAlive(child.pid) && Date.now() < deadline) await sleep(10);
  }

  /** Stops the server gracefully (SIGTERM). */
  stop(timeoutMs = 5000): Promise<void> {
    return this.kill('SIGTERM', timeoutMs);
  }

  /** What the server printed (for failure messages). */
  get log(): string {
    return this.output;
  }

  /** Kills a server still running, synchronously, and removes the temp dir (when this object made it). */
  cleanup(): void {
    const pid = this.child?.pid;
    this.child = undefined;
    if (pid !== undefined) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (this.ownsDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection(socketPath);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}

/** True while a process of the group is alive (zombies excepted, as far as /proc tells). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  // A killed handler whose parent died is a zombie until init reaps it: it holds no socket.
  try {
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue;
      }
      // pid (comm) state ppid pgrp …; comm may contain spaces, so split after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') return true;
    }
    return false;
  } catch {
    return true; // no /proc: trust kill(0)
  }
}
