import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigVersion, HostStatus, HostStore, compareHostNames, validateHostName, type HostConfig } from './host-store.js';

let dir: string;
let store: HostStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-store-'));
  store = new HostStore({ path: dir });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config = (name: string): HostConfig => ({
  configVersion: ConfigVersion,
  name,
  driverName: 'generic',
  driver: { ipAddress: '10.0.0.1', sshKeyFile: 'id_ed25519' },
  engine: { env: [], labels: ['a=b'], opts: [], insecureRegistries: [], registryMirrors: [] },
  tlsSans: [],
  certifiedAddresses: [],
  status: HostStatus.Creating,
  createdAt: new Date(0).toISOString(),
});

describe('HostStore', () => {
  it('reserves a name once, even when creates race for it', async () => {
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => store.reserve(config('h1'))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((r) => r.status === 'rejected')) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_HOST_EXISTS', kind: 'AlreadyExists' });
    expect(await store.list()).toEqual(['h1']);
  });

  it('writes config.json atomically with mode 0600 and no absolute paths', async () => {
    await store.reserve(config('h1'));
    const updated = await store.update('h1', (c) => ({ ...c, status: HostStatus.Ready }));
    expect(updated.status).toBe('ready');
    const text = await readFile(join(dir, 'machines', 'h1', 'config.json'), 'utf8');
    expect(text).not.toContain(dir);
    expect(JSON.parse(text)).toMatchObject({ configVersion: 1, name: 'h1', status: 'ready' });
    expect((await stat(join(dir, 'machines', 'h1', 'config.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'machines', 'h1'))).mode & 0o777).toBe(0o700);
  });

  it('serialises read-modify-write of one host', async () => {
    await store.reserve({ ...config('h1'), tlsSans: [] });
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.update('h1', async (c) => ({ ...c, tlsSans: [...c.tlsSans, `n${i}`] }))));
    expect((await store.load('h1')).tlsSans).toHaveLength(10);
  });

  it('lists in natural order and names missing hosts', async () => {
    for (const name of ['h10', 'h2', 'B1', 'a1']) await store.reserve(config(name));
    expect(await store.list()).toEqual(['a1', 'B1', 'h2', 'h10']);
    await expect(store.load('nope')).rejects.toMatchObject({ code: 'ERR_HOST_NOT_FOUND', kind: 'NotFound', message: expect.stringContaining('nope') });
    await store.remove('h2');
    expect(await store.exists('h2')).toBe(false);
  });

  it('migrates older files, fills defaults, and refuses files from a newer version', async () => {
    await store.reserve(config('h1'));
    const path = join(dir, 'machines', 'h1', 'config.json');
    await writeFile(path, JSON.stringify({ configVersion: 0, name: 'h1', driverName: 'generic', driver: {} }));
    const loaded = await store.load('h1');
    expect(loaded).toMatchObject({ configVersion: ConfigVersion, status: 'ready', engine: { env: [], labels: [] }, tlsSans: [] });
    await writeFile(path, JSON.stringify({ configVersion: ConfigVersion + 1, name: 'h1', driverName: 'generic', driver: {} }));
    await expect(store.load('h1')).rejects.toMatchObject({ code: 'ERR_HOST_CONFIG', message: expect.stringContaining('newer') });
    await writeFile(path, '{ not json');
    await expect(store.load('h1')).rejects.toMatchObject({ code: 'ERR_HOST_CONFIG', message: expect.stringContaining(path) });
  });

  it('takes docker-machine host names only', () => {
    for (const good of ['h1', 'a.b-c', 'X9']) expect(() => validateHostName(good)).not.toThrow();
    for (const bad of ['', '-a', '.a', 'a b', 'a/b', '../x', 'x'.repeat(64)]) expect(() => validateHostName(bad)).toThrow(/invalid host name/);
    expect(['h10', 'h9', 'H1'].sort(compareHostNames)).toEqual(['H1', 'h9', 'h10']);
  });
});
