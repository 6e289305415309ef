export function median(values: number[]): number {
  if (values.length === 0) throw new Error('Cannot compute the median of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Returns the nearest-rank percentile `p` (0 < p ≤ 100) of the values. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error('Cannot compute a percentile of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function mean(values: number[]): number {
  if (values.length === 0) throw new Error('Cannot compute the mean of an empty list');
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}
