/**
 * Load test: autocannon POSTs one pre-generated CSR at the service over many connections for
 * a fixed time, keeps every certificate that comes back, and verifies each against the CA.
 *
 *   node dist/examples/provisioning-service/load-test.js [--url URL] [--duration S] [--connections N] [--json]
 *
 * Without --url it starts the service in demo mode on 127.0.0.1 and stops it afterwards.
 * Exit status 0 only when there were no errors and every certificate verified.
 */
import autocannon from 'autocannon';
import { parseArgs } from 'node:util';

import { makeCsrFixture } from './csr-fixture';
import { RunningService, startDemoService } from './service-process';
import { verifyCertificates } from './verify-certificates';

interface Options {
  url?: string;
  durationSeconds: number;
  connections: number;
  json: boolean;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: { url: { type: 'string' }, duration: { type: 'string' }, connections: { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
  });
  const number = (text: string | undefined, fallback: number, max: number, name: string) => {
    const n = text === undefined ? fallback : Number(text);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be an integer from 1 to ${max}`);
    return n;
  };
  return {
    url: values.url,
    durationSeconds: number(values.duration, 10, 3600, 'duration'),
    connections: number(values.connections, 64, 10_000, 'connections'),
    json: values.json === true,
  };
}

async function fetchText(url: string): Promise<string> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  return response.text();
}

async function main(): Promise<number> {
  const opts = options(process.argv.slice(2));
  let service: RunningService | undefined;
  try {
    if (opts.url === undefined) service = await startDemoService();
    const url = (opts.url ?? service!.url).replace(/\/$/, '');
    const caPem = await fetchText(`${url}/v1/ca`);
    const fixture = makeCsrFixture();
    const body = JSON.stringify({ csr: fixture.csrPem, sans: { dns: [fixture.dnsName] }, profile: 'tls-server' });

    const certificates: string[] = [];
    const instance = autocannon({
      url,
      connections: opts.connections,
      duration: opts.durationSeconds,
      requests: [
        {
          method: 'POST',
          path: '/v1/certificates',
          headers: { 'content-type': 'application/json' },
          body,
          onResponse: (status, text) => {
            if (status === 201) certificates.push((JSON.parse(text) as { certificate: string }).certificate);
          },
        },
      ],
    });
    if (process.stderr.isTTY && !opts.json) autocannon.track(instance, { renderResultsTable: false, renderLatencyTable: false });
    const result = await instance;
    const verification = verifyCertificates(caPem, certificates, fixture.spki);

    const report = {
      url,
      connections: opts.connections,
      durationSeconds: result.duration,
      requests: { total: result.requests.total, perSecond: Math.round((result.requests.total / result.duration) * 10) / 10, averagePerSecond: result.requests.average },
      latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
      errors: result.errors,
      timeouts: result.timeouts,
      non2xx: result.non2xx,
      statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count])),
      certificates: verification,
    };
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      process.stdout.write(
        [
          `${url}: ${opts.connections} connections for ${opts.durationSeconds} s`,
          `  requests/s   ${report.requests.perSecond} (${report.requests.total} requests)`,
          `  latency      p50 ${report.latencyMs.p50} ms, p99 ${report.latencyMs.p99} ms, max ${report.latencyMs.max} ms`,
          `  errors       ${report.errors} (timeouts ${report.timeouts}, non-2xx ${report.non2xx})`,
          `  verified     ${verification.verified}/${verification.total} certificates (${verification.uniqueSerials} unique serials)`,
          ...verification.failures.map((f) => `  FAILED       ${f}`),
          '',
        ].join('\n'),
      );
    }
    const clean = report.errors === 0 && report.non2xx === 0 && verification.total > 0;
    return clean && verification.verified === verification.total && verification.uniqueSerials === verification.total ? 0 : 1;
  } finally {
    if (service) {
      const status = await service.stop();
      if (status !== 0) process.stderr.write(`the service exited with status ${status}\n`);
    }
  }
}

main().then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    process.stderr.write(`load test failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
