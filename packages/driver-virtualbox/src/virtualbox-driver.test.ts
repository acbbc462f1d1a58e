import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { hasCode } from '@berth/errors';
import { DriverErrorCode, MachineState, SshKeyPair, type DriverConfig, type FlagValues } from '@berth/machine';
import { FakeVBoxManage } from '@berth/tools/fakes/vboxmanage';
import { makeTestDriverContext, type TestDriverContext } from '@berth/tools/fakes/driver-context';
import { VirtualBoxErrorCode, driver, type VirtualBoxDriver } from './index.js';

const run = promisify(execFile);
const isoinfo = await run('isoinfo', ['-version']).then(() => true, () => false);

let fake: FakeVBoxManage;
let ctx: TestDriverContext;
let dir: string;
const savedPath = process.env['PATH'];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-vbox-test-'));
  await writeFile(join(dir, 'noble.vmdk'), Buffer.alloc(4096, 7));
  await writeFile(join(dir, 'live.iso'), Buffer.alloc(4096, 1));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  fake = await FakeVBoxManage.start();
  // The stand-in is found on PATH, as the real VBoxManage would be.
  process.env['PATH'] = `${fake.binDir}:${savedPath ?? ''}`;
  ctx = await makeTestDriverContext('h1');
});

afterEach(async () => {
  process.env['PATH'] = savedPath;
  await fake.close();
  await ctx.cleanup();
});

function flags(extra: FlagValues = {}): FlagValues {
  return { 'virtualbox-boot-image': join(dir, 'noble.vmdk'), 'virtualbox-no-vtx-check': true, 'virtualbox-wait-timeout': 10, ...extra };
}

function newDriver(extra: FlagValues = {}, context = ctx): VirtualBoxDriver {
  return driver.create({ context: context.context, flags: flags(extra) }) as VirtualBoxDriver;
}

function setting(vmName: string, key: string): string | undefined {
  return [...fake.vms.values()].find((v) => v.name === vmName)?.settings.get(key)?.at(-1);
}

describe('virtualbox driver against a stand-in VBoxManage', () => {
  test('create, state, stop, start, restart, kill and rm', async () => {
    const vbox = newDriver();
    await vbox.preCreateCheck();
    await vbox.create();

    const [vm] = [...fake.vms.values()];
    expect(vm).toMatchObject({ name: 'h1', state: 'running', basefolder: ctx.context.machineDir });
    expect(setting('h1', 'memory')).toBe('2048');
    expect(setting('h1', 'cpus')).toBe('2');
    const sshPort = await vbox.sshPort();
    expect(setting('h1', 'natpf1')).toBe(`ssh,tcp,127.0.0.1,${sshPort},,22`);
    expect(setting('h1', 'nic2')).toBe('hostonly');
    expect(setting('h1', 'hostonlyadapter2')).toBe('vboxnet0');
    expect(fake.hostOnlyInterfaces.get('vboxnet0')).toMatchObject({ ip: '192.168.56.1', netmask: '255.255.255.0' });
    // The cloud image was cloned into the host directory and grown to the disk size.
    const disk = join(ctx.context.machineDir, 'disk.vdi');
    expect(fake.media.get(disk)).toBe(20000);
    expect(vm!.attachments.get('SATA/0/0')).toEqual({ type: 'hdd', medium: disk });
    expect(vm!.attachments.get('SATA/1/0')).toEqual({ type: 'dvddrive', medium: join(ctx.context.machineDir, 'seed.iso') });
    expect(vm!.sharedFolders.get('hosthome')).toBe('/home');
    expect(vm!.extradata.get('berth/hostonly-ip')).toBe('192.168.56.10');

    // The seed carries the host's key and the fixed address.
    const key = await SshKeyPair.read(vbox.sshKeyPath());
    const seed = join(ctx.context.machineDir, 'seed.iso');
    if (isoinfo) {
      const userData = (await run('isoinfo', ['-x', '/USER-DATA;1', '-i', seed])).stdout;
      expect(userData.startsWith('#cloud-config\n')).toBe(true);
      expect(JSON.parse(userData.slice('#cloud-config\n'.length)).users[0]).toMatchObject({ name: 'docker', ssh_authorized_keys: [key.publicKey] });
      const network = JSON.parse((await run('isoinfo', ['-x', '/NETWORK-CONFIG;1', '-i', seed])).stdout);
      expect(network.ethernets.hostonly.addresses).toEqual(['192.168.56.10/24']);
    } else {
      expect((await readFile(seed)).includes(key.publicKey)).toBe(true);
    }

    expect(await vbox.state()).toBe(MachineState.Running);
    expect(await vbox.ip()).toBe('192.168.56.10');
    expect(await vbox.sshHostname()).toBe('127.0.0.1');
    expect(await vbox.url()).toBe('tcp://192.168.56.10:2376');
    expect(vbox.sshUser()).toBe('docker');

    await vbox.stop();
    expect(fake.callsOf('controlvm').at(-1)!.args).toEqual(['controlvm', 'h1', 'acpipowerbutton']);
    expect(await vbox.state()).toBe(MachineState.Stopped);
    await vbox.start();
    expect(await vbox.state()).toBe(MachineState.Running);
    await vbox.restart();
    expect(fake.callsOf('startvm')).toHaveLength(3);
    await vbox.kill();
    expect(fake.callsOf('controlvm').at(-1)!.args).toEqual(['controlvm', 'h1', 'poweroff']);
    expect(await vbox.state()).toBe(MachineState.Stopped);

    const again = driver.create({ context: ctx.context, config: ctx.saved.at(-1) as DriverConfig });
    await again.remove();
    expect(fake.leftovers()).toEqual([]);
    await expect(access(disk)).rejects.toThrow();
    await again.remove();
  });

  test('two hosts get their own addresses on one host-only interface, removed with the last', async () => {
    const ctx2 = await makeTestDriverContext('h2');
    try {
      const first = newDriver();
      const second = newDriver({}, ctx2);
      await Promise.all([first.create(), second.create()]);
      expect(new Set([await first.ip(), await second.ip()])).toEqual(new Set(['192.168.56.10', '192.168.56.11']));
      expect(fake.hostOnlyInterfaces.size).toBe(1);
      expect(await first.sshPort()).not.toBe(await second.sshPort());
      // Whichever made the interface, it stays while the other VM uses it, and goes with the last.
      await first.remove();
      expect(fake.hostOnlyInterfaces.size).toBe(1);
      await second.remove();
      expect(fake.leftovers()).toEqual([]);
    } finally {
      await ctx2.cleanup();
    }
  });

  test('a failure half-way through create removes the VM, its disk and the interface', async () => {
    fake.faults.fail('startvm', 1, 'The virtual machine could not start (VERR_VMX_NO_VMX)');
    const error = await newDriver().create().catch((e: unknown) => e);
    expect(hasCode(error, VirtualBoxErrorCode.Command)).toBe(true);
    expect((error as Error).message).toContain('VERR_VMX_NO_VMX');
    expect(fake.callsOf('unregistervm')).toHaveLength(1);
    expect(fake.leftovers()).toEqual([]);
  });

  test('a VM that aborts on start fails the create and leaves nothing', async () => {
    fake.neverRunning = true;
    const error = await newDriver().create().catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/aborted/);
    expect(fake.leftovers()).toEqual([]);
  });

  test('an existing host-only interface is reused and kept; flags reach modifyvm', async () => {
    const existing = fake.seedHostOnlyInterface('vboxnet3', '192.168.57.1');
    const vbox = newDriver({
      'virtualbox-hostonly-cidr': '192.168.57.1/24',
      'virtualbox-hostonly-ip': '192.168.57.50',
      'virtualbox-memory': 4096,
      'virtualbox-cpu-count': 4,
      'virtualbox-disk-size': 40000,
      'virtualbox-share-folder': '/srv/data:data',
      'virtualbox-nat-nictype': '82540EM',
      'virtualbox-host-dns-resolver': true,
    });
    await vbox.create();
    expect(await vbox.ip()).toBe('192.168.57.50');
    expect(setting('h1', 'hostonlyadapter2')).toBe('vboxnet3');
    expect(setting('h1', 'memory')).toBe('4096');
    expect(setting('h1', 'cpus')).toBe('4');
    expect(setting('h1', 'nictype1')).toBe('82540EM');
    expect(setting('h1', 'natdnshostresolver1')).toBe('on');
    expect([...fake.vms.values()][0]!.sharedFolders.get('data')).toBe('/srv/data');
    expect(fake.media.get(join(ctx.context.machineDir, 'disk.vdi'))).toBe(40000);
    await vbox.remove();
    expect(fake.leftovers()).toEqual([]);
    expect(fake.hostOnlyInterfaces.get('vboxnet3')).toBe(existing);
  });

  test('an ISO boots from the DVD with an empty disk', async () => {
    const vbox = newDriver({ 'virtualbox-boot-image': join(dir, 'live.iso'), 'virtualbox-no-share': true });
    await vbox.create();
    const [vm] = [...fake.vms.values()];
    expect(setting('h1', 'boot1')).toBe('dvd');
    expect(vm!.attachments.get('SATA/2/0')).toEqual({ type: 'dvddrive', medium: join(dir, 'live.iso') });
    expect(fake.callsOf('createmedium')).toHaveLength(1);
    expect(vm!.sharedFolders.size).toBe(0);
    await vbox.remove();
    expect(fake.leftovers()).toEqual([]);
  });

  test('a boot image URL is downloaded once into the store cache, checked against SHA256SUMS', async () => {
    const image = Buffer.alloc(10000, 3);
    let sums = `${createHash('sha256').update(image).digest('hex')} *noble.vmdk\n`;
    let downloads = 0;
    const server: Server = createServer((req, res) => {
      if (req.url === '/noble/current/noble.vmdk') {
        downloads++;
        res.end(image);
      } else if (req.url === '/noble/current/SHA256SUMS') res.end(sums);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/noble/current/noble.vmdk`;
    const ctx2 = await makeTestDriverContext('h2');
    try {
      const vbox = newDriver({ 'virtualbox-boot-image': url });
      await vbox.preCreateCheck();
      await vbox.create();
      expect(downloads).toBe(1);
      const cloned = fake.callsOf('clonemedium')[0]!.args[2]!;
      expect(cloned.startsWith(join(ctx.context.storePath, 'cache', 'virtualbox'))).toBe(true);
      expect(await readFile(cloned)).toEqual(image);
      await vbox.remove();

      // A corrupted download is refused before any VM is made (another store, so no cache).
      sums = `${'0'.repeat(64)} *noble.vmdk\n`;
      const bad = newDriver({ 'virtualbox-boot-image': url }, ctx2);
      const error = await bad.preCreateCheck().catch((e: unknown) => e);
      expect(hasCode(error, VirtualBoxErrorCode.Image)).toBe(true);
      expect(fake.callsOf('createvm')).toHaveLength(1);
      expect(fake.leftovers()).toEqual([]);
    } finally {
      server.close();
      await ctx2.cleanup();
    }
  });

  test('a missing VBoxManage and a taken address are reported before anything is made', async () => {
    const missing = newDriver({ 'virtualbox-vboxmanage': join(dir, 'no-such-VBoxManage') });
    const error = await missing.preCreateCheck().catch((e: unknown) => e);
    expect(hasCode(error, VirtualBoxErrorCode.Missing)).toBe(true);

    await newDriver({ 'virtualbox-hostonly-ip': '192.168.56.20' }).create();
    const ctx2 = await makeTestDriverContext('h2');
    try {
      const clash = await newDriver({ 'virtualbox-hostonly-ip': '192.168.56.20' }, ctx2).create().catch((e: unknown) => e);
      expect(hasCode(clash, DriverErrorCode.InvalidOption)).toBe(true);
      expect(fake.vms.size).toBe(1);
    } finally {
      await ctx2.cleanup();
    }
    await driver.create({ context: ctx.context, config: ctx.saved.at(-1) as DriverConfig }).remove();
    expect(fake.leftovers()).toEqual([]);
  });

  test('docker-machine\'s boot2docker-url spelling is an alias of the boot image flag', () => {
    expect(driver.flags.find((f) => f.name === 'virtualbox-boot-image')!.aliases).toEqual(['virtualbox-boot2docker-url']);
  });
});
