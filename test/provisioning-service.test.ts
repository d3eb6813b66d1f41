/**
 * The provisioning service example, end to end: the compiled server (dist/, from
 * `npm run build:ts`) started in demo mode as a child process on an ephemeral port, spoken to
 * over HTTP, its certificates checked by OpenSSL, a short load test, and a SIGTERM while a
 * request is in flight.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';

const DIST = path.resolve(__dirname, '../dist/examples/provisioning-service');
const SERVER = path.join(DIST, 'server.js');
const LOAD_TEST = path.join(DIST, 'load-test.js');

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let service: ChildProcess;
let exited: Promise<number | null>;
let url: string;
const events: Array<{ event: string }> = [];
let dir: string;
let csrPem: string;

function request(method: string, route: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${route}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function openssl(args: string[]): { status: number | null; output: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** openssl verify of one certificate against the service's CA. */
function opensslAccepts(pem: string, name: string): boolean {
  const file = path.join(dir, name);
  fs.writeFileSync(file, pem);
  const r = openssl(['verify', '-CAfile', path.join(dir, 'ca.pem'), file]);
  return r.status === 0 && r.output.includes(': OK');
}

function startService(): Promise<void> {
  service = spawn(process.execPath, [SERVER, '--demo', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  exited = new Promise((resolve) => service.once('exit', (code) => resolve(code)));
  let stderr = '';
  service.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the service did not start: ${stderr}`)), 30_000);
    service.once('exit', (code) => reject(new Error(`the service exited with ${code}: ${stderr}`)));
    readline.createInterface({ input: service.stdout! }).on('line', (line) => {
      const event = JSON.parse(line);
      events.push(event);
      if (event.event === 'listening') {
        clearTimeout(timer);
        url = event.url;
        resolve();
      }
    });
  });
}

beforeAll(async () => {
  for (const file of [SERVER, LOAD_TEST]) if (!fs.existsSync(file)) throw new Error(`${file} is missing: run 'npm run build:ts' first`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'provisioning-test-'));
  const made = openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-subj', '/CN=api.example.test', '-addext', 'subjectAltName=DNS:api.example.test', '-out', path.join(dir, 'req.pem')]);
  expect(made.status).toBe(0);
  csrPem = fs.readFileSync(path.join(dir, 'req.pem'), 'utf8');
  await startService();
  const ca = await request('GET', '/v1/ca');
  expect(ca.status).toBe(200);
  fs.writeFileSync(path.join(dir, 'ca.pem'), ca.body);
});

afterAll(() => {
  if (service && service.exitCode === null && service.signalCode === null && service.pid) process.kill(service.pid, 'SIGKILL');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('issues certificates for PEM and JSON requests, and openssl verifies them', async () => {
  const pem = await request('POST', '/v1/certificates', csrPem, { 'content-type': 'application/x-pem-file' });
  expect(pem.status).toBe(201);
  expect(pem.headers['content-type']).toBe('application/pem-certificate-chain');
  expect(opensslAccepts(pem.body, 'pem.pem')).toBe(true);

  const replies = await Promise.all(
    ['a.example.test', 'b.example.test', 'c.example.test'].map((name) =>
      request('POST', '/v1/certificates', JSON.stringify({ csr: csrPem, sans: { dns: ['api.example.test', name], ip: ['192.0.2.10'] }, profile: 'tls-server' }), { 'content-type': 'application/json' }),
    ),
  );
  for (const [i, reply] of replies.entries()) {
    expect(reply.status).toBe(201);
    const issued = JSON.parse(reply.body);
    expect(issued.serial).toMatch(/^[0-9a-f]+$/);
    expect(opensslAccepts(issued.certificate, `json-${i}.pem`)).toBe(true);
    expect(openssl(['x509', '-in', path.join(dir, `json-${i}.pem`), '-noout', '-ext', 'subjectAltName']).output).toContain(`DNS:${'abc'[i]}.example.test`);
  }
});

test('/healthz signs with the pool and reports the breaker closed', async () => {
  const reply = await request('GET', '/healthz');
  expect(reply.status).toBe(200);
  expect(JSON.parse(reply.body)).toMatchObject({ status: 'ok', breaker: 'closed' });
});

test('/metrics exposes requests, issued certificates, failures, pool stats and latency quantiles', async () => {
  await request('POST', '/v1/certificates', 'not a csr', { 'content-type': 'application/json' });
  const reply = await request('GET', '/metrics');
  expect(reply.status).toBe(200);
  expect(reply.headers['content-type']).toMatch(/^text\/plain/);
  const issued = Number(/^provisioning_certificates_issued_total (\d+)$/m.exec(reply.body)?.[1]);
  expect(issued).toBeGreaterThanOrEqual(4);
  expect(reply.body).toMatch(/^provisioning_http_requests_total\{route="\/v1\/certificates",method="POST",status="201"\} \d+$/m);
  expect(reply.body).toMatch(/^provisioning_issuance_failures_total\{reason="INVALID_REQUEST"\} 1$/m);
  expect(reply.body).toMatch(/^provisioning_issuance_duration_seconds\{quantile="0.99"\} [0-9.e-]+$/m);
  expect(reply.body).toMatch(/^provisioning_pool_breaker_open 0$/m);
  expect(reply.body).toMatch(/^provisioning_pool_sessions \d+$/m);
  expect(reply.body).toMatch(/^provisioning_pool_signatures_total\{result="done"\} \d+$/m);
});

test('bad requests get 4xx with a JSON error code', async () => {
  const garbage = `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from('not DER at all').toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  const malformed = await request('POST', '/v1/certificates', garbage);
  expect(malformed.status).toBe(400);
  expect(malformed.headers['content-type']).toBe('application/json');
  expect(JSON.parse(malformed.body).error.code).toBe('CSR_MALFORMED');

  // The same CSR with one bit of its signature flipped.
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  der[der.length - 1] ^= 0x01;
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  const badSignature = await request('POST', '/v1/certificates', tampered);
  expect(badSignature.status).toBe(400);
  expect(JSON.parse(badSignature.body).error.code).toBe('CSR_SIGNATURE_INVALID');

  const notAllowed = await request('POST', '/v1/certificates', JSON.stringify({ csr: csrPem, sans: { dns: ['api.example.test'], uri: ['spiffe://x/y'] } }), { 'content-type': 'application/json' });
  expect(notAllowed.status).toBe(400);
  expect(JSON.parse(notAllowed.body).error.code).toBe('INVALID_SAN');

  const tooLarge = await request('POST', '/v1/certificates', Buffer.alloc(70 * 1024, 0x41));
  expect(tooLarge.status).toBe(413);
  expect(JSON.parse(tooLarge.body).error.code).toBe('BODY_TOO_LARGE');

  expect((await request('GET', '/v1/certificates')).status).toBe(405);
  expect((await request('GET', '/nowhere')).status).toBe(404);
});

test('a short load test: every certificate verifies', async () => {
  const run = spawnSync(process.execPath, [LOAD_TEST, '--url', url, '--duration', '2', '--connections', '16', '--json'], { encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0) throw new Error(`load test exited ${run.status}: ${run.stderr}\n${run.stdout}`);
  const report = JSON.parse(run.stdout);
  expect(report.errors).toBe(0);
  expect(report.non2xx).toBe(0);
  expect(report.certificates.total).toBeGreaterThan(0);
  expect(report.certificates.verified).toBe(report.certificates.total);
  expect(report.certificates.uniqueSerials).toBe(report.certificates.total);
}, 90_000);

test('SIGTERM: stops accepting, finishes the request in flight, exits 0', async () => {
  // A request whose body is only half sent when the signal arrives is certainly in flight.
  const body = Buffer.from(csrPem);
  const reply = new Promise<Reply>((resolve, reject) => {
    const req = http.request(`${url}/v1/certificates`, { method: 'POST', headers: { 'content-type': 'application/x-pem-file', 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.write(body.subarray(0, 100));
    setTimeout(() => {
      service.kill('SIGTERM');
      setTimeout(() => req.end(body.subarray(100)), 300);
    }, 300);
  });

  const answered = await reply;
  expect(answered.status).toBe(201);
  expect(answered.headers.connection).toBe('close');
  expect(opensslAccepts(answered.body, 'in-flight.pem')).toBe(true);

  expect(await exited).toBe(0);
  const names = events.map((e) => e.event);
  expect(names).toEqual(expect.arrayContaining(['shutdown_started', 'shutdown_complete']));
  await expect(request('GET', '/healthz')).rejects.toThrow(/ECONNREFUSED/);
});
