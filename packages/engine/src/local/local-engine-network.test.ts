import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkManager, type NetworkManagerOptions } from '@berth/network';
import { loadBusyboxImage } from '@berth/tools/test-images';
import { freeSubnets } from '@berth/tools/free-subnets';
import type { ContainerCreateRequest } from '../types/container.js';
import type { OutputChunk } from '../types/stream.js';
import { LocalEngine } from './local-engine.js';

// Real traffic through containers the engine runs: a published busybox httpd fetched from the
// host, containers resolving each other by name on a user network, an internal network without a
// way out. Own bridge names, subnets and rule tag; everything removed afterwards.

const exec = promisify(execFile);
const tag = `n${process.pid.toString(36)}`;
let dir = '';
let engine: LocalEngine;
let network: Omit<NetworkManagerOptions, 'stateDir'>;
const subnets: string[] = [];


async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function collect(output: AsyncIterable<OutputChunk>): Promise<string> {
  let text = '';
  for await (const c of output) text += c.data.toString();
  return text;
}


async function run(body: ContainerCreateRequest, name?: string): Promise<{ id: string; code: number; output: string }> {
  const { Id } = await engine.createContainer(body, name ? { name } : {});
  const stream = await engine.attachContainer(Id, { stream: true, stdout: true, stderr: true });
  const wait = await engine.waitContainer(Id, { condition: 'next-exit' });
  await engine.startContainer(Id);
  const output = await collect(stream.output);
  return { id: Id, code: (await wait.result).StatusCode, output };
}

async function detached(body: ContainerCreateRequest, name?: string): Promise<string> {
  const { Id } = await engine.createContainer(body, name ? { name } : {});
  await engine.startContainer(Id);
  return Id;
}

async function httpGet(url: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
      return await res.text();
    } catch (err) {
      // httpd may take a moment to listen after the container starts.
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const web: ContainerCreateRequest = {
  Image: 'busybox',
  Cmd: ['sh', '-c', 'mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www'],
  ExposedPorts: { '80/tcp': {} },
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-len-'));
  subnets.push(...(await freeSubnets(4)));
  network = { defaultBridge: `bt${tag}0`, ruleTag: tag, defaultSubnet: subnets[0]!, bridgePrefix: `bt${tag}`, vethPrefix: `vt${tag}`, addressPools: [{ base: subnets[1]!, size: 24 }, { base: subnets[2]!, size: 24 }] };
  engine = new LocalEngine({ root: join(dir, 'root'), runRoot: join(dir, 'run'), network });
  await loadBusyboxImage(engine);
});

afterAll(async () => {
  if (!engine) return;
  for (const c of await engine.listContainers({ all: true })) await engine.removeContainer(c.Id, { force: true, volumes: true }).catch(() => {});
  await engine.pruneNetworks().catch(() => {});
  await engine.close();
  await new NetworkManager({ ...network, stateDir: join(dir, 'root', 'network') }).removeAll();
  const { stdout } = await exec('ip', ['-br', 'link']);
  expect(stdout.split('\n').filter((l) => l.startsWith(`bt${tag}`) || l.startsWith(`vt${tag}`))).toEqual([]);
  // Nothing may stay mounted; what did is unmounted before the directory goes, then reported.
  const leaked = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(dir));
  for (const m of leaked.reverse()) await promisify(execFile)('umount', ['-l', m]).catch(() => {});
  await rm(dir, { recursive: true, force: true });
  expect(leaked).toEqual([]);
});

describe('LocalEngine networking', () => {
  it('publishes a port of a container on the default bridge and serves the host through it', async () => {
    const port = await freePort();
    const id = await detached({ ...web, HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] } } }, 'web1');
    expect(await httpGet(`http://127.0.0.1:${port}/`)).toBe(`hello from ${id.slice(0, 12)}\n`);
    const info = await engine.inspectContainer(id);
    expect(info.NetworkSettings.Ports['80/tcp']).toEqual([{ HostIp: '127.0.0.1', HostPort: String(port) }]);
    const bridge = info.NetworkSettings.Networks['bridge']!;
    expect(bridge.IPAddress).toMatch(new RegExp(`^${subnets[0]!.split('.').slice(0, 3).join('\\.')}\\.`));
    expect(info.NetworkSettings.IPAddress).toBe(bridge.IPAddress);
    expect(await httpGet(`http://${bridge.IPAddress}/`)).toContain('hello from');
    const [summary] = await engine.listContainers({ filters: { name: ['web1'] } });
    expect(summary!.Ports).toEqual([{ IP: '127.0.0.1', PrivatePort: 80, PublicPort: port, Type: 'tcp' }]);
    const hosts = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'cat /etc/hostname; grep -c "$(hostname)" /etc/hosts; grep -c nameserver /etc/resolv.conf'] });
    expect(hosts.output).toBe(`${hosts.id.slice(0, 12)}\n1\n1\n`);
    await engine.stopContainer(id, { timeout: 1 });
    expect((await engine.inspectContainer(id)).NetworkSettings.Ports).toEqual({});
  });

  it('refuses a host port in use and leaves the container stopped and unplugged', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((r) => blocker.listen(0, '0.0.0.0', () => r((blocker.address() as { port: number }).port)));
    try {
      const { Id } = await engine.createContainer({ ...web, HostConfig: { PortBindings: { '80/tcp': [{ HostPort: String(port) }] } } });
      await expect(engine.startContainer(Id)).rejects.toMatchObject({ message: expect.stringContaining(String(port)) });
      const info = await engine.inspectContainer(Id);
      expect(info.State.Running).toBe(false);
      const { stdout } = await exec('ip', ['-br', 'link']);
      expect(stdout.split('\n').filter((l) => l.startsWith(`vt${tag}`))).toEqual([]);
      await engine.removeContainer(Id);
    } finally {
      blocker.close();
    }
  });

  it('lets containers on a user network reach each other by name and alias', async () => {
    const { Id: netId } = await engine.createNetwork({ Name: `appnet-${tag}`, Labels: { purpose: 'test' } });
    const listed = await engine.listNetworks({ filters: { label: ['purpose=test'] } });
    expect(listed.map((n) => n.Id)).toEqual([netId]);
    const server = await detached({ ...web, HostConfig: { NetworkMode: `appnet-${tag}` }, NetworkingConfig: { EndpointsConfig: { [`appnet-${tag}`]: { Aliases: ['www'] } } } }, 'server1');
    const byName = await run({ Image: 'busybox', Cmd: ['wget', '-qO-', 'http://server1/'], HostConfig: { NetworkMode: `appnet-${tag}` } });
    expect(byName).toMatchObject({ code: 0, output: `hello from ${server.slice(0, 12)}\n` });
    const byAlias = await run({ Image: 'busybox', Cmd: ['wget', '-qO-', 'http://www/'], HostConfig: { NetworkMode: `appnet-${tag}` } });
    expect(byAlias.output).toBe(`hello from ${server.slice(0, 12)}\n`);
    const inspected = await engine.inspectNetwork(netId);
    expect(Object.keys(inspected.Containers)).toEqual([server]);
    await expect(engine.removeNetwork(netId)).rejects.toMatchObject({ kind: 'Conflict' });
    // A container on the default bridge does not reach the user network.
    const outsider = await run({ Image: 'busybox', Cmd: ['wget', '-T', '2', '-qO-', `http://${inspected.Containers[server]!.IPv4Address.split('/')[0]}/`] });
    expect(outsider.code).not.toBe(0);
    await engine.removeContainer(server, { force: true });
    await engine.removeNetwork(netId);
    await expect(engine.inspectNetwork(netId)).rejects.toMatchObject({ kind: 'NotFound' });
  });

  it('gives an internal network no route out, and connects and disconnects a running container', async () => {
    await engine.createNetwork({ Name: `inner-${tag}`, Internal: true });
    const r = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'ip route | grep -c default; ping -c1 -W1 192.0.2.1 >/dev/null 2>&1 && echo out || echo no-way-out'], HostConfig: { NetworkMode: `inner-${tag}` } });
    expect(r.output).toBe('0\nno-way-out\n');
    const id = await detached({ Image: 'busybox', Cmd: ['sleep', '60'] });
    await engine.connectNetwork(`inner-${tag}`, { Container: id, EndpointConfig: { IPAMConfig: { IPv4Address: await nthAddress(`inner-${tag}`, 9) } } });
    const info = await engine.inspectContainer(id);
    expect(Object.keys(info.NetworkSettings.Networks).sort()).toEqual(['bridge', `inner-${tag}`]);
    expect(info.NetworkSettings.Networks[`inner-${tag}`]!.IPAddress).toBe(await nthAddress(`inner-${tag}`, 9));
    const ex = await engine.createExec(id, { Cmd: ['ip', '-o', '-4', 'addr'], AttachStdout: true });
    expect(await collect((await engine.startExec(ex.Id, {}))!.output)).toContain(await nthAddress(`inner-${tag}`, 9));
    await engine.disconnectNetwork(`inner-${tag}`, { Container: id });
    expect(Object.keys((await engine.inspectContainer(id)).NetworkSettings.Networks)).toEqual(['bridge']);
    await engine.removeContainer(id, { force: true });
    expect((await engine.pruneNetworks()).NetworksDeleted).toEqual([`inner-${tag}`]);
  });

  it('runs with --network none, host and container:<name>', async () => {
    const none = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'ip -o link | wc -l'], HostConfig: { NetworkMode: 'none' } });
    expect(none.output.trim()).toBe('1');
    const host = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'ip -o link | grep -c "eth0"; hostname'], HostConfig: { NetworkMode: 'host' } });
    const { stdout: hostname } = await exec('hostname');
    expect(host.output).toBe(`1\n${hostname}`);
    const first = await detached({ Image: 'busybox', Cmd: ['sleep', '60'] }, 'netowner');
    const ip = (await engine.inspectContainer(first)).NetworkSettings.IPAddress;
    const joined = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'ip -o -4 addr show eth0 | grep -o "inet [0-9.]*"'], HostConfig: { NetworkMode: 'container:netowner' } });
    expect(joined.output).toBe(`inet ${ip}\n`);
    await engine.removeContainer(first, { force: true });
  });

  it('publishes every exposed port with -P, and a crash leaves nothing once the supervisor recovers', async () => {
    const veths = async () => (await exec('ip', ['-br', 'link'])).stdout.split('\n').filter((l) => l.startsWith(`vt${tag}`)).map((l) => l.split(/[@\s]/)[0]);
    const before = await veths();
    const id = await detached({ ...web, HostConfig: { PublishAllPorts: true } });
    const info = await engine.inspectContainer(id);
    const binding = info.NetworkSettings.Ports['80/tcp']![0]!;
    expect(Number(binding.HostPort)).toBeGreaterThan(0);
    expect(await httpGet(`http://127.0.0.1:${binding.HostPort}/`)).toBe(`hello from ${id.slice(0, 12)}\n`);
    // The host "crashes": monitor and process killed, nobody sees the end.
    const { stdout } = await exec('ps', ['-o', 'ppid=', '-p', String(info.State.Pid)]);
    process.kill(Number(stdout.trim()), 'SIGKILL');
    process.kill(info.State.Pid, 'SIGKILL');
    const stop = new AbortController();
    const supervising = engine.supervise({ signal: stop.signal });
    try {
      for (let i = 0; i < 100 && (await engine.inspectContainer(id)).State.Running; i++) await new Promise((r) => setTimeout(r, 50));
    } finally {
      stop.abort();
      await supervising;
    }
    expect((await engine.inspectContainer(id)).State).toMatchObject({ Running: false, ExitCode: 255 });
    expect(await veths()).toEqual(before);
    // The host port is free again.
    const again = createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(Number(binding.HostPort), '0.0.0.0', () => resolve());
    });
    again.close();
    await engine.removeContainer(id);
  });
});

async function nthAddress(networkName: string, n: number): Promise<string> {
  const net = await engine.inspectNetwork(networkName);
  const [a, b, c] = net.IPAM.Config![0]!.Subnet!.split('.');
  return `${a}.${b}.${c}.${n}`;
}