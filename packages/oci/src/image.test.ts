import { describe, expect, it } from 'vitest';
import { MediaType, digestOf, parseImageConfig, parseManifest } from './index.js';

const desc = (s: string, mediaType: string = MediaType.OciLayerGzip) => ({ mediaType, digest: digestOf(s), size: s.length });

describe('manifest parsing', () => {
  it('tells manifests from indexes by media type or shape', () => {
    const m = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: desc('c', MediaType.DockerConfig), layers: [desc('l')] });
    expect(parseManifest(m)).toMatchObject({ kind: 'manifest', mediaType: MediaType.DockerManifest });
    const idx = JSON.stringify({ schemaVersion: 2, manifests: [{ ...desc('m', MediaType.OciManifest), platform: { os: 'linux', architecture: 'amd64' } }] });
    expect(parseManifest(idx)).toMatchObject({ kind: 'index', mediaType: MediaType.OciIndex });
    expect(parseManifest(idx, `${MediaType.DockerManifestList}; charset=utf-8`)).toMatchObject({ kind: 'index', mediaType: MediaType.DockerManifestList });
  });

  it('names what is wrong', () => {
    expect(() => parseManifest('{')).toThrowError(/not JSON/);
    expect(() => parseManifest(JSON.stringify({ schemaVersion: 1, name: 'x' }))).toThrowError(/schema 1/);
    expect(() => parseManifest(JSON.stringify({ schemaVersion: 2, config: desc('c'), layers: [{ ...desc('l'), digest: 'nope' }] }))).toThrowError(/layers\[0\]\.digest "nope"/);
    expect(() => parseManifest(JSON.stringify({ schemaVersion: 2, mediaType: 'text/plain', config: desc('c'), layers: [] }))).toThrowError(/unsupported manifest media type text\/plain/);
  });

  it('parses image configs and checks rootfs', () => {
    const cfg = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf('x')] }, config: { Cmd: ['sh'] } };
    expect(parseImageConfig(JSON.stringify(cfg)).config?.Cmd).toEqual(['sh']);
    expect(() => parseImageConfig(JSON.stringify({ ...cfg, os: undefined }))).toThrowError(/os missing/);
    expect(() => parseImageConfig(JSON.stringify({ ...cfg, rootfs: { type: 'layers', diff_ids: ['x'] } }))).toThrowError(/diff_ids\[0\]/);
  });
});
