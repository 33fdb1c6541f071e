// Summaries of a few rounds: the median says where a figure sits, min–max how much the noisy host
// moved it between rounds.

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spreadOf(values: readonly number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length };
}

/** "1234 (1200–1300)"; a single sample has no spread to show. */
export function formatSpread(s: Spread | undefined, digits = 0): string {
  if (s === undefined || s.n === 0 || Number.isNaN(s.median)) return '-';
  const f = (n: number) => n.toFixed(digits);
  return s.n === 1 ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}
