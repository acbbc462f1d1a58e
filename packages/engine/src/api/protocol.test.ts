import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { OutputChunk } from '../types/stream.js';
import { compareApiVersions } from './api-version.js';
import { errorFromResponse, errorResponse, kindOfHttpStatus } from './error-status.js';
import { formatFilters, parseFilters } from './filters.js';
import { decodeRegistryAuth, decodeRegistryConfig, encodeAuthHeader } from './registry-auth.js';
import { Router } from './router.js';
import { encodeFrame, StdcopyDemuxer, StdType, StreamSystemError } from './stdcopy.js';
import { EngineError } from '../engine.js';

async function demux(chunks: Buffer[]): Promise<OutputChunk[]> {
  const out: OutputChunk[] = [];
  for await (const c of Readable.from(chunks).pipe(new StdcopyDemuxer())) out.push(c as OutputChunk);
  return out;
}

describe('stdcopy framing', () => {
  it('writes docker’s 8-byte header and reads frames split at any byte', async () => {
    const frames = Buffer.concat([encodeFrame(StdType.stdout, Buffer.from('hello\n')), encodeFrame(StdType.stderr, Buffer.from('oops')), encodeFrame(StdType.stdin, Buffer.from('in'))]);
    expect([...frames.subarray(0, 8)]).toEqual([1, 0, 0, 0, 0, 0, 0, 6]);
    const pieces = [...frames].map((b) => Buffer.from([b]));
    const out = await demux(pieces);
    expect(out.map((c) => [c.stream, c.data.toString()])).toEqual([
      ['stdout', 'hello\n'],
      ['stderr', 'oops'],
      ['stdout', 'in'],
    ]);
  });

  it('turns a system-error frame into an error with its text, and a cut frame into an error', async () => {
    await expect(demux([encodeFrame(StdType.systemErr, Buffer.from('exec failed'))])).rejects.toThrow(StreamSystemError);
    await expect(demux([encodeFrame(StdType.stdout, Buffer.from('abcdef')).subarray(0, 10)])).rejects.toThrow(/ended inside a frame/);
  });
});

describe('filters', () => {
  it('reads the map-of-bool form the v28 CLI sends and the map-of-array form of the swagger', () => {
    expect(parseFilters('{"label":{"a=b":true},"status":{"exited":true,"running":false}}')).toEqual({ label: ['a=b'], status: ['exited'] });
    expect(parseFilters('{"label":["a=b","c"]}')).toEqual({ label: ['a=b', 'c'] });
    expect(parseFilters(null)).toEqual({});
    expect(() => parseFilters('{"label":3}')).toThrow(/label/);
    expect(() => parseFilters('nope')).toThrow(/not JSON/);
  });

  it('writes the form docker sends, leaving empty keys out', () => {
    expect(formatFilters({ label: ['a=b'], name: [] })).toBe('{"label":{"a=b":true}}');
    expect(formatFilters({})).toBeUndefined();
  });
});

describe('registry auth headers', () => {
  it('decodes base64url JSON, treats garbage as no credentials, and round-trips the build map', () => {
    const header = encodeAuthHeader({ username: 'u', password: 'p?>', serveraddress: 'localhost:5000' });
    expect(decodeRegistryAuth(header)).toEqual({ username: 'u', password: 'p?>', serveraddress: 'localhost:5000' });
    expect(decodeRegistryAuth('e30=')).toBeUndefined();
    expect(decodeRegistryAuth('%%%')).toBeUndefined();
    expect(decodeRegistryConfig(encodeAuthHeader({ 'r:5000': { username: 'x', password: 'y' } }))).toEqual({ 'r:5000': { username: 'x', password: 'y' } });
  });
});

describe('router', () => {
  const router = new Router();
  const handler = async () => undefined;
  router.add('GET', '/images/json', handler).add('GET', '/images/{name*}/json', handler).add('POST', '/images/{name*}/push', handler).add('DELETE', '/images/{name*}', handler);
  router.add('GET', '/containers/{id}/json', handler);

  it('matches image names with slashes and ports greedily, and decodes them', () => {
    expect(router.match('POST', '/images/localhost:5000/team/app/push')).toMatchObject({ params: { name: 'localhost:5000/team/app' } });
    expect(router.match('GET', '/images/a/json/json')).toMatchObject({ params: { name: 'a/json' } });
    expect(router.match('DELETE', '/images/busybox%3Alatest')).toMatchObject({ params: { name: 'busybox:latest' } });
    expect(router.match('GET', '/images/json')).toMatchObject({ params: {} });
  });

  it('tells a wrong method from an unknown path', () => {
    expect(router.match('POST', '/containers/x/json')).toBe('methodNotAllowed');
    expect(router.match('GET', '/nothing/here')).toBeUndefined();
    expect(router.match('HEAD', '/containers/x/json')).toMatchObject({ params: { id: 'x' } });
  });
});

describe('errors on the wire', () => {
  it('maps kinds to docker’s statuses and back, keeping code and exit code through the berth member', () => {
    const err = new EngineError('No such container: x', { code: 'ERR_CONTAINER_NOT_FOUND', kind: 'NotFound', exitCode: 127 });
    const { status, body } = errorResponse(err);
    expect(status).toBe(404);
    expect(body.message).toBe('No such container: x');
    const back = errorFromResponse(status, JSON.stringify(body));
    expect(back).toMatchObject({ code: 'ERR_CONTAINER_NOT_FOUND', kind: 'NotFound', exitCode: 127, message: 'No such container: x' });
  });

  it('classifies a foreign server’s answers by status as docker’s client does', () => {
    expect(errorFromResponse(409, '{"message":"name in use"}')).toMatchObject({ kind: 'Conflict', code: 'ERR_ENGINE_REMOTE' });
    expect(errorFromResponse(502, '<html>bad gateway</html>')).toMatchObject({ kind: 'Internal', message: '<html>bad gateway</html>' });
    expect(kindOfHttpStatus(400)).toBe('InvalidArgument');
    expect(kindOfHttpStatus(503)).toBe('Unavailable');
    expect(errorResponse(new Error('plain')).status).toBe(500);
  });

  it('orders API versions numerically', () => {
    expect(compareApiVersions('1.9', '1.24')).toBeLessThan(0);
    expect(compareApiVersions('1.47', '1.47')).toBe(0);
    expect(compareApiVersions('2.0', '1.47')).toBeGreaterThan(0);
  });
});
