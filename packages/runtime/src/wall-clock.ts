import { nativeAddon } from './native-addon.js';

/**
 * The wall clock (CLOCK_REALTIME) minus the monotonic clock of process.hrtime, in nanoseconds,
 * read back to back in C: `process.hrtime.bigint() + offset` is then the wall time in
 * nanoseconds, ordered within the process and comparable with other processes' times. Node's own
 * clocks give the wall time in milliseconds only (Date.now), or one taken at a different moment
 * than its monotonic origin (performance.timeOrigin, off by a millisecond or more).
 */
export function realtimeOffsetNanos(): bigint {
  return nativeAddon().realtimeOffset();
}
