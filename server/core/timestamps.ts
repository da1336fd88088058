let lastTimestampMs = Number.NaN;
let lastTimestamp = "";

/**
 * `date.toISOString()`, the string reused while the millisecond is the same: V8 formats each one with `snprintf`,
 * and a busy node stamps many messages per millisecond.
 */
export function isoTimestamp(date: Date): string {
  const ms = date.getTime();
  if (ms !== lastTimestampMs) {
    lastTimestamp = date.toISOString(); // throws on an invalid date, before either is changed
    lastTimestampMs = ms;
  }
  return lastTimestamp;
}

/**
 * The instant of an ISO timestamp, in epoch ms (`Date.parse`): the one {@link isoTimestamp} made last, which is the
 * one an append asks about almost always, is known without parsing it.
 */
export function timestampMs(timestamp: string): number {
  return timestamp === lastTimestamp ? lastTimestampMs : Date.parse(timestamp);
}
