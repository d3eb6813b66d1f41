/**
 * Progress on stderr: a redrawn bar when stderr is a terminal; otherwise (CI logs, pipes) one
 * plain line per finished point, which is also a readable record of every repeat.
 */
import { whole } from './report/format';
import type { LoadName, RunResult } from './types';


function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private readonly started = Date.now();
  private done = 0;
  private line: string[] = [];

  constructor(private readonly total: number) {}

  start(label: string): void {
    if (!this.tty) return;
    const fraction = this.done / this.total;
    const width = 28;
    const filled = Math.round(fraction * width);
    const elapsed = (Date.now() - this.started) / 1000;
    const eta = this.done > 0 ? duration((elapsed / this.done) * (this.total - this.done)) : '?';
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}% ${this.done}/${this.total}`;
    const text = `${bar}  ${label}  ETA ${eta}`;
    process.stderr.write(`\r\x1b[2K${text.slice(0, (process.stderr.columns || 120) - 1)}`);
  }

  finished(load: LoadName, result: RunResult): void {
    this.done++;
    this.line.push(`${load} ${whole(result.signsPerSec)}/s`);
  }

  /** After the last load of a point. */
  pointDone(label: string): void {
    if (!this.tty) process.stderr.write(`[${this.done}/${this.total}] ${label}: ${this.line.join(' · ')}\n`);
    this.line = [];
  }

  end(): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
    process.stderr.write(`measured ${this.done} runs in ${duration((Date.now() - this.started) / 1000)}\n`);
  }

  note(text: string): void {
    process.stderr.write(`${this.tty ? '\r\x1b[2K' : ''}${text}\n`);
  }
}
