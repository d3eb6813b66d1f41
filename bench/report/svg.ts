/**
 * One chart per mechanism: signs/s against concurrency (log2 x-axis, linear y from zero), a line
 * per load. Hand-written SVG so the bench needs no plotting dependency.
 */
import { MECHANISMS } from '../mechanisms';
import type { MechanismName } from '../mechanisms';
import type { Point } from '../runner';
import type { LoadName } from '../types';
import { whole } from './format';

const SERIES: { load: LoadName; label: string; color: string; dash?: string }[] = [
  { load: 'raw-c', label: 'raw C (limit)', color: '#222222', dash: '6 4' },
  { load: 'raw-c-os-locks', label: "raw C, module's own locks", color: '#999999', dash: '1 3' },
  { load: 'raw-c-woken', label: 'raw C, waking a thread', color: '#7f7f7f', dash: '2 3' },
  { load: 'ours-pool', label: 'ours: SigningPool', color: '#d62728' },
  { load: 'ours-raw', label: 'ours: native.sign', color: '#ff9896' },
  { load: 'pkcs11js', label: 'pkcs11js', color: '#1f77b4' },
];

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A 1-2-5 step giving about five gridlines up to `max`. */
function niceStep(max: number): number {
  const raw = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw || 1));
  return [1, 2, 5, 10].map((f) => f * magnitude).find((s) => s >= raw) ?? magnitude * 10;
}

export function chart(mechanism: MechanismName, keyDescription: string, points: Point[], subtitle: string): string {
  const width = 720;
  const height = 440;
  const margin = { left: 80, right: 190, top: 56, bottom: 56 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const mine = points.filter((p) => p.mechanism === mechanism).sort((a, b) => a.concurrency - b.concurrency);
  const xs = mine.map((p) => Math.log2(p.concurrency));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const x = (c: number) =>
    Number((margin.left + (xMax === xMin ? plotW / 2 : ((Math.log2(c) - xMin) / (xMax - xMin)) * plotW)).toFixed(1));
  let yMax = 0;
  for (const p of mine) for (const s of SERIES) yMax = Math.max(yMax, p.loads[s.load]?.signsPerSec ?? 0);
  const step = niceStep(yMax * 1.05);
  const yTop = Math.max(step, Math.ceil((yMax * 1.05) / step) * step);
  const y = (v: number) => Number((margin.top + plotH - (v / yTop) * plotH).toFixed(1));

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${margin.left}" y="22" font-size="15" font-weight="bold">${escape(`${MECHANISMS[mechanism].title} (${MECHANISMS[mechanism].ckmName}, ${keyDescription})`)}</text>`,
    `<text x="${margin.left}" y="40" fill="#555555">${escape(subtitle)}</text>`,
  );
  for (let v = 0; v <= yTop + 1e-9; v += step) {
    out.push(
      `<line x1="${margin.left}" y1="${y(v)}" x2="${margin.left + plotW}" y2="${y(v)}" stroke="#e5e5e5"/>`,
      `<text x="${margin.left - 8}" y="${y(v) + 4}" text-anchor="end">${whole(v)}</text>`,
    );
  }
  for (const p of mine) {
    out.push(
      `<line x1="${x(p.concurrency)}" y1="${margin.top}" x2="${x(p.concurrency)}" y2="${margin.top + plotH}" stroke="#f0f0f0"/>`,
      `<text x="${x(p.concurrency)}" y="${margin.top + plotH + 18}" text-anchor="middle">${p.concurrency}</text>`,
    );
  }
  out.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999999"/>`,
    `<text x="${margin.left + plotW / 2}" y="${height - 14}" text-anchor="middle">requests in flight (concurrency, log2 scale)</text>`,
    `<text transform="translate(18 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">signatures per second (median)</text>`,
  );
  let legendY = margin.top + 8;
  for (const s of SERIES) {
    const pts = mine.filter((p) => p.loads[s.load]).map((p) => [x(p.concurrency), y(p.loads[s.load]!.signsPerSec)]);
    if (pts.length === 0) continue;
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"/>`,
      ...pts.map(([a, b]) => `<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="3" fill="${s.color}"/>`),
      `<line x1="${margin.left + plotW + 16}" y1="${legendY}" x2="${margin.left + plotW + 40}" y2="${legendY}" stroke="${s.color}" stroke-width="2"${dash}/>`,
      `<text x="${margin.left + plotW + 46}" y="${legendY + 4}">${escape(s.label)}</text>`,
    );
    legendY += 20;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
