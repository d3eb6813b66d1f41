/**
 * Latency quantiles over the most recent samples: a fixed ring (constant memory, O(1) per
 * request) sorted only when /metrics is scraped.
 */
export class QuantileWindow {
  private readonly samples: Float64Array;
  private next = 0;
  private filled = 0;
  /** Over all samples ever, as Prometheus summaries report them. */
  sum = 0;
  count = 0;

  constructor(capacity = 4096) {
    this.samples = new Float64Array(capacity);
  }

  add(value: number): void {
    this.samples[this.next] = value;
    this.next = (this.next + 1) % this.samples.length;
    if (this.filled < this.samples.length) this.filled++;
    this.sum += value;
    this.count++;
  }

  /** The requested quantiles of the window (NaN when it is empty, as Prometheus expects). */
  quantiles(qs: readonly number[]): number[] {
    if (this.filled === 0) return qs.map(() => NaN);
    const sorted = this.samples.slice(0, this.filled).sort();
    return qs.map((q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]);
  }
}
