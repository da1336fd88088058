let lastTimestampMs = Number.NaN;
let lastTimestamp = "";

/**
 * `date.toISOString()`, the string reused while the millisecond is the same: V8 formats each one with `snprintf`,
 * and a busy node stamps many messages per millisecond.
 */
export function isoTimestamp(date: Date): string {
  const ms = date.getTime();
  if (ms !== lastTimestampMs) {
    lastTimestampMs = ms;
    lastTimestamp = date.toISOString();
  }
  return lastTimestamp;
}
