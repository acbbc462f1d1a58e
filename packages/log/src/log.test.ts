import { describe, expect, it } from 'vitest';
import { createJsonLogger, createTextLogger, noopLogger, utcTimestamp } from './index.js';

const at = new Date('2026-01-02T03:04:05.000Z');

describe('loggers', () => {
  it('writes text lines with bound and per-call fields, below the level dropped', () => {
    const lines: string[] = [];
    const log = createTextLogger({ write: (l) => lines.push(l), level: 'info' }).child({ component: 'store' });
    log.debug('hidden');
    log.warn('blob missing', { digest: 'sha256:ab', path: '/a b' });
    expect(lines).toEqual(['WARN  blob missing component=store digest=sha256:ab path="/a b"\n']);
  });

  it('writes JSON lines', () => {
    const lines: string[] = [];
    const log = createJsonLogger({ write: (l) => lines.push(l), level: 'debug', now: () => at });
    log.child({ id: 'c1' }).error('died', { err: new Error('boom') });
    expect(JSON.parse(lines[0]!)).toEqual({ time: at.toISOString(), level: 'error', msg: 'died', id: 'c1', err: 'boom' });
  });

  it('the no-op logger returns itself as child', () => {
    expect(noopLogger.child({ a: 1 })).toBe(noopLogger);
  });
});

describe('utcTimestamp', () => {
  it('writes what toISOString writes, across the calendar', () => {
    const times = [0, 1, 999, 951782400000 /* 2000-02-29 */, 4102444799999 /* 2099-12-31T23:59:59.999 */, -62135596800000 /* year 1 */, 253402300799999 /* 9999 */];
    for (let t = 0; t < 200; t++) times.push(Math.floor(Math.random() * 253402300799999));
    for (const ms of times) expect(utcTimestamp(ms)).toBe(new Date(ms).toISOString());
  });

  it('is now by default', () => {
    const before = Date.now();
    const stamp = Date.parse(utcTimestamp());
    expect(stamp).toBeGreaterThanOrEqual(before);
    expect(stamp).toBeLessThanOrEqual(Date.now());
  });
});
