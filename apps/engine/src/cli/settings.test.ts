import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGlobalFlags } from './global-flags.js';
import { resolveSettings, rootNetworkNames } from './settings.js';
import { splitAtFirstPositional, valueFlags } from './split-args.js';

let dir: string;
let file: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-settings-'));
  file = join(dir, 'engine.json');
  await writeFile(file, JSON.stringify({ 'data-root': '/from/file', 'exec-root': '/run/file', 'insecure-registries': ['a:5000'], labels: ['env=file'], bridge: 'br-file', debug: false }));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('settings', () => {
  it('take the file, then the environment, then the flags', () => {
    const fromFile = resolveSettings(parseGlobalFlags(['--config-file', file, 'ps']).flags, { HOME: dir });
    expect(fromFile).toMatchObject({ root: '/from/file', runroot: '/run/file', insecureRegistries: ['a:5000'], labels: ['env=file'], remoteHost: undefined, network: { bridge: 'br-file' } });
    const fromEnv = resolveSettings(parseGlobalFlags(['--config-file', file, 'ps']).flags, {
      HOME: dir,
      BERTH_ROOT: '/from/env',
      BERTH_INSECURE_REGISTRIES: 'b:5000,c:5000',
      BERTH_BRIDGE: 'br-env',
    });
    expect(fromEnv).toMatchObject({ root: '/from/env', runroot: '/run/file', insecureRegistries: ['a:5000', 'b:5000', 'c:5000'], network: { bridge: 'br-env' } });
    const fromFlags = resolveSettings(parseGlobalFlags(['--config-file', file, '--root', '/from/flag', '--insecure-registry', 'd:1', 'ps']).flags, { HOME: dir, BERTH_ROOT: '/from/env' });
    expect(fromFlags.root).toBe('/from/flag');
    expect(fromFlags.insecureRegistries).toContain('d:1');
  });

  it('go remote with -H, BERTH_HOST or DOCKER_HOST, with docker’s TLS files', () => {
    expect(resolveSettings(parseGlobalFlags(['ps']).flags, { HOME: dir, DOCKER_HOST: 'unix:///d.sock' }).remoteHost).toBe('unix:///d.sock');
    expect(resolveSettings(parseGlobalFlags(['ps']).flags, { HOME: dir, DOCKER_HOST: 'unix:///d.sock', BERTH_HOST: 'unix:///b.sock' }).remoteHost).toBe('unix:///b.sock');
    const flag = resolveSettings(parseGlobalFlags(['-H', 'tcp://h:2376', 'ps']).flags, { HOME: dir, BERTH_HOST: 'unix:///b.sock' });
    expect(flag.remoteHost).toBe('tcp://h:2376');
    expect(flag.tls).toBeUndefined();
    const tls = resolveSettings(parseGlobalFlags(['ps']).flags, { HOME: dir, DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' });
    expect(tls.tls).toEqual({ ca: '/certs/ca.pem', cert: '/certs/cert.pem', key: '/certs/key.pem', verify: true });
    const noVerify = resolveSettings(parseGlobalFlags(['--tls', 'ps']).flags, { HOME: dir, DOCKER_HOST: 'tcp://h:2376' });
    expect(noVerify.tls).toMatchObject({ verify: false, cert: join(dir, '.docker', 'cert.pem') });
  });

  it("take dockerd's daemon options from the file", async () => {
    const daemonFile = join(dir, 'daemon.json');
    await writeFile(daemonFile, JSON.stringify({ 'registry-mirrors': ['https://m.example'], dns: ['192.0.2.53'], 'dns-search': ['example.test'], 'storage-driver': 'vfs', 'log-driver': 'none', 'max-concurrent-downloads': 2 }));
    expect(resolveSettings(parseGlobalFlags(['--config-file', daemonFile, 'ps']).flags, { HOME: dir }).daemon).toEqual({
      registryMirrors: ['https://m.example'],
      dns: { servers: ['192.0.2.53'], search: ['example.test'] },
      storageDriver: 'vfs',
      logDriver: 'none',
      maxConcurrentDownloads: 2,
    });
    await writeFile(daemonFile, JSON.stringify({ 'storage-driver': 'zfs' }));
    expect(() => resolveSettings(parseGlobalFlags(['--config-file', daemonFile, 'ps']).flags, { HOME: dir })).toThrow('storage-driver: storage driver "zfs" is not available: Berth has overlay2 and vfs');
  });

  it('give every state root but the default one a bridge and rule tag of its own', () => {
    expect(rootNetworkNames('/var/lib/berth', {})).toEqual({});
    expect(rootNetworkNames('/var/lib/berth/', {})).toEqual({});
    const a = rootNetworkNames('/srv/a', {});
    const b = rootNetworkNames('/srv/b', {});
    expect(a).toMatchObject({ bridge: expect.stringMatching(/^berth[0-9a-f]{8}$/), tag: expect.stringMatching(/^r[0-9a-f]{12}$/) });
    expect(b.bridge).not.toBe(a.bridge);
    expect(b.tag).not.toBe(a.tag);
    expect(rootNetworkNames('/srv/a/', {})).toEqual(a);
    // What the settings name wins.
    expect(rootNetworkNames('/srv/a', { bridge: 'br0', tag: 'mine' })).toEqual({ bridge: 'br0', tag: 'mine' });
    expect(rootNetworkNames('/srv/a', { tag: 'mine' })).toEqual({ bridge: a.bridge, tag: 'mine' });
  });

  it('refuse unknown global flags and a missing config file that was asked for', () => {
    expect(() => parseGlobalFlags(['--nope', 'ps'])).toThrow(/unknown flag: --nope/);
    expect(() => resolveSettings(parseGlobalFlags(['--config-file', join(dir, 'missing.json'), 'ps']).flags, { HOME: dir })).toThrow(/cannot read the engine configuration file/);
    expect(parseGlobalFlags(['-D', '-H=unix:///x', 'run', '-d']).rest).toEqual(['run', '-d']);
  });
});

describe('interspersed arguments', () => {
  const takes = valueFlags({ env: { type: 'string', alias: 'e' }, name: { type: 'string' }, tty: { type: 'boolean', alias: 't' }, interactive: { type: 'boolean', alias: 'i' } });
  it('stop at the first positional, as pflag does for run and exec', () => {
    expect(splitAtFirstPositional(['-it', '--name', 'x', '-e', 'A=1', 'busybox', 'ls', '-la', '-e'], takes)).toEqual({ options: ['-it', '--name', 'x', '-e', 'A=1'], positional: ['busybox', 'ls', '-la', '-e'] });
    expect(splitAtFirstPositional(['--name=x', '-eA=1', 'img'], takes)).toEqual({ options: ['--name=x', '-eA=1'], positional: ['img'] });
    expect(splitAtFirstPositional(['-ti', '--', '-image-like'], takes)).toEqual({ options: ['-ti'], positional: ['-image-like'] });
  });
});
