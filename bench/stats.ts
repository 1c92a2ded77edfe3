/** Summaries of repeated measurements: the median, with min and max, of each cell's repetitions. */

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** How many repetitions the summary is made of. */
  count: number;
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { median: NaN, min: NaN, max: NaN, count: 0 };
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], count: sorted.length };
}

/** Groups items by a string key, keeping first-seen order (so tables follow the sweep's order). */
export function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** a / b, or null when either is missing or b is zero (a ratio never invents a number). */
export function ratio(a: number | undefined | null, b: number | undefined | null): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}
