import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noopLogger } from '@berth/log';
import { MachineState, SshKeyPair, SshSession, type DriverConfig, type DriverContext } from '@berth/machine';
import { HostRig, missingTools, type RigHost } from '@berth/tools/host-rig';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driver } from './generic-driver.js';

const missing = await missingTools();

describe('generic driver flags and config', () => {
  it('requires the address and checks ports, with docker-machine defaults', () => {
    const context = { machineName: 'h', machineDir: '/nonexistent', storePath: '/nonexistent', logger: noopLogger, saveConfig: async () => {} };
    expect(() => driver.create({ context, flags: {} })).toThrow(/--generic-ip-address is required/);
    expect(() => driver.create({ context, flags: { 'generic-ip-address': 'h', 'generic-ssh-port': 70000 } })).toThrow(/--generic-ssh-port 70000 is not a port/);
    const made = driver.create({ context, flags: { 'generic-ip-address': '10.1.1.1' } });
    expect(made.config()).toEqual({ ipAddress: '10.1.1.1', sshUser: 'root', sshPort: 22, enginePort: 2376 });
    const back = driver.create({ context, config: made.config() });
    expect(back.sshUser()).toBe('root');
    expect(back.sshKeyPath()).toBeUndefined();
    expect(() => driver.create({ context, config: { ipAddress: 1 } })).toThrow(/saved generic driver config/);
    expect(driver.flags.map((f) => f.name)).toEqual(['generic-ip-address', 'generic-ssh-user', 'generic-ssh-key', 'generic-ssh-port', 'generic-engine-port']);
    expect(driver.adoptsExistingHost).toBe(true);
  });

  it('puts the IP a DNS name resolves to in the URL, and IPv6 in brackets', async () => {
    const context = { machineName: 'h', machineDir: '/nonexistent', storePath: '/nonexistent', logger: noopLogger, saveConfig: async () => {} };
    expect(await driver.create({ context, flags: { 'generic-ip-address': 'localhost' } }).ip()).toMatch(/^(127\.0\.0\.1|::1)$/);
    expect(await driver.create({ context, flags: { 'generic-ip-address': 'fd00::5', 'generic-engine-port': 3000 } }).url()).toBe('tcp://[fd00::5]:3000');
    await expect(driver.create({ context, flags: { 'generic-ip-address': 'no-such-host.invalid' } }).ip()).rejects.toMatchObject({ message: expect.stringContaining('no-such-host.invalid') });
  });
});

describe.skipIf(missing.length > 0)('generic driver on a rig host', () => {
  let rig: HostRig;
  let host: RigHost;
  let store: string;
  let context: DriverContext;
  const saved: DriverConfig[] = [];

  beforeAll(async () => {
    store = await mkdtemp(join(tmpdir(), 'berth-generic-'));
    rig = await HostRig.create({ nat: false });
    host = await rig.addHost({ name: 'gen' });
    const machineDir = join(store, 'machines', 'gen');
    await mkdir(machineDir, { recursive: true });
    context = {
      machineName: 'gen',
      machineDir,
      storePath: store,
      logger: noopLogger,
      saveConfig: async (config) => void saved.push(config),
      openSsh: async () =>
        SshSession.connect({
          host: host.ip,
          port: 22,
          username: 'root',
          privateKeys: [await readFile(join(machineDir, 'id_ed25519'), 'utf8')],
          hostKey: { knownHostsPath: join(machineDir, 'known_hosts'), alias: 'gen' },
        }),
    };
  }, 120_000);

  afterAll(async () => {
    await rig?.close();
    await rm(store, { recursive: true, force: true });
  });

  it('copies the key into the store on create and reports Running while SSH answers', async () => {
    const made = driver.create({ context, flags: { 'generic-ip-address': host.ip, 'generic-ssh-key': host.keyPath } });
    await made.preCreateCheck();
    await made.create();
    const copied = join(context.machineDir, 'id_ed25519');
    expect((await stat(copied)).mode & 0o777).toBe(0o600);
    expect((await SshKeyPair.read(copied)).publicKey).toBe((await SshKeyPair.read(host.keyPath)).publicKey);
    expect(saved.at(-1)).toMatchObject({ sshKeyFile: 'id_ed25519', ipAddress: host.ip });
    expect(made.sshKeyPath()).toBe(copied);
    expect(await made.state()).toBe(MachineState.Running);
    await host.stopSsh();
    expect(await made.state()).toBe(MachineState.Stopped);
    await host.startSsh();
    await expect(driver.create({ context, flags: { 'generic-ip-address': host.ip, 'generic-ssh-key': '/nonexistent/key' } }).preCreateCheck()).rejects.toMatchObject({
      kind: 'NotFound',
    });
  });

  it('reboots and powers off the host through SSH; start only checks it is back', async () => {
    const made = driver.create({ context, config: saved.at(-1)! });
    const pid = host.pid;
    await made.restart();
    await host.waitRunning();
    expect(host.pid).not.toBe(pid);
    expect(await made.state()).toBe(MachineState.Running);
    await made.stop();
    await host.waitOff();
    expect(await made.state()).toBe(MachineState.Stopped);
    await expect(made.start()).rejects.toMatchObject({ code: 'ERR_DRIVER_UNSUPPORTED', message: expect.stringContaining('power the host on') });
    await host.powerOn();
    await made.start();
    await made.kill();
    await host.waitOff();
    await host.powerOn();
    expect(await made.state()).toBe(MachineState.Running);
  }, 120_000);
});
