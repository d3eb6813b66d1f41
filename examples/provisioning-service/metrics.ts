/**
 * What the service counts, and its Prometheus text exposition (format 0.0.4): requests by route
 * and status, certificates issued, failures by reason, issuance latency quantiles, and the
 * signing pool's own statistics read at scrape time.
 */
import type { PoolStats } from '../../lib/pool/options';
import { QuantileWindow } from './quantiles';

const QUANTILES = [0.5, 0.9, 0.99] as const;

type Labels = Record<string, string>;

/** A counter family keyed by its label values. */
class LabelledCounter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  inc(labels: Labels): void {
    const key = JSON.stringify(labels);
    const entry = this.values.get(key);
    if (entry) entry.value++;
    else this.values.set(key, { labels, value: 1 });
  }

  entries(): Array<{ labels: Labels; value: number }> {
    return [...this.values.values()];
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function series(name: string, labels: Labels, value: number): string {
  const inner = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
  const text = Number.isNaN(value) ? 'NaN' : String(value);
  return `${name}${inner ? `{${inner}}` : ''} ${text}`;
}

function family(name: string, type: 'counter' | 'gauge' | 'summary', help: string, lines: string[]): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines];
}

export class Metrics {
  private readonly requests = new LabelledCounter();
  private readonly failures = new LabelledCounter();
  private readonly issueSeconds = new QuantileWindow();
  private issued = 0;
  inFlight = 0;

  request(route: string, method: string, status: number): void {
    this.requests.inc({ route, method, status: String(status) });
  }

  issuedOne(seconds: number): void {
    this.issued++;
    this.issueSeconds.add(seconds);
  }

  failure(reason: string): void {
    this.failures.inc({ reason });
  }

  render(pool: PoolStats): string {
    const q = this.issueSeconds.quantiles(QUANTILES);
    const lines = [
      ...family('provisioning_http_requests_total', 'counter', 'HTTP requests by route, method and status.', this.requests.entries().map((e) => series('provisioning_http_requests_total', e.labels, e.value))),
      ...family('provisioning_http_requests_in_flight', 'gauge', 'HTTP requests being served.', [series('provisioning_http_requests_in_flight', {}, this.inFlight)]),
      ...family('provisioning_certificates_issued_total', 'counter', 'Certificates issued.', [series('provisioning_certificates_issued_total', {}, this.issued)]),
      ...family('provisioning_issuance_failures_total', 'counter', 'Refused or failed certificate requests, by reason.', this.failures.entries().map((e) => series('provisioning_issuance_failures_total', e.labels, e.value))),
      ...family('provisioning_issuance_duration_seconds', 'summary', 'Time from request to issued certificate (recent window).', [
        ...QUANTILES.map((quantile, i) => series('provisioning_issuance_duration_seconds', { quantile: String(quantile) }, q[i])),
        series('provisioning_issuance_duration_seconds_sum', {}, this.issueSeconds.sum),
        series('provisioning_issuance_duration_seconds_count', {}, this.issueSeconds.count),
      ]),
      ...family('provisioning_pool_sessions', 'gauge', 'Signing pool sessions open.', [series('provisioning_pool_sessions', {}, pool.sessions)]),
      ...family('provisioning_pool_sessions_idle', 'gauge', 'Signing pool sessions idle.', [series('provisioning_pool_sessions_idle', {}, pool.idle)]),
      ...family('provisioning_pool_in_flight', 'gauge', 'Signatures running in the HSM.', [series('provisioning_pool_in_flight', {}, pool.inFlight)]),
      ...family('provisioning_pool_queued', 'gauge', 'Signatures waiting for a session.', [series('provisioning_pool_queued', {}, pool.queued)]),
      ...family('provisioning_pool_signatures_total', 'counter', 'Pool signatures by result.', [
        series('provisioning_pool_signatures_total', { result: 'done' }, pool.done),
        series('provisioning_pool_signatures_total', { result: 'failed' }, pool.failed),
      ]),
      // Timeouts are among the failures; rejections (queue full, breaker open) never reached a session.
      ...family('provisioning_pool_timeouts_total', 'counter', 'Signatures past their deadline.', [series('provisioning_pool_timeouts_total', {}, pool.timedOut)]),
      ...family('provisioning_pool_rejected_total', 'counter', 'Signatures refused at once (queue full or breaker open).', [series('provisioning_pool_rejected_total', {}, pool.rejected)]),
      ...family('provisioning_pool_retries_total', 'counter', 'Signatures retried on a fresh session.', [series('provisioning_pool_retries_total', {}, pool.retried)]),
      ...family('provisioning_pool_breaker_open', 'gauge', '1 while the HSM circuit breaker is open.', [series('provisioning_pool_breaker_open', {}, pool.breaker === 'open' ? 1 : 0)]),
      ...family('provisioning_pool_sign_latency_seconds', 'gauge', 'Pool signing latency over its recent window.', [
        series('provisioning_pool_sign_latency_seconds', { quantile: '0.5' }, pool.latencyMs.p50 / 1000),
        series('provisioning_pool_sign_latency_seconds', { quantile: '0.99' }, pool.latencyMs.p99 / 1000),
        series('provisioning_pool_sign_latency_seconds', { quantile: '1' }, pool.latencyMs.max / 1000),
      ]),
    ];
    return `${lines.join('\n')}\n`;
  }
}
