/** The last `capacity` latencies in a ring, for percentiles on demand (nothing sorted per request). */
export class LatencyWindow {
  private readonly samples: Float64Array;
  private next = 0;
  private count = 0;

  constructor(capacity = 8192) {
    this.samples = new Float64Array(capacity);
  }

  add(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.samples.length;
    if (this.count < this.samples.length) this.count++;
  }

  /** p50, p99 and max over the window, in milliseconds (0 when empty). */
  summary(): { p50: number; p99: number; max: number } {
    if (this.count === 0) return { p50: 0, p99: 0, max: 0 };
    const sorted = this.samples.slice(0, this.count).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] };
  }
}
