import { utcTimestamp } from '@berth/log';
import { realtimeOffsetNanos } from '@berth/runtime';
import { invalidParameter } from './docker-errors.js';

/**
 * Times as docker writes and reads them: RFC 3339 with nanoseconds in records and inspect,
 * `0001-01-01T00:00:00Z` for "never", unix seconds with fractions in queries, and the
 * `units.HumanDuration` wording of `ps` and `images`.
 */

/** Go's zero time, which docker prints for a container that never started or finished. */
export const zeroTime = '0001-01-01T00:00:00Z';

/** A point in time with nanoseconds: whole unix seconds and the nanoseconds within them. */
export interface NanoTime {
  readonly seconds: number;
  readonly nanos: number;
}

// The wall clock in nanoseconds: process.hrtime (monotonic) plus the wall clock's offset from it,
// read in C (@berth/runtime's addon), so that the times one process takes are ordered and carry
// sub-millisecond digits as docker's do, and compare with other processes' times. (Anchored to
// Date.now(), they would be up to a millisecond early, or cost a wait for the millisecond to
// turn; performance.timeOrigin is off from the wall clock by a millisecond or more.)
const realtimeOffset = realtimeOffsetNanos();

/** Now, in nanoseconds since the epoch. */
export function nowNanos(): bigint {
  return process.hrtime.bigint() + realtimeOffset;
}

/** RFC 3339 with nine fraction digits (docker's log timestamp form: fixed width, `Z`). */
export function formatFixedNanos(nanos: bigint): string {
  const ms = Number(nanos / 1_000_000n);
  const fraction = (nanos % 1_000_000_000n).toString().padStart(9, '0');
  return `${utcTimestamp(ms).slice(0, 19)}.${fraction}Z`;
}

/** RFC 3339 with nanoseconds, trailing zeros of the fraction dropped (Go's RFC3339Nano). */
export function formatRfc3339Nano(nanos: bigint): string {
  const fixed = formatFixedNanos(nanos);
  const fraction = fixed.slice(20, 29).replace(/0+$/, '');
  return `${fixed.slice(0, 19)}${fraction ? `.${fraction}` : ''}Z`;
}

/** The current time as RFC3339Nano. */
export function nowRfc3339(): string {
  return formatRfc3339Nano(nowNanos());
}

const rfc3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** Parses RFC 3339 with up to nine fraction digits; undefined when it is not such a time or is the zero time. */
export function parseRfc3339(text: string | undefined): NanoTime | undefined {
  if (!text || text.startsWith('0001-01-01')) return undefined;
  const m = rfc3339.exec(text);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return { seconds: Math.floor(ms / 1000), nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}

/** Nanoseconds since the epoch of an RFC 3339 time (0n for the zero time). */
export function rfc3339ToNanos(text: string | undefined): bigint {
  const t = parseRfc3339(text);
  return t ? BigInt(t.seconds) * 1_000_000_000n + BigInt(t.nanos) : 0n;
}

/** Unix seconds (fractions allowed) to nanoseconds. */
export function secondsToNanos(seconds: number): bigint {
  const whole = Math.floor(seconds);
  return BigInt(whole) * 1_000_000_000n + BigInt(Math.round((seconds - whole) * 1e9));
}

/** Milliseconds elapsed since an RFC 3339 time (0 for the zero time). */
export function millisSince(text: string | undefined, now: bigint = nowNanos()): number {
  const t = rfc3339ToNanos(text);
  return t === 0n ? 0 : Number((now - t) / 1_000_000n);
}

/** docker's `units.HumanDuration`: `Less than a second`, `About a minute`, `3 hours`, `2 weeks`. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

/** docker's `until` filter: a unix timestamp, an RFC 3339 time, or a duration before now (`10m`, `1h30m`). */
export function untilToNanos(text: string): bigint {
  if (/^\d+(\.\d+)?$/.test(text)) return BigInt(Math.round(Number(text) * 1e9));
  const t = rfc3339ToNanos(text);
  if (t > 0n) return t;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/g)];
  if (parts.length && parts.map((p) => p[0]).join('') === text) {
    const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    const ms = parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2]!]!, 0);
    return BigInt(Date.now() - Math.round(ms)) * 1_000_000n;
  }
  throw invalidParameter(`invalid until filter: ${text}`);
}
