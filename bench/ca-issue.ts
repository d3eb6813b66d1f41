/**
 * Issuance throughput against the HSM's own signing rate.
 *
 * Issues end-entity certificates (one CSR-derived SPKI, a fresh subject and SAN each) at
 * concurrency 1 and 64, and reports certificates/s and main-thread event-loop utilization next
 * to raw ECDSA P-256 signs/s of the same key (signer.sign directly). Median of 3 runs.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/ca-issue.js [N] [--threads=T]
 *
 * Standalone, it makes a fresh SoftHSM2 token and signs over the raw binding (the test
 * signer). `--threads` sets the binding's worker threads: with a software token the token's
 * signing competes with JavaScript for the same cores, so giving it a fixed share shows whether
 * issuance keeps up with what the token can sign.
 *
 * The bench CLI (bench/ca.ts) calls runCaBenchmark() instead, with its own token and key, and
 * signs through SigningPool, the signer a provisioning service would use.
 */
import { spawnSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { CKM_ECDSA, Module, SigningPool, setThreadCount } from '../lib';
import type { Pkcs11Signer } from '../lib';
import { CertificateAuthority, SubjectPublicKey, verifyCsr } from '../lib/ca';
import type { CaBenchmarkOptions } from './ca';

export interface Sample {
  perSecond: number;
  /** Event-loop utilization of the main thread during the run (0..1). */
  elu: number;
  /** Main-thread busy time per operation, in microseconds (ELU × wall time / operations). */
  busyMicros: number;
  /** Process CPU time (all threads: JS, binding workers, the token, GC) per operation, in microseconds. */
  cpuMicros: number;
}

export interface Row {
  concurrency: number;
  raw: Sample;
  certs: Sample;
  /** certs/s ÷ raw signs/s. */
  ratio: number;
}

/** How long each measurement runs: a number of operations, or a duration. */
type Amount = { count: number } | { durationMs: number };

/** Runs `task` with at most `concurrency` in flight until `amount` is done; returns rate and ELU. */
async function measure(amount: Amount, concurrency: number, task: (i: number) => Promise<unknown>): Promise<Sample> {
  let next = 0;
  const eluStart = performance.eventLoopUtilization();
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const more = 'count' in amount ? () => next < amount.count : () => performance.now() - start < amount.durationMs;
  const worker = async (): Promise<void> => {
    while (more()) await task(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  const elu = performance.eventLoopUtilization(eluStart).utilization;
  const cpu = process.cpuUsage(cpuStart);
  return { perSecond: next / seconds, elu, busyMicros: (elu * seconds * 1e6) / next, cpuMicros: (cpu.user + cpu.system) / next };
}

function median(samples: Sample[]): Sample {
  const sorted = [...samples].sort((a, b) => a.perSecond - b.perSecond);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The SPKI of a P-256 CSR from `openssl req`, verified; a Node-generated key when openssl is missing. */
function csrPublicKey(): { key: SubjectPublicKey; source: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ca-bench-'));
  try {
    const out = path.join(dir, 'req.csr');
    const args = ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-subj', '/CN=bench', '-out', out];
    const r = spawnSync('openssl', args);
    if (r.status === 0) return { key: verifyCsr(fs.readFileSync(out, 'utf8')).publicKey, source: 'openssl req P-256 CSR' };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const { generateKeyPairSync } = require('crypto') as typeof import('crypto');
  return { key: SubjectPublicKey.from(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey), source: 'Node-generated P-256 key (openssl not found)' };
}

/**
 * Raw signs/s of `signer` and certificates/s of `ca` (which signs with the same key), per
 * concurrency, median of `repeat` runs each.
 */
export async function compare(
  signer: Pkcs11Signer,
  ca: CertificateAuthority,
  key: SubjectPublicKey,
  plan: { amount: Amount; warmup: Amount; concurrency: readonly number[]; repeat: number },
): Promise<Row[]> {
  const digest = randomBytes(32);
  const rawSign = (): Promise<Buffer> => signer.sign(CKM_ECDSA, digest);
  const issue = (i: number): Promise<unknown> =>
    ca.issue({ profile: 'tls-server', publicKey: key, subject: `CN=device-${i}.example.com`, sans: { dns: [`device-${i}.example.com`] } });
  // Warm up the JIT and the sessions.
  await measure(plan.warmup, 64, issue);
  await measure(plan.warmup, 64, rawSign);
  const rows: Row[] = [];
  for (const concurrency of plan.concurrency) {
    const raw: Sample[] = [];
    const certs: Sample[] = [];
    // Interleaved, so drift in the machine's load affects both alike.
    for (let run = 0; run < plan.repeat; run++) {
      raw.push(await measure(plan.amount, concurrency, rawSign));
      certs.push(await measure(plan.amount, concurrency, issue));
    }
    const r = median(raw);
    const c = median(certs);
    rows.push({ concurrency, raw: r, certs: c, ratio: c.perSecond / r.perSecond });
  }
  return rows;
}

/** Entry point for the bench CLI: the EC key `options.keyLabels.ec` on the given token, through SigningPool. */
export async function runCaBenchmark(options: CaBenchmarkOptions): Promise<{ key: string; algorithm: string; subjectKey: string; rows: Row[] }> {
  const label = options.keyLabels.ec;
  if (!label) throw new Error('the CA benchmark needs the EC P-256 key (keyLabels.ec)');
  const module = Module.load(options.modulePath);
  try {
    const pool = await SigningPool.open({ module, token: options.token, key: { label }, pin: options.pin });
    try {
      const signer = pool.asSigner();
      const ca = await CertificateAuthority.createRoot({ signer, subject: 'CN=Bench CA, O=pkcs11-napi, C=GB', crlDistributionPoints: ['http://crl.example.com/bench.crl'] });
      const subject = csrPublicKey();
      const rows = await compare(signer, ca, subject.key, {
        amount: { durationMs: options.durationMs },
        warmup: { durationMs: options.warmupMs },
        concurrency: options.concurrency.length > 0 ? options.concurrency : [1, 64],
        repeat: Math.max(1, options.repeat),
      });
      return { key: label, algorithm: ca.signatureAlgorithm, subjectKey: subject.source, rows };
    } finally {
      await pool.close();
    }
  } finally {
    module.close();
  }
}

export function formatRows(rows: readonly Row[]): string {
  const lines = [
    'busy µs = main-thread busy time per signature or certificate (ELU × wall time / N); cpu µs = process CPU (all threads) per op',
    'concurrency | raw signs/s | raw ELU | raw busy µs | raw cpu µs | certs/s | certs ELU | cert busy µs | cert cpu µs | certs/raw',
  ];
  for (const { concurrency, raw: r, certs: k, ratio } of rows) {
    lines.push(
      [
        String(concurrency).padStart(11),
        r.perSecond.toFixed(0).padStart(11),
        `${(r.elu * 100).toFixed(1)}%`.padStart(7),
        r.busyMicros.toFixed(1).padStart(11),
        r.cpuMicros.toFixed(1).padStart(10),
        k.perSecond.toFixed(0).padStart(7),
        `${(k.elu * 100).toFixed(1)}%`.padStart(9),
        k.busyMicros.toFixed(1).padStart(12),
        k.cpuMicros.toFixed(1).padStart(11),
        `${(ratio * 100).toFixed(1)}%`.padStart(9),
      ].join(' | '),
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const n = Number(args.find((a) => /^\d+$/.test(a)) ?? 5000);
  const threads = Number(args.find((a) => a.startsWith('--threads='))?.slice('--threads='.length) ?? 0);
  if (threads > 0) setThreadCount(threads);
  // Test support, loaded only here: the standalone run makes its own token and signs over the raw binding.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { TestHsm } = require('../test/support/ca-signer') as typeof import('../test/support/ca-signer');
  const hsm = TestHsm.open(16);
  try {
    const signer = hsm.generate('p256');
    const root = await CertificateAuthority.createRoot({ signer: hsm.generate('p256'), subject: 'CN=Bench Root, C=GB' });
    const ca = await root.createIntermediate({
      signer,
      subject: 'CN=Bench Issuing CA, O=pkcs11-napi, C=GB',
      crlDistributionPoints: ['http://crl.example.com/issuing.crl'],
      ocspUrls: ['http://ocsp.example.com'],
    });
    const subject = csrPublicKey();
    const rows = await compare(signer, ca, subject.key, { amount: { count: n }, warmup: { count: Math.min(n, 2000) }, concurrency: [1, 64], repeat: 3 });
    const threadText = threads > 0 ? `${threads} binding thread(s)` : 'default binding threads';
    console.log(
      `pkcs11-napi CA issuance: N=${n}, median of 3 runs, ${ca.signatureAlgorithm} (EC P-256), subject key from ${subject.source}, ` +
        `SoftHSM2 via the raw binding, ${os.cpus().length} CPU(s), ${threadText}, Node ${process.version}`,
    );
    console.log(formatRows(rows));
  } finally {
    hsm.close();
  }
}

// Run only as a script: the bench CLI requires this file for runCaBenchmark.
if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
