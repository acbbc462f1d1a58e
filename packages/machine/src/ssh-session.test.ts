import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostRig, missingTools, type RigHost } from '@berth/tools/host-rig';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshKeyPair } from './ssh-key.js';
import { SshSession, waitForSsh, type SshConnectOptions } from './ssh-session.js';

const missing = await missingTools();

describe.skipIf(missing.length > 0)('SshSession against a rig host', () => {
  let rig: HostRig;
  let host: RigHost;
  let dir: string;
  let key: string;
  const target = (extra: Partial<SshConnectOptions> = {}): SshConnectOptions => ({
    host: host.ip,
    port: 22,
    username: 'root',
    privateKeys: [key],
    hostKey: { knownHostsPath: join(dir, 'known_hosts'), alias: 'h1' },
    ...extra,
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-ssh-'));
    rig = await HostRig.create({ nat: false });
    host = await rig.addHost({ name: 'h1' });
    key = await readFile(host.keyPath, 'utf8');
  });
  afterAll(async () => {
    await rig?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs commands with streamed output, stdin and exit status', async () => {
    const session = await SshSession.connect(target());
    try {
      const chunks: string[] = [];
      const result = await session.exec('echo out; echo err >&2; cat; exit 7', { stdin: 'from stdin', onStdout: (c) => chunks.push(c.toString()) });
      expect(result.code).toBe(7);
      expect(result.stdout).toBe('out\nfrom stdin');
      expect(result.stderr).toBe('err\n');
      expect(chunks.join('')).toBe(result.stdout);
      await expect(session.run('echo nope >&2; exit 3')).rejects.toMatchObject({ code: 'ERR_SSH_COMMAND_FAILED', message: expect.stringContaining('nope') });
      expect(await session.run('hostname')).toBe('h1\n');
    } finally {
      session.close();
    }
  });

  it('pins the host key on first contact and refuses a changed one', async () => {
    const pins = join(dir, 'pins');
    const options = target({ hostKey: { knownHostsPath: pins, alias: 'pinned' } });
    (await SshSession.connect(options)).close();
    const recorded = await readFile(pins, 'utf8');
    expect(recorded).toMatch(/^pinned ssh-ed25519 AAAA/);
    const hostKey = await readFile(host.path('/etc/ssh/ssh_host_ed25519_key.pub'), 'utf8');
    expect(recorded.split(' ')[2]!.trim()).toBe(hostKey.split(' ')[1]);
    (await SshSession.connect(options)).close();
    await host.check('rm /etc/ssh/ssh_host_*; ssh-keygen -q -A');
    await host.stopSsh();
    await host.startSsh();
    await expect(SshSession.connect(options)).rejects.toMatchObject({ code: 'ERR_SSH_HOST_KEY_MISMATCH', kind: 'PermissionDenied' });
    await expect(waitForSsh({ ...options, timeoutMs: 60_000 })).rejects.toMatchObject({ code: 'ERR_SSH_HOST_KEY_MISMATCH' });
    // The pin of the first test is now stale as well: record the new key for what follows.
    await rm(join(dir, 'known_hosts'), { force: true });
  });

  it('refuses a key the host does not accept, as PermissionDenied', async () => {
    const stranger = await SshKeyPair.generate();
    await expect(SshSession.connect(target({ privateKeys: [stranger.privateKey] }))).rejects.toMatchObject({ code: 'ERR_SSH_AUTH', kind: 'PermissionDenied' });
  });

  it('uploads and downloads files and trees over SFTP', async () => {
    const session = await SshSession.connect(target());
    try {
      const local = join(dir, 'tree');
      await mkdir(join(local, 'sub'), { recursive: true });
      await writeFile(join(local, 'a.txt'), 'alpha');
      await writeFile(join(local, 'sub', 'run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
      await session.uploadTree(local, '/opt/tree');
      expect(await session.run('/opt/tree/sub/run.sh')).toBe('ran\n');
      expect(await readFile(host.path('/opt/tree/a.txt'), 'utf8')).toBe('alpha');
      await session.upload(Buffer.from('bytes'), '/opt/tree/bytes', { mode: 0o600 });
      expect(await session.run('stat -c %a /opt/tree/bytes')).toBe('600\n');
      const back = join(dir, 'back');
      await session.downloadTree('/opt/tree', back);
      expect(await readFile(join(back, 'sub', 'run.sh'), 'utf8')).toContain('echo ran');
      expect(await session.remoteType('/opt/tree')).toBe('directory');
      expect(await session.remoteType('/opt/nothing')).toBeUndefined();
    } finally {
      session.close();
    }
  });

  it('cancels a running command when the signal fires', async () => {
    const session = await SshSession.connect(target());
    try {
      const ac = new AbortController();
      const running = session.exec('sleep 30');
      const cancelled = session.exec('sleep 30', { signal: ac.signal });
      ac.abort();
      await expect(cancelled).rejects.toMatchObject({ kind: 'Canceled' });
      session.close();
      await expect(running).rejects.toMatchObject({ code: 'ERR_SSH_CONNECTION_LOST' });
    } finally {
      session.close();
    }
  });

  it('waits until SSH answers, and says why when it never does', async () => {
    await host.stopSsh();
    const waiting = waitForSsh({ ...target(), intervalMs: 200, timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 800));
    await host.startSsh();
    const session = await waiting;
    expect(await session.run('echo up')).toBe('up\n');
    session.close();
    await host.stopSsh();
    try {
      await expect(waitForSsh({ ...target(), intervalMs: 100, timeoutMs: 1500 })).rejects.toMatchObject({
        code: 'ERR_SSH_WAIT_TIMEOUT',
        cause: expect.objectContaining({ code: 'ERR_SSH_CONNECT' }),
      });
    } finally {
      await host.startSsh();
    }
    expect((await stat(join(dir, 'known_hosts'))).mode & 0o777).toBe(0o600);
  });
});
