/**
 * Test support: run the independent verifiers (OpenSSL, GnuTLS certtool) on what the CA
 * produced, through files in a temp dir.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { toPem } from '../../lib/ca/pem';

export interface ToolResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout + stderr, for assertions and failure messages. */
  output: string;
}

/**
 * The verifiers run without the sanitizer runtimes scripts/sanitize.sh preloads into the tests:
 * they are not what is under test, and certtool stalls under a preloaded ASan.
 */
function toolEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  return env;
}

export function run(command: string, args: string[], input?: Buffer | string): ToolResult {
  const r = spawnSync(command, args, { input, encoding: 'utf8', timeout: 30_000, env: toolEnv() });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, output: `${r.stdout}\n${r.stderr}` };
}

/** A temp dir whose files are written from PEM strings or DER buffers (DER certificates become PEM). */
export class TempDir {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pkcs11-napi-ca-'));

  write(name: string, content: string | Buffer | readonly Buffer[], label = 'CERTIFICATE'): string {
    const file = path.join(this.dir, name);
    const text = typeof content === 'string' ? content : Buffer.isBuffer(content) ? toPem(label, content) : content.map((d) => toPem(label, d)).join('');
    fs.writeFileSync(file, text);
    return file;
  }

  writeRaw(name: string, content: Buffer): string {
    const file = path.join(this.dir, name);
    fs.writeFileSync(file, content);
    return file;
  }

  read(name: string): Buffer {
    return fs.readFileSync(path.join(this.dir, name));
  }

  path(name: string): string {
    return path.join(this.dir, name);
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface VerifyInput {
  root: Buffer;
  intermediates?: readonly Buffer[];
  leaf: Buffer;
  purpose?: string;
  crls?: readonly Buffer[];
}

/** `openssl verify -x509_strict` of leaf against root, with intermediates untrusted. */
export function opensslVerify(tmp: TempDir, v: VerifyInput): ToolResult {
  const args = ['verify', '-x509_strict', '-CAfile', tmp.write('root.pem', v.root)];
  if (v.intermediates && v.intermediates.length > 0) args.push('-untrusted', tmp.write('untrusted.pem', v.intermediates));
  if (v.purpose) args.push('-purpose', v.purpose);
  if (v.crls && v.crls.length > 0) args.push('-crl_check', '-CRLfile', tmp.write('crls.pem', v.crls, 'X509 CRL'));
  args.push(tmp.write('leaf.pem', v.leaf));
  return run('openssl', args);
}

/** `certtool --verify-chain` over leaf, intermediates..., root (root last, self-signed). */
export function certtoolVerifyChain(tmp: TempDir, chain: readonly Buffer[]): ToolResult {
  return run('certtool', ['--verify-chain', '--infile', tmp.write('chain.pem', chain)]);
}

/** `openssl x509 -text -noout` of a DER certificate. */
export function x509Text(der: Buffer): string {
  const r = run('openssl', ['x509', '-inform', 'DER', '-text', '-noout'], der);
  if (r.status !== 0) throw new Error(`openssl x509 failed: ${r.output}`);
  return r.stdout;
}

/** `openssl asn1parse` output, for debugging failures. */
export function asn1Parse(der: Buffer): string {
  return run('openssl', ['asn1parse', '-inform', 'DER', '-i'], der).stdout;
}
