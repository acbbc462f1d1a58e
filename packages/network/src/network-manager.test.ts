import { spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsRcode, DnsType, encodeDnsResponse, parseDnsQuery } from './dns-message.js';
import { NetworkManager, exposedPortSpecs, formatPortMapping, parsePublish, type NetworkManagerOptions } from './index.js';
import { NetnsRig, freePort, freeSubnets, leftovers, missingPrerequisite, must, run, testId, type Outside } from '../test/netns-rig.js';

// Real traffic between network namespaces standing in for containers, on whichever firewall
// backend this host detects. One manager for the file, its own bridges, subnets and rule tag.

const skip = await missingPrerequisite();
const id = testId();
const tag = `t${id}`;
const rig = new NetnsRig(id);
const prefixes = [`bt${id}`, `vt${id}`];
let stateDir = '';
let options: NetworkManagerOptions;
let manager: NetworkManager;
let subnets: string[] = [];
let outside: Outside;
let upstream: UdpSocket;
const upstreamAddress = `127.${Math.floor(Math.random() * 200) + 20}.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250) + 2}`;

async function curl(ns: string | undefined, url: string, timeoutS = 3) {
  return run(['curl', '-s', '-S', '-m', String(timeoutS), url], ns ? { ns } : {});
}

/** Sends one UDP datagram from the test process and returns the reply text. */
async function udpAsk(host: string, port: number): Promise<string> {
  const socket = createSocket('udp4');
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no UDP reply from ${host}:${port}`)), 3000);
      socket.on('message', (msg) => {
        clearTimeout(timer);
        resolve(msg.toString().trim());
      });
      socket.send('ping\n', port, host);
    });
  } finally {
    socket.close();
  }
}

describe.skipIf(skip)('NetworkManager with real namespaces', () => {
  beforeAll(async () => {
    subnets = await freeSubnets(7);
    stateDir = await rig.tempDir('state');
    // The embedded DNS server forwards to the host's resolvers; here a fake one on a loopback address.
    upstream = createSocket('udp4');
    upstream.on('message', (msg, from) => {
      const q = parseDnsQuery(msg);
      const known = q.questions[0]?.name === 'outside.test';
      const answers = known ? [{ name: 'outside.test', type: DnsType.A, ttl: 60, data: '192.0.2.123' } as const] : [];
      upstream.send(encodeDnsResponse(q, known ? DnsRcode.NoError : DnsRcode.NameError, answers), from.port, from.address);
    });
    await new Promise<void>((resolve) => upstream.bind({ address: upstreamAddress, port: 53 }, () => resolve()));
    const resolvConf = join(stateDir, 'host-resolv.conf');
    await writeFile(resolvConf, `nameserver ${upstreamAddress}\nsearch example.test\n`);
    options = {
      stateDir: join(stateDir, 'network'),
      defaultBridge: `bt${id}0`,
      defaultSubnet: subnets[0],
      bridgePrefix: `bt${id}`,
      vethPrefix: `vt${id}`,
      ruleTag: tag,
      hostResolvConfPath: resolvConf,
    };
    manager = new NetworkManager(options);
    await manager.init();
    outside = await rig.outside(subnets[5]!);
  });

  afterAll(async () => {
    await manager?.removeAll().catch(() => {});
    await rig.cleanup();
    upstream?.close();
  });

  it('default bridge: containers reach each other, and the outside through masquerade', async () => {
    const a = await rig.netns('a');
    const b = await rig.netns('b');
    const ea = await manager.connect({ containerId: `${id}-a`, containerName: 'a', netnsPath: a.path, network: 'bridge' });
    const eb = await manager.connect({ containerId: `${id}-b`, containerName: 'b', netnsPath: b.path, network: 'bridge' });
    expect(ea.ipAddress).not.toBe(eb.ipAddress);
    expect(ea.gateway).toBe(subnets[0]!.replace(/0\/24$/, '1'));
    expect(ea.dnsNames).toEqual([]);

    // Inside: eth0 with the address, MAC and the bridge's MTU, loopback up, default route via the gateway.
    const link = JSON.parse(await must(['ip', '-j', '-d', 'addr', 'show', 'eth0'], { ns: a.name }))[0];
    expect(link.mtu).toBe(1500);
    expect(link.address).toBe(ea.macAddress);
    expect(link.addr_info.find((x: { family: string }) => x.family === 'inet').local).toBe(ea.ipAddress);
    expect(await must(['ip', 'route', 'show', 'default'], { ns: a.name })).toContain(`default via ${ea.gateway} dev eth0`);
    expect(await must(['ip', '-br', 'link', 'show', 'lo'], { ns: a.name })).toMatch(/UNKNOWN|UP/);
    const hostEnd = JSON.parse(await must(['ip', '-j', 'link', 'show', ea.hostVeth]))[0];
    expect(hostEnd.master).toBe(`bt${id}0`);
    // The bridge keeps a MAC of its own: one borrowed from a port would change when that port goes.
    const macOf = async (dev: string) => JSON.parse(await must(['ip', '-j', 'link', 'show', dev]))[0].address as string;
    const bridgeMac = await macOf(`bt${id}0`);
    expect([await macOf(ea.hostVeth), await macOf(eb.hostVeth)]).not.toContain(bridgeMac);

    await rig.httpd(a.name);
    expect((await curl(b.name, `http://${ea.ipAddress}/`)).stdout).toBe(`hello from ${a.name}\n`);

    await rig.httpd(outside.name, 8080);
    const seen = await curl(b.name, `http://${outside.address}:8080/cgi-bin/addr`);
    expect(seen.stdout.trim()).toBe(outside.hostAddress);

    // A namespace named by a process in it (`unshare --net`), as the engine passes a container's pid.
    const holder = spawn('unshare', ['--net', 'sleep', '300'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 100));
      const ep = await manager.connect({ containerId: `${id}-pid`, pid: holder.pid!, network: 'bridge' });
      expect(ep.sandboxKey).toBe(`/proc/${holder.pid}/ns/net`);
      const r = await run(['nsenter', `--net=${ep.sandboxKey}`, 'curl', '-s', '-m', '3', `http://${ea.ipAddress}/`]);
      expect(r.stdout).toBe(`hello from ${a.name}\n`);
      await manager.releaseContainer({ containerId: `${id}-pid` });
      expect((await run(['ip', 'link', 'show', ep.hostVeth])).code).not.toBe(0);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('user network: names and aliases resolve through the embedded DNS; other networks are isolated', async () => {
    const net = await manager.createNetwork({ name: `front${id}`, subnet: subnets[1], labels: { app: 'x' } });
    const other = await manager.createNetwork({ name: `back${id}`, subnet: subnets[2] });
    expect(net.ipam).toEqual({ subnet: subnets[1], gateway: subnets[1]!.replace(/0\/24$/, '1') });
    await expect(manager.createNetwork({ name: `dup${id}`, subnet: subnets[1]!.replace(/0\/24$/, '128/25') })).rejects.toMatchObject({
      kind: 'Conflict',
      code: 'ERR_SUBNET_OVERLAP',
    });
    await expect(manager.createNetwork({ name: `front${id}` })).rejects.toMatchObject({ kind: 'Conflict', code: 'ERR_NETWORK_EXISTS' });

    const web = await rig.netns('web');
    const client = await rig.netns('cli');
    const stranger = await rig.netns('str');
    const ew = await manager.connect({ containerId: `${id}-web`, containerName: '/web', netnsPath: web.path, network: net.name, aliases: ['www'] });
    await manager.connect({ containerId: `${id}-cli`, containerName: 'client', netnsPath: client.path, network: net.id.slice(0, 12) });
    const es = await manager.connect({ containerId: `${id}-str`, containerName: 'stranger', netnsPath: stranger.path, network: other.name });
    expect(ew.dnsNames).toEqual(['web', 'www', `${id}-web`.slice(0, 12)]);
    await expect(
      manager.connect({ containerId: `${id}-cli`, containerName: 'client', netnsPath: client.path, network: net.name }),
    ).rejects.toMatchObject({ code: 'ERR_ENDPOINT_EXISTS' });

    const files = await manager.containerFiles({ containerId: `${id}-cli`, hostname: 'client', mode: 'bridge' });
    expect(files.resolvConf).toContain(`nameserver ${net.ipam!.gateway}\n`);
    expect(files.resolvConf).toContain('search example.test\n');
    expect(files.hosts).toMatch(/\tclient\n$/);
    await rig.etc(client.name, { 'resolv.conf': files.resolvConf, hosts: files.hosts });
    const strangerFiles = await manager.containerFiles({ containerId: `${id}-str`, hostname: 'stranger', mode: 'bridge' });
    await rig.etc(stranger.name, { 'resolv.conf': strangerFiles.resolvConf, hosts: strangerFiles.hosts });

    expect((await must(['getent', 'hosts', 'web'], { ns: client.name })).trim().split(/\s+/)).toEqual([ew.ipAddress, 'web']);
    expect((await must(['getent', 'hosts', 'WWW'], { ns: client.name })).split(/\s+/)[0]).toBe(ew.ipAddress);
    expect((await must(['getent', 'hosts', ew.ipAddress], { ns: client.name })).trim()).toMatch(/\sweb$/);
    expect((await must(['getent', 'hosts', 'outside.test'], { ns: client.name })).split(/\s+/)[0]).toBe('192.0.2.123');
    await rig.httpd(web.name);
    expect((await curl(client.name, 'http://www/')).stdout).toBe(`hello from ${web.name}\n`);

    // The other network's container neither resolves nor reaches them.
    expect((await run(['getent', 'hosts', 'web'], { ns: stranger.name })).code).not.toBe(0);
    const direct = await curl(stranger.name, `http://${ew.ipAddress}/`, 2);
    expect(direct.code).not.toBe(0);
    // The server on the first network's gateway refuses a querier from outside its subnet.
    const refused = await run(['busybox', 'nslookup', 'web', net.ipam!.gateway], { ns: stranger.name });
    expect(refused.stdout + refused.stderr).toMatch(/REFUSED|can't resolve|NXDOMAIN/i);
    expect(es.ipAddress.startsWith(subnets[2]!.slice(0, -4))).toBe(true);

    const inspected = await manager.inspectNetwork(`front${id}`);
    expect(inspected.containers.map((c) => c.name).sort()).toEqual(['client', 'web']);
    expect(inspected.labels).toEqual({ app: 'x' });
    await expect(manager.removeNetwork(net.name)).rejects.toMatchObject({ kind: 'Conflict', code: 'ERR_NETWORK_IN_USE' });
    await expect(manager.removeNetwork('bridge')).rejects.toMatchObject({ kind: 'PermissionDenied' });
    await expect(manager.inspectNetwork(`nope${id}`)).rejects.toMatchObject({ kind: 'NotFound', code: 'ERR_NETWORK_NOT_FOUND' });

    // A rename is seen by the embedded DNS at once.
    await manager.renameContainer({ containerId: `${id}-web`, name: '/web2' });
    expect((await must(['getent', 'hosts', 'web2'], { ns: client.name })).split(/\s+/)[0]).toBe(ew.ipAddress);
    expect((await run(['getent', 'hosts', 'web'], { ns: client.name })).code).not.toBe(0);
    expect((await must(['getent', 'hosts', 'www'], { ns: client.name })).split(/\s+/)[0]).toBe(ew.ipAddress);

    // Disconnecting takes the name out of DNS and the veth off the host.
    await manager.disconnect({ containerId: `${id}-web`, network: net.name });
    expect((await run(['getent', 'hosts', 'www'], { ns: client.name })).code).not.toBe(0);
    expect((await run(['ip', 'link', 'show', ew.hostVeth])).code).not.toBe(0);
    expect(await must(['ip', '-br', 'link'], { ns: web.name })).not.toContain('eth0');
  });

  it('published TCP port: proxy on 127.0.0.1, DNAT from outside, clear conflicts that leave nothing', async () => {
    const p = await rig.netns('pub');
    const ep = await manager.connect({ containerId: `${id}-pub`, containerName: 'pub', netnsPath: p.path, network: 'bridge' });
    await rig.httpd(p.name);
    const port = await freePort();
    const [mapping] = await manager.publish({ containerId: `${id}-pub`, ports: parsePublish(`${port}:80`) });
    expect(mapping).toMatchObject({ hostIp: '0.0.0.0', hostPort: port, containerPort: 80, protocol: 'tcp', containerIp: ep.ipAddress });

    // Loopback goes through the userland proxy, which connects from the gateway.
    expect((await curl(undefined, `http://127.0.0.1:${port}/`)).stdout).toBe(`hello from ${p.name}\n`);
    expect((await curl(undefined, `http://127.0.0.1:${port}/cgi-bin/addr`)).stdout.trim()).toBe(ep.gateway);
    // Another machine goes through DNAT, which keeps its address.
    expect((await curl(outside.name, `http://${outside.hostAddress}:${port}/cgi-bin/addr`)).stdout.trim()).toBe(outside.address);
    expect((await manager.listRules()).some((r) => r.includes(`${port}`) && r.includes('DNAT'))).toBe(true);

    // A port another program holds: a Conflict naming it, and nothing recorded or bound.
    const held = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen({ host: '0.0.0.0', port: held }, () => resolve()));
    try {
      const err = await manager.publish({ containerId: `${id}-pub`, ports: [...parsePublish(`${held + 1 === port ? held + 2 : held + 1}:81`), ...parsePublish(`${held}:80`)] }).catch((e: unknown) => e);
      expect(err).toMatchObject({ kind: 'Conflict', code: 'ERR_PORT_IN_USE' });
      expect((err as Error).message).toContain(String(held));
    } finally {
      blocker.close();
    }
    expect((await manager.listPorts(`${id}-pub`)).map(formatPortMapping)).toEqual([`80/tcp -> 0.0.0.0:${port}`]);
    expect((await manager.listRules()).filter((r) => r.includes('DNAT') && r.includes('--to-destination'))).toHaveLength(1);

    // The same host port again, by another container: Conflict before anything is bound.
    const q = await rig.netns('pub2');
    await manager.connect({ containerId: `${id}-pub2`, containerName: 'pub2', netnsPath: q.path, network: 'bridge' });
    await expect(manager.publish({ containerId: `${id}-pub2`, ports: parsePublish(`127.0.0.1:${port}:80`) })).rejects.toMatchObject({
      code: 'ERR_PORT_IN_USE',
      message: expect.stringContaining(`${id}-pub`.slice(0, 12)),
    });
    // Hairpin: a container on the same bridge reaches the published port through the host's address (via the proxy).
    expect((await curl(q.name, `http://${outside.hostAddress}:${port}/cgi-bin/addr`)).stdout.trim()).toBe(ep.gateway);

    // -P: a free ephemeral port for each EXPOSEd port; a host range: its first free port.
    const [auto] = await manager.publish({ containerId: `${id}-pub`, ports: exposedPortSpecs(['80/tcp']) });
    expect(auto!.hostPort).toBeGreaterThan(1024);
    expect((await curl(undefined, `http://127.0.0.1:${auto!.hostPort}/`)).stdout).toBe(`hello from ${p.name}\n`);
    const rangeStart = await freePort();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen({ host: '0.0.0.0', port: rangeStart }, () => resolve()));
    try {
      const [ranged] = await manager.publish({ containerId: `${id}-pub2`, ports: parsePublish(`${rangeStart}-${rangeStart + 3}:80`) });
      expect(ranged!.hostPort).toBeGreaterThan(rangeStart);
      expect(ranged!.hostPort).toBeLessThanOrEqual(rangeStart + 3);
    } finally {
      squatter.close();
    }

    await manager.unpublish({ containerId: `${id}-pub` });
    expect(await manager.listPorts(`${id}-pub`)).toEqual([]);
    expect((await curl(undefined, `http://127.0.0.1:${port}/`, 1)).code).not.toBe(0);
    expect((await manager.listRules()).some((r) => r.includes(`--dport ${port} `))).toBe(false);
  });

  it('published UDP port: through the proxy and through DNAT', async () => {
    const u = await rig.netns('udp');
    const eu = await manager.connect({ containerId: `${id}-udp`, containerName: 'udp', netnsPath: u.path, network: 'bridge' });
    await rig.udpEcho(u.name, 5353);
    const [m] = await manager.publish({ containerId: `${id}-udp`, ports: parsePublish('5353/udp') });
    expect(m!.protocol).toBe('udp');
    expect(await udpAsk('127.0.0.1', m!.hostPort)).toBe(`pong ${eu.gateway}`);
    const viaDnat = await run(['socat', '-T', '3', '-', `UDP4:${outside.hostAddress}:${m!.hostPort}`], { ns: outside.name, input: 'ping\n' });
    expect(viaDnat.stdout.trim()).toBe(`pong ${outside.address}`);
    expect((await manager.listRules()).some((r) => new RegExp(`dport ${m!.hostPort}\\b`).test(r))).toBe(true);
    await manager.releaseContainer({ containerId: `${id}-udp` });
    expect(await manager.listPorts(`${id}-udp`)).toEqual([]);
    expect((await manager.listRules()).some((r) => new RegExp(`dport ${m!.hostPort}\\b`).test(r))).toBe(false);
    expect(await udpAsk('127.0.0.1', m!.hostPort).catch((e: Error) => e.message)).toMatch(/no UDP reply/);
  });

  it('a container that exited unseen frees its host port, address and name at the next connect or publish', async () => {
    const net = await manager.inspectNetwork(`front${id}`);
    const gone = await rig.netns('gone');
    const eg = await manager.connect({ containerId: `${id}-gone`, containerName: 'gone', netnsPath: gone.path, network: net.name, ip: net.ipam!.gateway.replace(/1$/, '200') });
    const port = await freePort();
    await manager.publish({ containerId: `${id}-gone`, ports: parsePublish(`${port}:80`) });
    await must(['ip', 'netns', 'del', gone.name]);
    // Same host port, same address, same name: all free again without any release call.
    const next = await rig.netns('next');
    const en = await manager.connect({ containerId: `${id}-next`, containerName: 'gone', netnsPath: next.path, network: net.name, ip: eg.ipAddress });
    expect(en.ipAddress).toBe(eg.ipAddress);
    await rig.httpd(next.name);
    await manager.publish({ containerId: `${id}-next`, ports: parsePublish(`${port}:80`) });
    expect((await curl(undefined, `http://127.0.0.1:${port}/`)).stdout).toBe(`hello from ${next.name}\n`);
    expect(await manager.listPorts(`${id}-gone`)).toEqual([]);
    await manager.releaseContainer({ containerId: `${id}-next` });
  });

  it('--internal: no route out, no forwarding, names still resolve', async () => {
    const net = await manager.createNetwork({ name: `int${id}`, subnet: subnets[3], internal: true });
    const c = await rig.netns('int1');
    const d = await rig.netns('int2');
    const ec = await manager.connect({ containerId: `${id}-int1`, containerName: 'int1', netnsPath: c.path, network: net.name });
    const ed = await manager.connect({ containerId: `${id}-int2`, containerName: 'int2', netnsPath: d.path, network: net.name });
    expect(ec.gateway).toBe('');
    expect(ec.defaultRoute).toBe(false);
    expect((await must(['ip', 'route', 'show', 'default'], { ns: c.name })).trim()).toBe('');
    expect((await curl(c.name, `http://${outside.address}:8080/`, 2)).code).not.toBe(0);
    // Even with a route forced in, the bridge forwards nothing out.
    await must(['ip', 'route', 'add', 'default', 'via', net.ipam!.gateway], { ns: c.name });
    expect((await curl(c.name, `http://${outside.address}:8080/`, 2)).code).not.toBe(0);
    await rig.httpd(d.name);
    const files = await manager.containerFiles({ containerId: `${id}-int1`, hostname: 'int1', mode: 'bridge' });
    await rig.etc(c.name, { 'resolv.conf': files.resolvConf });
    expect((await curl(c.name, 'http://int2/')).stdout).toBe(`hello from ${d.name}\n`);
    expect((await run(['getent', 'hosts', 'outside.test'], { ns: c.name })).code).not.toBe(0);
    expect(ed.ipAddress).not.toBe(ec.ipAddress);
    await expect(manager.publish({ containerId: `${id}-int1`, ports: parsePublish('80') })).rejects.toMatchObject({ kind: 'FailedPrecondition' });
  });

  it('--network none and host: loopback only, host files, container addresses reachable from the host', async () => {
    const n = await rig.netns('none');
    await manager.setupLoopback({ netnsPath: n.path });
    const links = JSON.parse(await must(['ip', '-j', 'link', 'show'], { ns: n.name })) as { ifname: string; flags: string[] }[];
    expect(links.map((l) => l.ifname)).toEqual(['lo']);
    expect(links[0]!.flags).toContain('UP');
    await expect(manager.connect({ containerId: `${id}-none`, netnsPath: n.path, network: 'none' })).rejects.toMatchObject({ kind: 'InvalidArgument' });
    await expect(manager.connect({ containerId: `${id}-none`, netnsPath: n.path, network: 'host' })).rejects.toMatchObject({ kind: 'InvalidArgument' });
    const none = await manager.containerFiles({ containerId: `${id}-none`, hostname: 'lonely', mode: 'none' });
    expect(none.hosts).not.toMatch(/\tlonely/);

    const host = await manager.containerFiles({ containerId: `${id}-host`, hostname: 'h', mode: 'host', extraHosts: ['gw:host-gateway'] });
    expect(host.resolvConf).toContain(`nameserver ${upstreamAddress}`);
    expect(host.hosts).toContain(`${await manager.hostGateway()}\tgw\n`);
    // A --network host process is a host process: it reaches a bridge container directly.
    const t = await rig.netns('tgt');
    const et = await manager.connect({ containerId: `${id}-tgt`, netnsPath: t.path, network: 'bridge' });
    await rig.httpd(t.name);
    expect((await curl(undefined, `http://${et.ipAddress}/`)).stdout).toBe(`hello from ${t.name}\n`);
  });

  it('network options: subnets from the pools, --gateway, --ip-range, --ip, --mac, and what docker refuses', async () => {
    const routes = await must(['ip', '-4', 'route', 'show', 'table', 'all']);
    let pool = '';
    for (let x = 100 + Math.floor(Math.random() * 100); !pool; x++) if (!routes.includes(`10.${x}.`) && !subnets.some((n) => n.startsWith(`10.${x}.`))) pool = `10.${x}`;
    const pooled = new NetworkManager({ ...options, addressPools: [{ base: `${pool}.0.0/16`, size: 24 }] });
    const first = await pooled.createNetwork({ name: `pool1${id}` });
    const second = await pooled.createNetwork({ name: `pool2${id}`, attachable: true });
    expect(first.ipam).toEqual({ subnet: `${pool}.0.0/24`, gateway: `${pool}.0.1` });
    expect(second.ipam?.subnet).toBe(`${pool}.1.0/24`);
    expect(second.attachable).toBe(true);

    const custom = await pooled.createNetwork({
      name: `cust${id}`,
      subnet: `${pool}.5.0/24`,
      gateway: `${pool}.5.254`,
      ipRange: `${pool}.5.128/25`,
      options: { 'com.docker.network.driver.mtu': '1400' },
    });
    expect(custom.ipam).toEqual({ subnet: `${pool}.5.0/24`, gateway: `${pool}.5.254`, ipRange: `${pool}.5.128/25` });
    expect(custom.mtu).toBe(1400);
    const r = await rig.netns('rng');
    const er = await pooled.connect({ containerId: `${id}-rng`, netnsPath: r.path, network: custom.name });
    expect(er.ipAddress).toBe(`${pool}.5.129`);
    // The veth takes the bridge's MTU on both ends.
    expect(JSON.parse(await must(['ip', '-j', 'link', 'show', 'eth0'], { ns: r.name }))[0].mtu).toBe(1400);
    expect(JSON.parse(await must(['ip', '-j', 'link', 'show', er.hostVeth]))[0].mtu).toBe(1400);
    expect(JSON.parse(await must(['ip', '-j', 'link', 'show', custom.bridgeName!]))[0].mtu).toBe(1400);
    expect(await must(['ip', 'route', 'show', 'default'], { ns: r.name })).toContain(`via ${pool}.5.254`);
    const s = await rig.netns('sta');
    const es = await pooled.connect({ containerId: `${id}-sta`, pid: undefined, netnsPath: s.path, network: custom.name, ip: `${pool}.5.10`, mac: '02:AA:bb:cc:dd:ee' });
    expect(es).toMatchObject({ ipAddress: `${pool}.5.10`, requestedAddress: `${pool}.5.10`, macAddress: '02:aa:bb:cc:dd:ee' });
    expect(JSON.parse(await must(['ip', '-j', 'link', 'show', 'eth0'], { ns: s.name }))[0].address).toBe('02:aa:bb:cc:dd:ee');
    expect(er.requestedAddress).toBeUndefined();

    const t = await rig.netns('bad');
    const attempt = (over: object) => pooled.connect({ containerId: `${id}-bad`, netnsPath: t.path, network: custom.name, ...over });
    await expect(attempt({ ip: `${pool}.5.10` })).rejects.toMatchObject({ kind: 'Conflict', code: 'ERR_ADDRESS_IN_USE' });
    await expect(attempt({ ip: `${pool}.6.10` })).rejects.toMatchObject({ kind: 'InvalidArgument' });
    await expect(attempt({ ip: `${pool}.5.255` })).rejects.toMatchObject({ kind: 'InvalidArgument' });
    await expect(attempt({ mac: '01:00:5e:00:00:01' })).rejects.toMatchObject({ kind: 'InvalidArgument' });
    await expect(attempt({ network: 'bridge', ip: subnets[0]!.replace(/0\/24$/, '77') })).rejects.toMatchObject({ kind: 'InvalidArgument' });
    await expect(attempt({ network: 'bridge', aliases: ['x'] })).rejects.toMatchObject({ kind: 'InvalidArgument' });
    await expect(attempt({ netnsPath: `/run/netns/bt${id}missing` })).rejects.toMatchObject({ kind: 'NotFound', code: 'ERR_NETNS_NOT_FOUND' });
    await expect(attempt({ network: `nope${id}` })).rejects.toMatchObject({ kind: 'NotFound' });
    // Nothing of the failed attempts stays: no endpoint, no link in the namespace.
    expect(await pooled.containerEndpoints(`${id}-bad`)).toEqual([]);
    expect((await must(['ip', '-br', 'link'], { ns: t.name })).trim().split('\n')).toHaveLength(1);

    await expect(pooled.createNetwork({ name: `g${id}`, gateway: '10.0.0.1' })).rejects.toMatchObject({ kind: 'InvalidArgument' });
    await expect(pooled.createNetwork({ name: 'bad name' })).rejects.toMatchObject({ code: 'ERR_INVALID_NETWORK_NAME' });
    await expect(pooled.createNetwork({ name: `ov${id}`, driver: 'overlay' })).rejects.toMatchObject({ kind: 'NotImplemented' });
    await expect(pooled.createNetwork({ name: `gw${id}`, subnet: `${pool}.9.0/24`, gateway: `${pool}.8.1` })).rejects.toMatchObject({ kind: 'InvalidArgument' });
    await expect(pooled.createNetwork({ name: `rt${id}`, subnet: subnets[5] })).rejects.toMatchObject({ code: 'ERR_SUBNET_OVERLAP', message: expect.stringContaining('host route') });

    await pooled.releaseContainer({ containerId: `${id}-rng` });
    await pooled.releaseContainer({ containerId: `${id}-sta` });
    const pruned = await pooled.pruneNetworks({ filter: (n) => n.name.endsWith(id) && n.name !== `front${id}` && n.name !== `back${id}` && n.name !== `int${id}` });
    expect(pruned.sort()).toEqual([`cust${id}`, `pool1${id}`, `pool2${id}`]);
  });

  it('a container on two networks: eth0 and eth1, names of both, the default route moves on disconnect', async () => {
    const net = await manager.inspectNetwork(`back${id}`);
    const m = await rig.netns('multi');
    const peer = await rig.netns('peer');
    await manager.connect({ containerId: `${id}-peer`, containerName: 'peer', netnsPath: peer.path, network: net.name });
    const e0 = await manager.connect({ containerId: `${id}-multi`, containerName: 'multi', netnsPath: m.path, network: net.name });
    const e1 = await manager.connect({ containerId: `${id}-multi`, containerName: 'multi', netnsPath: m.path, network: 'bridge' });
    expect([e0.ifname, e0.defaultRoute, e1.ifname, e1.defaultRoute]).toEqual(['eth0', true, 'eth1', false]);
    expect((await manager.containerEndpoints(`${id}-multi`)).map((e) => e.networkName)).toEqual([net.name, 'bridge']);
    const files = await manager.containerFiles({ containerId: `${id}-multi`, hostname: 'multi', mode: 'bridge' });
    expect(files.hosts).toContain(`${e0.ipAddress}\tmulti\n${e1.ipAddress}\tmulti\n`);
    await rig.etc(m.name, { 'resolv.conf': files.resolvConf });
    expect((await must(['getent', 'hosts', 'peer'], { ns: m.name })).split(/\s+/)[0]).toMatch(/^10\./);
    expect(await must(['ip', 'route', 'show', 'default'], { ns: m.name })).toContain('dev eth0');
    await manager.disconnect({ containerId: `${id}-multi`, network: net.name });
    expect(await must(['ip', 'route', 'show', 'default'], { ns: m.name })).toContain(`default via ${e1.gateway} dev eth1`);
    expect((await manager.containerEndpoints(`${id}-multi`))[0]!.defaultRoute).toBe(true);
    await manager.releaseContainer({ containerId: `${id}-multi` });
    await manager.releaseContainer({ containerId: `${id}-peer` });
    await expect(manager.disconnect({ containerId: `${id}-multi`, network: 'bridge' })).rejects.toMatchObject({ code: 'ERR_CONTAINER_NOT_CONNECTED' });
  });

  it('several processes connecting at once never share an address', async () => {
    const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const spaces = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => rig.netns(`par${i}`)));
    const script = (ns: string, cid: string) => `
      import { NetworkManager } from ${JSON.stringify(dist)};
      const m = new NetworkManager(${JSON.stringify(options)});
      const e = await m.connect({ containerId: ${JSON.stringify(cid)}, netnsPath: ${JSON.stringify(ns)}, network: 'bridge' });
      process.stdout.write(e.ipAddress);`;
    const addresses = await Promise.all(
      spaces.map(
        (s, i) =>
          new Promise<string>((resolve, reject) => {
            const child = spawn(process.execPath, ['--input-type=module', '-e', script(s.path, `${id}-par${i}`)], { stdio: ['ignore', 'pipe', 'inherit'] });
            let out = '';
            child.stdout.on('data', (b: Buffer) => (out += b.toString()));
            child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child ${i} exited ${code}`))));
          }),
      ),
    );
    expect(new Set(addresses).size).toBe(6);
    const bridge = await manager.inspectNetwork('bridge');
    for (const a of addresses) expect(bridge.containers.map((c) => c.ipv4Address)).toContain(`${a}/24`);
    for (let i = 0; i < 6; i++) await manager.releaseContainer({ containerId: `${id}-par${i}` });
  });

  it('init after kill -9 of the helper and dead containers releases their veths, rules and proxies', async () => {
    const live = await rig.netns('live');
    const dead = await rig.netns('dead');
    const net = await manager.createNetwork({ name: `rec${id}`, subnet: subnets[4] });
    const el = await manager.connect({ containerId: `${id}-live`, containerName: 'live', netnsPath: live.path, network: net.name });
    const ed = await manager.connect({ containerId: `${id}-dead`, containerName: 'dead', netnsPath: dead.path, network: 'bridge' });
    await rig.httpd(dead.name);
    const [m] = await manager.publish({ containerId: `${id}-dead`, ports: parsePublish('80') });
    expect((await curl(undefined, `http://127.0.0.1:${m!.hostPort}/`)).stdout).toBe(`hello from ${dead.name}\n`);
    // A veth that a crashed connect left behind, with this tag's alias.
    const stray = `vt${id}zz`;
    await must(['ip', 'link', 'add', stray, 'type', 'veth', 'peer', 'name', `vt${id}zy`]);
    await must(['ip', 'link', 'set', stray, 'alias', `berth:${tag}`]);

    // A container whose process died (pid namespace gone), and one the engine no longer runs.
    const holder = spawn('unshare', ['--net', 'sleep', '300'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 100));
    const eh = await manager.connect({ containerId: `${id}-gone`, pid: holder.pid!, network: 'bridge' });
    const forgotten = await rig.netns('forg');
    const ef = await manager.connect({ containerId: `${id}-forg`, netnsPath: forgotten.path, network: 'bridge' });
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));

    const pid = await manager.helperPid();
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, 'SIGKILL');
    await must(['ip', 'netns', 'del', dead.name]);

    const fresh = new NetworkManager(options);
    const known = (await fresh.listNetworks()).flatMap((n) => n.containers.map((c) => c.containerId));
    const report = await fresh.init({ liveContainers: known.filter((c) => c !== `${id}-forg`) });
    expect(report.endpointsReleased).toBe(3);
    for (const e of [eh, ef]) expect((await run(['ip', 'link', 'show', e.hostVeth])).code).not.toBe(0);
    expect(await must(['ip', '-br', 'link'], { ns: forgotten.name })).not.toContain('eth0');
    expect(report.portsReleased).toBe(1);
    expect(report.linksRemoved).toContain(stray);
    expect((await run(['ip', 'link', 'show', ed.hostVeth])).code).not.toBe(0);
    expect((await run(['ip', 'link', 'show', stray])).code).not.toBe(0);
    expect((await fresh.listRules()).some((r) => r.includes(`--dport ${m!.hostPort} `))).toBe(false);
    expect((await curl(undefined, `http://127.0.0.1:${m!.hostPort}/`, 1)).code).not.toBe(0);
    // The living container keeps its network, and DNS is served again by a new helper.
    expect(await fresh.containerEndpoints(`${id}-live`)).toHaveLength(1);
    const newPid = await fresh.helperPid();
    expect(newPid).toBeGreaterThan(0);
    expect(newPid).not.toBe(pid);
    const files = await fresh.containerFiles({ containerId: `${id}-live`, hostname: 'live', mode: 'bridge' });
    await rig.etc(live.name, { 'resolv.conf': files.resolvConf, hosts: files.hosts });
    expect((await must(['getent', 'hosts', 'live'], { ns: live.name })).split(/\s+/)[0]).toBe(el.ipAddress);
    expect(await must(['ip', 'route', 'show', 'default'], { ns: live.name })).toContain(net.ipam!.gateway);
    await fresh.releaseContainer({ containerId: `${id}-live` });
    expect(await fresh.pruneNetworks({ filter: (n) => n.name === `rec${id}` })).toEqual([`rec${id}`]);
  });

  it('the helper starts with the first published port and exits with the last', async () => {
    const soloDir = join(await rig.tempDir('solo'), 'network');
    const solo = new NetworkManager({ ...options, stateDir: soloDir, defaultBridge: `bt${id}s`, defaultSubnet: subnets[6], ruleTag: `s${id}` });
    try {
      const n = await rig.netns('solo');
      await solo.connect({ containerId: `${id}-solo`, netnsPath: n.path, network: 'bridge' });
      expect(await solo.helperPid()).toBeUndefined();
      await solo.publish({ containerId: `${id}-solo`, ports: parsePublish('80') });
      const pid = await solo.helperPid();
      expect(pid).toBeGreaterThan(0);
      expect((await run(['cat', `/proc/${pid}/cmdline`])).stdout).toContain(soloDir);
      await solo.releaseContainer({ containerId: `${id}-solo` });
      expect(await solo.helperPid()).toBeUndefined();
      expect((await leftovers(`s${id}`, [], soloDir)).processes).toEqual([]);
    } finally {
      await solo.removeAll();
    }
    expect(await leftovers(`s${id}`, [`bt${id}s`], soloDir)).toEqual({ links: [], rules: [], processes: [] });
  });

  it('removeAll leaves no veth, bridge, rule or helper of the tag behind', async () => {
    const left = await manager.listNetworks();
    expect(left.map((n) => n.name)).toEqual(expect.arrayContaining(['bridge', 'host', 'none']));
    await manager.removeAll();
    expect(await leftovers(tag, prefixes, options.stateDir)).toEqual({ links: [], rules: [], processes: [] });
  });
});
