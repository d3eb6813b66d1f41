/**
 * A one-line progress bar on stderr, drawn only when stderr is a terminal: pipes and log files
 * get no control characters, and stdout (the results) is never touched.
 */
const WIDTH = 30;
const REDRAW_MS = 100;

export class Progress {
  private done = 0;
  private lastDraw = 0;
  private readonly started = Date.now();
  private readonly enabled: boolean;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.enabled = stream.isTTY === true && total > 1;
  }

  tick(count = 1): void {
    this.done += count;
    if (!this.enabled) return;
    const now = Date.now();
    // Redrawing on every tick would cost more than the work for fast operations.
    if (now - this.lastDraw >= REDRAW_MS || this.done >= this.total) {
      this.lastDraw = now;
      this.draw();
    }
  }

  /** Clears the bar so the next line starts clean. */
  finish(): void {
    if (this.enabled) this.stream.write('\r\x1b[2K');
  }

  private draw(): void {
    const fraction = Math.min(1, this.done / this.total);
    const filled = Math.round(fraction * WIDTH);
    const seconds = (Date.now() - this.started) / 1000;
    const rate = seconds > 0 ? `${(this.done / seconds).toFixed(1)}/s` : '';
    const bar = `${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}`;
    this.stream.write(`\r\x1b[2K${this.label} [${bar}] ${this.done}/${this.total} ${rate}`);
  }
}
