/**
 * The provisioning service's pure parts, without a server: how errors become HTTP answers
 * (429 for a full queue, 503 for an unavailable HSM, 400 for a refused CSR), request parsing,
 * and the Prometheus text.
 */
import { CaError } from '../lib/ca';
import { HsmUnavailableError, PoolClosedError, QueueFullError, RequestTimeoutError } from '../lib/pool/errors';
import { parseCertificateRequest } from '../examples/provisioning-service/certificate-request';
import { HttpError, toHttpError } from '../examples/provisioning-service/http-errors';
import { Metrics } from '../examples/provisioning-service/metrics';
import { QuantileWindow } from '../examples/provisioning-service/quantiles';

describe('toHttpError', () => {
  test.each([
    [new QueueFullError(10), 429, 'POOL_QUEUE_FULL'],
    [new HsmUnavailableError('C_Sign returned CKR_DEVICE_REMOVED'), 503, 'HSM_UNAVAILABLE'],
    [new RequestTimeoutError(1000), 503, 'POOL_TIMEOUT'],
    [new PoolClosedError(), 503, 'SHUTTING_DOWN'],
    [new CaError('CSR_MALFORMED', 'bad DER'), 400, 'CSR_MALFORMED'],
    [new CaError('CSR_SIGNATURE_INVALID', 'bad signature'), 400, 'CSR_SIGNATURE_INVALID'],
    [new CaError('POLICY_VIOLATION', 'no SAN'), 400, 'POLICY_VIOLATION'],
    [new CaError('KEY_MISMATCH', 'wrong key'), 500, 'KEY_MISMATCH'],
  ] as const)('%s -> %i %s', (error, status, code) => {
    const http = toHttpError(error);
    expect(http.status).toBe(status);
    expect(http.code).toBe(code);
  });

  test('back-pressure answers say when to retry', () => {
    expect(toHttpError(new QueueFullError(1)).headers['Retry-After']).toBe('1');
    expect(toHttpError(new HsmUnavailableError('gone')).headers['Retry-After']).toBeDefined();
  });

  test('unexpected errors are 500 without their message (that goes to the log)', () => {
    const http = toHttpError(new Error('secret internal detail'));
    expect(http).toBeInstanceOf(HttpError);
    expect(http.status).toBe(500);
    expect(http.message).not.toContain('secret');
  });
});

describe('parseCertificateRequest', () => {
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));

  test.each([
    ['an empty body', 'application/json', Buffer.alloc(0), 400, 'INVALID_REQUEST'],
    ['invalid JSON', 'application/json', Buffer.from('{'), 400, 'INVALID_REQUEST'],
    ['a JSON array', 'application/json', json([]), 400, 'INVALID_REQUEST'],
    ['no csr', 'application/json', json({ sans: {} }), 400, 'INVALID_REQUEST'],
    ['bad sans', 'application/json', json({ csr: 'x', sans: { dns: 'a.example' } }), 400, 'INVALID_REQUEST'],
    ['an unknown SAN kind', 'application/json', json({ csr: 'x', sans: { x400: ['a'] } }), 400, 'INVALID_REQUEST'],
    ['an unknown profile', 'application/json', json({ csr: 'x', profile: 'root-ca' }), 400, 'INVALID_REQUEST'],
    ['neither PEM nor a known type', 'text/plain', Buffer.from('hello'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ])('refuses %s', (_what, type, body, status, code) => {
    // The CSR 'x' would fail too, so the code shows the shape check answered first.
    let thrown: unknown;
    try {
      parseCertificateRequest(type, body, 'tls-server');
    } catch (error) {
      thrown = error;
    }
    expect(toHttpError(thrown).status).toBe(status);
    expect(toHttpError(thrown).code).toBe(code);
  });

  test('a PEM block that is not a CSR is a CaError (400)', () => {
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from('nope').toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(() => parseCertificateRequest(undefined, Buffer.from(pem), 'tls-server')).toThrow(CaError);
  });
});

describe('metrics', () => {
  test('QuantileWindow reports quantiles of the recent window and totals of all samples', () => {
    const window = new QuantileWindow(100);
    expect(window.quantiles([0.5])[0]).toBeNaN();
    for (let i = 1; i <= 200; i++) window.add(i);
    expect(window.count).toBe(200);
    expect(window.sum).toBe(20100);
    expect(window.quantiles([0.5, 0.99, 1])).toEqual([150, 199, 200]); // the window holds 101..200
  });

  test('renders Prometheus text with counters, summaries and pool gauges', () => {
    const metrics = new Metrics();
    metrics.request('/v1/certificates', 'POST', 201);
    metrics.request('/v1/certificates', 'POST', 201);
    metrics.issuedOne(0.004);
    metrics.failure('CSR_MALFORMED');
    const text = metrics.render({
      sessions: 4,
      opening: 0,
      idle: 3,
      inFlight: 1,
      queued: 0,
      done: 10,
      failed: 1,
      retried: 0,
      timedOut: 0,
      rejected: 2,
      breaker: 'closed',
      abandonedCalls: 0,
      latencyMs: { p50: 1, p99: 5, max: 9 },
    });
    expect(text).toContain('# TYPE provisioning_http_requests_total counter');
    expect(text).toContain('provisioning_http_requests_total{route="/v1/certificates",method="POST",status="201"} 2');
    expect(text).toContain('provisioning_certificates_issued_total 1');
    expect(text).toContain('provisioning_issuance_failures_total{reason="CSR_MALFORMED"} 1');
    expect(text).toContain('provisioning_issuance_duration_seconds{quantile="0.99"} 0.004');
    expect(text).toContain('provisioning_issuance_duration_seconds_count 1');
    expect(text).toContain('provisioning_pool_sessions 4');
    expect(text).toContain('provisioning_pool_rejected_total 2');
    expect(text).toContain('provisioning_pool_breaker_open 0');
    expect(text).toContain('provisioning_pool_sign_latency_seconds{quantile="0.99"} 0.005');
    expect(text.endsWith('\n')).toBe(true);
  });
});
