/** Numbers for people, shared by every part's tables: three significant digits, no exponent. */
import type { Spread } from './stats';

/** Three significant digits, no exponent. */
export function num(x: number | null | undefined): string {
  if (x == null || !Number.isFinite(x)) return '–';
  const abs = Math.abs(x);
  if (abs >= 1000) return Math.round(x).toLocaleString('en-US');
  if (abs >= 100) return x.toFixed(0);
  if (abs >= 10) return x.toFixed(1);
  if (abs >= 1) return x.toFixed(2);
  return x.toPrecision(2);
}

/** "median (min–max)", scaled (e.g. ns -> µs with 1e-3). */
export function spreadText(s: Spread | null | undefined, scale = 1): string {
  if (!s || s.count === 0) return '–';
  if (s.count === 1) return num(s.median * scale);
  return `${num(s.median * scale)} (${num(s.min * scale)}–${num(s.max * scale)})`;
}
