import { describe, expect, it } from 'vitest';
import { createJsonLogger, createTextLogger, noopLogger } from './index.js';

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
