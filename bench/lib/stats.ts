/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] ?? Number.NaN;
}

/** Merges ascending arrays into one ascending array. */
export function mergeSorted(arrays: readonly (readonly number[])[]): number[] {
  return arrays.flat().sort((a, b) => a - b);
}

/** Median of the finite-or-infinite values given; undefined values are skipped; NaN when none is left. */
export function median(values: readonly (number | undefined)[]): number {
  const present = values.filter((value): value is number => value !== undefined && !Number.isNaN(value));
  if (present.length === 0) return Number.NaN;
  const sorted = [...present].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1) return sorted[middle] ?? Number.NaN;
  const low = sorted[middle - 1] ?? Number.NaN;
  const high = sorted[middle] ?? Number.NaN;
  return low === high ? low : (low + high) / 2;
}
