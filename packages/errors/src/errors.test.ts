import { describe, expect, it } from 'vitest';
import { BerthError, ErrorKind, abortError, describeError, errnoCode, hasCode, hasKind, isBerthError } from './index.js';

class StoreError extends BerthError {}

describe('BerthError', () => {
  it('carries code, kind, cause and the subclass name', () => {
    const cause = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
    const err = new StoreError('blob missing', { code: 'ERR_BLOB_NOT_FOUND', kind: ErrorKind.NotFound, cause });
    expect(err.name).toBe('StoreError');
    expect(err).toBeInstanceOf(BerthError);
    expect(err).toBeInstanceOf(Error);
    expect(hasKind(err, 'NotFound')).toBe(true);
    expect(hasKind(err, 'Conflict')).toBe(false);
    expect(hasCode(err, 'ERR_BLOB_NOT_FOUND')).toBe(true);
    expect(errnoCode(err.cause)).toBe('ENOENT');
    expect(describeError(err)).toBe('blob missing: ENOENT: no such file');
  });

  it('is recognised across copies through its brand, and plain errors are not', () => {
    const foreign = new BerthError('x', { code: 'ERR_X', kind: 'Internal' });
    expect(isBerthError({ ...foreign })).toBe(false);
    expect(isBerthError(foreign)).toBe(true);
    expect(isBerthError(new Error('plain'))).toBe(false);
    expect(new Error('plain') instanceof BerthError).toBe(false);
    class RegistryError extends BerthError {}
    expect(new RegistryError('r', { code: 'ERR_R', kind: 'Internal' }) instanceof StoreError).toBe(false);
  });

  it('turns an aborted signal into a Canceled error', () => {
    const ac = new AbortController();
    ac.abort(new Error('user pressed ^C'));
    const err = abortError(ac.signal);
    expect(err.kind).toBe('Canceled');
    expect(describeError(err)).toBe('operation canceled: user pressed ^C');
  });
});
