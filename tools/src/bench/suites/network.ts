import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { NetworkManager, parsePublish } from '@berth/network';
import { freeSubnets } from '../../free-subnets.js';
import { makeBusyboxRootfs } from '../../rootfs.js';
import { have, measure, sh, status, type BenchReport, type Subject } from '../measure.js';

// Published ports and network setup, Berth beside docker on the same host and the same work:
//  1. HTTP requests through a published port (ab, busybox httpd): straight to the container's
//     address, through the userland proxy on 127.0.0.1, and through DNAT on the host's own
//     non-loopback address. docker runs as a private dockerd with its own bridge and iptables
//     rules (a name and subnet of this run), torn down after, its leftover chains removed.
//  2. The time to attach a running container's namespace to a network and to detach it: Berth's
//     connect/disconnect (default bridge, and a user network, which also reloads the DNS helper),
//     the bare `ip -batch` work they do (the floor), and docker's network connect/disconnect over
//     its API (dockerode, no CLI start-up in the figure).

const requests = 1000;
const concurrency = 8;

interface Cleanup {
  (): Promise<void>;
}

function quiet(argv: readonly string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.join(' ')}: ${stderr.trim()}`))));
    // A command that reads no input may be gone before the write lands.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}


/** The host's first global IPv4 address on an interface that is not a bridge of this run. */
async function hostAddress(exclude: readonly string[]): Promise<string | undefined> {
  const links = JSON.parse(await sh('ip', ['-j', '-4', 'addr', 'show', 'scope', 'global'])) as {
    ifname: string;
    addr_info: { local: string }[];
  }[];
  return links.find((l) => !exclude.some((p) => l.ifname.startsWith(p)) && l.addr_info[0])?.addr_info[0]?.local;
}

async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await status('curl', ['-sf', '-m', '1', '-o', '/dev/null', url])) === 0) return;
    await sleep(100);
  }
  throw new Error(`${url} did not answer`);
}

function abSubject(name: string, url: string | undefined, skip?: string): Subject {
  if (!url) return { name, skip: skip ?? 'no address to test', run: async () => {} };
  return {
    name,
    run: async () => {
      // -r: go on past a reset; a failed request shows in the status, which must be 0.
      const code = await status('ab', ['-q', '-r', '-n', String(requests), '-c', String(concurrency), url]);
      if (code !== 0) throw new Error(`ab ${url} exited ${code}`);
    },
  };
}

/** A private dockerd with its own bridge and iptables rules, for the port-publishing comparison. */
interface NetDockerd {
  readonly socketPath: string;
  readonly client: Docker;
  readonly cli: (args: readonly string[]) => Promise<string>;
  readonly bridge: string;
  stop(): Promise<void>;
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * Removes what an iptables-enabled dockerd leaves in the tables after it stops: the DOCKER*
 * chains, the jumps to them, and the rules naming its bridge. Only called when no DOCKER chain
 * existed before this run, so no other daemon's rules are touched.
 */
async function removeDockerRules(bridge: string): Promise<void> {
  const saved = await sh('iptables-save', []);
  const del = new Map<string, string[]>();
  const chains = new Map<string, string[]>();
  let table = '';
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    const chain = /^:(DOCKER\S*)/.exec(line)?.[1];
    if (chain) chains.set(table, [...(chains.get(table) ?? []), chain]);
    const rule = /^-A (\S+) (.*)$/.exec(line);
    if (rule && !rule[1]!.startsWith('DOCKER') && (/-j DOCKER\S*$/.test(line) || line.includes(bridge))) {
      del.set(table, [...(del.get(table) ?? []), `-D ${rule[1]} ${rule[2]}`]);
    }
  }
  const input: string[] = [];
  for (const t of new Set([...del.keys(), ...chains.keys()])) {
    const own = chains.get(t) ?? [];
    input.push(`*${t}`, ...(del.get(t) ?? []), ...own.map((c) => `-F ${c}`), ...own.map((c) => `-X ${c}`), 'COMMIT');
  }
  if (input.length) await quiet(['iptables-restore', '-w', '--noflush'], input.join('\n') + '\n');
}

async function startNetDockerd(id: string, subnet: string): Promise<NetDockerd> {
  const saved = await sh('iptables-save', []);
  if (/^:DOCKER/m.test(saved)) {
    throw new Error('DOCKER iptables chains already exist (another dockerd with iptables on this host); not mixing rules with it');
  }
  const dir = await mkdtemp('/tmp/bnd-');
  const socketPath = join(dir, 'd.sock');
  const bridge = `bd${id}0`;
  const gateway = subnet.replace(/0\/24$/, '1/24');
  await quiet(['ip', 'link', 'add', bridge, 'type', 'bridge']);
  await quiet(['ip', 'addr', 'add', gateway, 'dev', bridge]);
  await quiet(['ip', 'link', 'set', bridge, 'up']);
  const child: ChildProcess = spawn(
    'dockerd',
    [
      `--bridge=${bridge}`,
      '--iptables=true',
      '--ip6tables=false',
      '--userland-proxy=true',
      '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'pid'),
      '--containerd-namespace', `bnb${id}`,
      '--containerd-plugins-namespace', `bnb${id}p`,
      '-H', `unix://${socketPath}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (b: Buffer) => (log = (log + b.toString()).slice(-4000)));
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '');
    for (const target of mounts.filter((m) => m.startsWith(dir)).sort((a, b) => b.length - a.length)) {
      await quiet(['umount', '-l', target]).catch(() => undefined);
    }
    await removeDockerRules(bridge).catch(() => undefined);
    await quiet(['ip', 'link', 'del', bridge]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; !(await ping(socketPath)); i++) {
      if (child.exitCode !== null) throw new Error(`dockerd exited with ${child.exitCode}: ${log.trim().split('\n').at(-1) ?? ''}`);
      if (i > 300) throw new Error('dockerd did not answer within 30 s');
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const cli = (args: readonly string[]) => sh('docker', ['-H', `unix://${socketPath}`, ...args]);
  return { socketPath, client: new Docker({ socketPath }), cli, bridge, stop };
}

/** Benchmark entry: HTTP through published ports, and per-connect setup time. */
export async function run({ runs }: { runs: number }): Promise<BenchReport[]> {
  const missing = process.getuid?.() !== 0 ? 'needs root' : undefined;
  for (const cmd of ['ip', 'nsenter', 'ab', 'curl', 'busybox']) {
    if (!missing && !(await have(cmd))) return [{ title: 'network', baseline: '', rows: [], notes: [`skipped: ${cmd} is not installed`] }];
  }
  if (missing) return [{ title: 'network', baseline: '', rows: [], notes: [`skipped: ${missing}`] }];

  const id = randomBytes(2).toString('hex');
  const cleanups: Cleanup[] = [];
  const base = await mkdtemp(join(tmpdir(), 'berth-bench-network-'));
  cleanups.push(() => rm(base, { recursive: true, force: true }));
  try {
    const [berthSubnet, userSubnet, dockerSubnet, dockerNet1, dockerNet2] = await freeSubnets(5);
    const manager = new NetworkManager({
      stateDir: join(base, 'network'),
      defaultBridge: `bb${id}0`,
      defaultSubnet: berthSubnet,
      bridgePrefix: `bb${id}`,
      vethPrefix: `vb${id}`,
      ruleTag: `bench${id}`,
    });
    cleanups.push(() => manager.removeAll());
    const firewall = (await manager.init()).firewall;

    // The web server: busybox httpd in a namespace of its own, a small static page.
    const www = join(base, 'www');
    await mkdir(www);
    await writeFile(join(www, 'index.html'), 'hello from berth\n');
    const netns = async (name: string) => {
      await quiet(['ip', 'netns', 'add', name]);
      cleanups.push(async () => {
        const pids = (await sh('ip', ['netns', 'pids', name])).split('\n').filter(Boolean);
        for (const pid of pids) process.kill(Number(pid), 'SIGKILL');
        await quiet(['ip', 'netns', 'del', name]);
      });
      return `/run/netns/${name}`;
    };
    const webPath = await netns(`bb${id}web`);
    const web = await manager.connect({ containerId: `bench-${id}-web`, containerName: 'web', netnsPath: webPath, network: 'bridge' });
    const httpd = spawn('ip', ['netns', 'exec', `bb${id}web`, 'busybox', 'httpd', '-f', '-p', '80', '-h', www], { stdio: 'ignore' });
    cleanups.push(async () => void httpd.kill('SIGKILL'));
    const [published] = await manager.publish({ containerId: `bench-${id}-web`, ports: parsePublish('80') });
    const hostIp = await hostAddress([`bb${id}`, `bd${id}`, 'br-', 'docker', 'veth']);
    await waitHttp(`http://${web.ipAddress}/`);
    await waitHttp(`http://127.0.0.1:${published!.hostPort}/`);

    // docker: the same page from the same busybox, in a private dockerd with real networking.
    let dockerd: NetDockerd | undefined;
    let dockerSkip: string | undefined = (await have('dockerd')) ? undefined : 'dockerd is not installed';
    let dockerWeb: { ip: string; port: number } | undefined;
    if (!dockerSkip) {
      try {
        dockerd = await startNetDockerd(id, dockerSubnet!);
        cleanups.push(() => dockerd!.stop());
        const rootfs = join(base, 'rootfs');
        await makeBusyboxRootfs(rootfs);
        await mkdir(join(rootfs, 'www'));
        await writeFile(join(rootfs, 'www', 'index.html'), 'hello from berth\n');
        await sh('sh', ['-c', `tar -C "${rootfs}" -c . | docker -H "unix://${dockerd.socketPath}" import - berth-bench-httpd:${id}`]);
        await dockerd.cli(['run', '-d', '--name', 'web', '-p', '80', `berth-bench-httpd:${id}`, 'httpd', '-f', '-p', '80', '-h', '/www']);
        const port = Number((await dockerd.cli(['port', 'web', '80/tcp'])).split('\n')[0]!.split(':').pop());
        const ip = (await dockerd.cli(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'web'])).trim();
        await waitHttp(`http://${ip}/`);
        await waitHttp(`http://127.0.0.1:${port}/`);
        dockerWeb = { ip, port };
      } catch (err) {
        dockerSkip = `private dockerd with networking failed: ${(err as Error).message}`;
      }
    }

    const http = await measure(
      [
        abSubject('berth: container address (direct)', `http://${web.ipAddress}/`),
        abSubject('berth: 127.0.0.1 (userland proxy)', `http://127.0.0.1:${published!.hostPort}/`),
        abSubject(`berth: host address (DNAT, ${firewall})`, hostIp && `http://${hostIp}:${published!.hostPort}/`, 'the host has no global IPv4 address'),
        abSubject('docker: container address (direct)', dockerWeb && `http://${dockerWeb.ip}/`, dockerSkip),
        abSubject('docker: 127.0.0.1 (docker-proxy)', dockerWeb && `http://127.0.0.1:${dockerWeb.port}/`, dockerSkip),
        abSubject('docker: host address (DNAT, iptables)', dockerWeb && hostIp && `http://${hostIp}:${dockerWeb.port}/`, dockerSkip),
      ],
      runs,
      1,
    );
    const rps = http.map((r) => (r.medianMs ? `${r.name}: ${Math.round((requests * 1000) / r.medianMs)} req/s` : `${r.name}: —`));

    // Per-connect setup: a namespace that stays, attached and detached again and again. Each
    // connect subject is followed by its disconnect subject, which `measure` runs in that order.
    const cPath = await netns(`bb${id}c`);
    const uPath = await netns(`bb${id}u`);
    const fPath = await netns(`bb${id}f`);
    const user = await manager.createNetwork({ name: `bench${id}`, subnet: userSubnet });
    // A peer keeps the user network's DNS zone (and the helper) alive between runs, as in real use.
    const peerPath = await netns(`bb${id}p`);
    await manager.connect({ containerId: `bench-${id}-peer`, containerName: 'peer', netnsPath: peerPath, network: user.name });
    const floorBridge = `bb${id}0`;
    const floorAddress = berthSubnet!.replace(/0\/24$/, '250');
    const floorGateway = berthSubnet!.replace(/0\/24$/, '1');
    const setup: Subject[] = [
      { name: 'berth connect (default bridge)', run: async () => void (await manager.connect({ containerId: `bench-${id}-c`, netnsPath: cPath, network: 'bridge' })) },
      { name: 'berth disconnect (default bridge)', run: () => manager.disconnect({ containerId: `bench-${id}-c`, network: 'bridge' }) },
      {
        name: 'berth connect (user network, DNS reload)',
        run: async () => void (await manager.connect({ containerId: `bench-${id}-u`, containerName: 'u', netnsPath: uPath, network: user.name })),
      },
      { name: 'berth disconnect (user network)', run: () => manager.disconnect({ containerId: `bench-${id}-u`, network: user.name }) },
      {
        name: 'floor: the same ip -batch work, no state',
        run: async () => {
          await quiet(['ip', '-batch', '-'], `link add name vb${id}fl mtu 1500 type veth peer name eth0 mtu 1500 netns ${fPath}\nlink set dev vb${id}fl master ${floorBridge}\nlink set dev vb${id}fl up\n`);
          await quiet(
            ['nsenter', `--net=${fPath}`, '--', 'ip', '-batch', '-'],
            `link set dev lo up\naddr add ${floorAddress}/24 broadcast + dev eth0\nlink set dev eth0 up\nroute replace default via ${floorGateway} dev eth0\n`,
          );
        },
      },
      { name: 'floor: ip link del', run: () => quiet(['ip', 'link', 'del', `vb${id}fl`]) },
    ];
    if (dockerd && dockerWeb) {
      const d = dockerd;
      await d.cli(['network', 'create', '--subnet', dockerNet1!, `bnb${id}a`]);
      await d.cli(['network', 'create', '--subnet', dockerNet2!, `bnb${id}b`]);
      await d.cli(['run', '-d', '--name', 'idle', '--network', `bnb${id}a`, `berth-bench-httpd:${id}`, 'sleep', '100000']);
      const net = d.client.getNetwork(`bnb${id}b`);
      setup.push(
        { name: 'docker network connect (API)', run: () => net.connect({ Container: 'idle' }) },
        { name: 'docker network disconnect (API)', run: () => net.disconnect({ Container: 'idle' }) },
      );
      cleanups.push(async () => {
        await d.cli(['rm', '-f', 'idle', 'web']).catch(() => '');
        await d.cli(['network', 'rm', `bnb${id}a`, `bnb${id}b`]).catch(() => '');
      });
    } else {
      const skip = dockerSkip ?? 'no dockerd';
      setup.push({ name: 'docker network connect (API)', skip, run: async () => {} }, { name: 'docker network disconnect (API)', skip, run: async () => {} });
    }
    const setupRows = await measure(setup, runs, 2);

    return [
      {
        title: `HTTP through a published port (ab -n ${requests} -c ${concurrency}, busybox httpd; time per ${requests} requests)`,
        baseline: 'berth: container address (direct)',
        rows: http,
        notes: [`Requests per second (median run): ${rps.join('; ')}.`],
      },
      {
        title: 'Container network setup: attach and detach a running namespace',
        baseline: 'floor: the same ip -batch work, no state',
        rows: setupRows,
        notes: [
          'Berth connect = state lock + IPAM + 2 execs (ip -batch on the host, nsenter ip -batch inside) + fsync\'d state; on a user network also a reload of the DNS helper over its unix socket.',
        ],
      },
    ];
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}
