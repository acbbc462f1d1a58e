import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// Test rig of the network package: network namespaces standing in for containers, busybox httpd
// and socat servers inside them, an "outside" namespace routed through the host, and the checks
// that nothing of a test's tag is left. Everything it creates is named after one random id and
// removed by cleanup(), also when a test failed.

/** The result of a command. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs argv (in netns `ns` when given) and collects its output; never rejects on a non-zero exit. */
export function run(argv: readonly string[], options: { ns?: string; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const full = options.ns ? ['ip', 'netns', 'exec', options.ns, ...argv] : [...argv];
  return new Promise((resolve, reject) => {
    const child = spawn(full[0]!, full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** Runs argv and returns stdout, throwing with stderr on failure. */
export async function must(argv: readonly string[], options: { ns?: string; input?: string } = {}): Promise<string> {
  const r = await run(argv, options);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Why the network tests cannot run here, or undefined when they can. */
export async function missingPrerequisite(commands: readonly string[] = ['ip', 'nsenter', 'busybox', 'curl', 'socat', 'getent']): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, bridges, firewall rules)';
  for (const c of commands) {
    if ((await run(['sh', '-c', `command -v ${c}`])).code !== 0) return `needs ${c} on PATH`;
  }
  if ((await run(['ip', 'netns', 'list'])).code !== 0) return 'needs ip netns (network namespaces)';
  return undefined;
}

/** A short random id for the names of one test file (bridges, netns, rule tags). */
export function testId(): string {
  return randomBytes(3).toString('hex');
}

/** `count` random 10.x.y.0/24 subnets that no host route overlaps (10.0.0.0/8 aside: none here). */
export async function freeSubnets(count: number): Promise<string[]> {
  const routes = (JSON.parse(await must(['ip', '-j', '-4', 'route', 'show', 'table', 'all'])) as { dst: string }[]).map((r) => r.dst);
  const picked = new Set<string>();
  while (picked.size < count) {
    const candidate = `10.${randomInt(100, 250)}.${randomInt(0, 256)}`;
    if (routes.some((r) => r.startsWith(`${candidate}.`)) || picked.has(candidate)) continue;
    picked.add(candidate);
  }
  return [...picked].map((p) => `${p}.0/24`);
}

/** A free TCP (and, by luck of the same number, usually UDP) port on the host. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '0.0.0.0', port: 0 }, () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A namespace standing in for a container. */
export interface Netns {
  readonly name: string;
  readonly path: string;
}

/** A namespace outside the host, reached through a veth pair: a stand-in for another machine. */
export interface Outside extends Netns {
  /** The host's address on the link, which masquerade rewrites sources to. */
  readonly hostAddress: string;
  readonly address: string;
}

/** Namespaces, servers and files of one test file, removed by `cleanup`. */
export class NetnsRig {
  readonly id: string;
  readonly #namespaces: string[] = [];
  readonly #links: string[] = [];
  readonly #procs: ChildProcess[] = [];
  readonly #dirs: string[] = [];

  constructor(id: string) {
    this.id = id;
  }

  /** A new named network namespace (`ip netns add`), loopback down as a fresh one is. */
  async netns(suffix: string): Promise<Netns> {
    const name = `bt${this.id}${suffix}`;
    await must(['ip', 'netns', 'add', name]);
    this.#namespaces.push(name);
    return { name, path: `/run/netns/${name}` };
  }

  /** A temporary directory removed at cleanup. */
  async tempDir(label: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `berth-net-${label}-`));
    this.#dirs.push(dir);
    return dir;
  }

  /** Starts a process in `ns` that lives until cleanup. */
  spawn(ns: string, argv: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: 'ignore' });
    this.#procs.push(child);
    return child;
  }

  /** Waits until something listens on `port` (tcp or udp) inside `ns`. */
  async waitListening(ns: string, port: number, protocol: 'tcp' | 'udp' = 'tcp'): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const r = await run(['ss', '-Hln', protocol === 'tcp' ? '-t' : '-u', 'sport', '=', `:${port}`], { ns });
      if (r.stdout.trim()) return;
      await sleep(25);
    }
    throw new Error(`nothing listens on ${protocol} port ${port} in ${ns}`);
  }

  /**
   * busybox httpd on `port` in `ns`, serving `hello from <ns>` at / and the client's address at
   * /cgi-bin/addr, which tells DNAT (the client's own address) from the proxy (the gateway's).
   */
  async httpd(ns: string, port = 80): Promise<void> {
    const dir = await this.tempDir('www');
    await writeFile(join(dir, 'index.html'), `hello from ${ns}\n`);
    await mkdir(join(dir, 'cgi-bin'));
    await writeFile(join(dir, 'cgi-bin', 'addr'), '#!/bin/sh\n# busybox httpd listens dual-stack: [::ffff:10.0.0.1] is 10.0.0.1.\naddr=${REMOTE_ADDR#[::ffff:}\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "${addr%]}"\n');
    await chmod(join(dir, 'cgi-bin', 'addr'), 0o755);
    this.spawn(ns, ['busybox', 'httpd', '-f', '-p', String(port), '-h', dir]);
    await this.waitListening(ns, port);
  }

  /**
   * A UDP server on `port` in `ns` that answers every datagram with `pong <client address>`. It is
   * a small Node program: socat's forking UDP server drops a few datagrams in a hundred.
   */
  async udpEcho(ns: string, port: number): Promise<void> {
    const script = `const s = require('node:dgram').createSocket('udp4');
      s.on('message', (m, r) => s.send('pong ' + r.address + '\\n', r.port, r.address));
      s.bind(${port});`;
    this.spawn(ns, [process.execPath, '-e', script]);
    await this.waitListening(ns, port, 'udp');
  }

  /** An outside namespace linked to the host by a veth pair on `subnet` (host .1, outside .2). */
  async outside(subnet: string): Promise<Outside> {
    const ns = await this.netns('out');
    const base = subnet.slice(0, subnet.lastIndexOf('.'));
    const hostAddress = `${base}.1`;
    const address = `${base}.2`;
    const link = `bo${this.id}`;
    await must(['ip', 'link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
    this.#links.push(link);
    await must(['ip', 'addr', 'add', `${hostAddress}/24`, 'dev', link]);
    await must(['ip', 'link', 'set', link, 'up']);
    await must(['ip', '-n', ns.name, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
    await must(['ip', '-n', ns.name, 'link', 'set', 'eth0', 'up']);
    await must(['ip', '-n', ns.name, 'link', 'set', 'lo', 'up']);
    return { ...ns, hostAddress, address };
  }

  /** Files `ip netns exec` bind-mounts over /etc (resolv.conf, hosts) for `ns`. */
  async etc(ns: string, files: Readonly<Record<string, string>>): Promise<void> {
    const dir = `/etc/netns/${ns}`;
    await mkdir(dir, { recursive: true });
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  }

  /** Kills the servers, deletes the namespaces, links, /etc/netns entries and temp dirs. */
  async cleanup(): Promise<void> {
    for (const p of this.#procs) {
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise((resolve) => p.once('exit', resolve));
        p.kill('SIGKILL');
        await exited;
      }
    }
    // ip netns exec may leave the server itself (httpd forks into the namespace) behind its own death.
    for (const ns of this.#namespaces) {
      const pids = (await run(['ip', 'netns', 'pids', ns])).stdout.split('\n').filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const link of this.#links) await run(['ip', 'link', 'del', link]);
    for (const ns of this.#namespaces) {
      await run(['ip', 'netns', 'del', ns]);
      await rm(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
    for (const dir of this.#dirs) await rm(dir, { recursive: true, force: true });
  }
}

/** What a tag left on the host: links (by alias or name prefix), firewall rules, helper processes. */
export interface Leftovers {
  readonly links: string[];
  readonly rules: string[];
  readonly processes: string[];
}

/**
 * Everything still on the host that belongs to `tag`: links aliased `berth:<tag>` or named with
 * one of `prefixes`, rules commented `berth:<tag>` in iptables (both variants) and nftables, and
 * processes whose command line names `stateDir`. Links of a deleted namespace go away
 * asynchronously in the kernel, so this waits a little for them.
 */
export async function leftovers(tag: string, prefixes: readonly string[], stateDir: string): Promise<Leftovers> {
  let links: string[] = [];
  for (let i = 0; i < 40; i++) {
    const all = JSON.parse(await must(['ip', '-j', 'link', 'show'])) as { ifname: string; ifalias?: string }[];
    links = all.filter((l) => l.ifalias === `berth:${tag}` || prefixes.some((p) => l.ifname.startsWith(p))).map((l) => l.ifname);
    if (links.length === 0) break;
    await sleep(50);
  }
  const mark = new RegExp(`berth:${tag}"?(\\s|$)`);
  const rules: string[] = [];
  for (const save of ['iptables-nft-save', 'iptables-legacy-save']) {
    const r = await run([save]);
    rules.push(...r.stdout.split('\n').filter((l) => mark.test(l)).map((l) => `${save}: ${l}`));
  }
  const nft = await run(['nft', 'list', 'ruleset']);
  rules.push(...nft.stdout.split('\n').filter((l) => mark.test(l) || l.includes(`berth-${tag} `)).map((l) => `nft: ${l.trim()}`));
  const processes: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(stateDir)) processes.push(`${pid}: ${cmdline.replaceAll('\0', ' ')}`);
  }
  return { links, rules, processes };
}
