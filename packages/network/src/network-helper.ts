import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '@berth/log';
import { EmbeddedDnsServer, type DnsBindFailure, type DnsZone } from './dns-server.js';
import { readNetworkState, stateFiles, type NetworkState } from './network-state.js';
import { TcpPortProxy, UdpPortProxy, type PortProxy } from './port-proxy.js';
import type { PortProtocol } from './port-spec.js';

/** One proxy the helper should run. */
export interface ProxyPlan {
  readonly key: string;
  readonly protocol: PortProtocol;
  readonly hostIp: string;
  readonly hostPort: number;
  readonly containerIp: string;
  readonly containerPort: number;
}

/** What the helper serves for a given state: proxies, DNS zones, and the resolvers to forward to. */
export interface HelperPlan {
  readonly proxies: readonly ProxyPlan[];
  readonly zones: readonly DnsZone[];
  readonly upstreams: readonly string[];
}

/** The key of a published host port: one proxy per protocol, address and port. */
export function proxyKey(protocol: string, hostIp: string, hostPort: number): string {
  return `${protocol}:${hostIp}:${hostPort}`;
}

/** The helper's work for `state`: every published port, and every user network with containers. */
export function helperPlan(state: NetworkState): HelperPlan {
  const proxies = state.ports.map((p) => ({
    key: proxyKey(p.protocol, p.hostIp, p.hostPort),
    protocol: p.protocol,
    hostIp: p.hostIp,
    hostPort: p.hostPort,
    containerIp: p.containerIp,
    containerPort: p.containerPort,
  }));
  const zones: DnsZone[] = [];
  for (const n of state.networks) {
    if (!n.bridge || n.isDefault) continue;
    const endpoints = state.endpoints.filter((e) => e.networkId === n.id);
    if (endpoints.length === 0) continue;
    zones.push({
      networkId: n.id,
      gateway: n.bridge.gateway,
      subnet: n.bridge.subnet,
      internal: n.internal,
      hosts: endpoints.map((e) => ({
        containerId: e.containerId,
        address: e.address,
        names: [e.containerName, ...e.aliases, e.containerId.slice(0, 12)].filter(Boolean),
      })),
    });
  }
  return { proxies, zones, upstreams: state.upstreamDns };
}

/** A published port the helper could not bind, with the system error code (EADDRINUSE, ...). */
export interface ProxyBindFailure {
  readonly key: string;
  readonly code: string;
  readonly message: string;
}

/** The helper's answer to a reload. */
export interface ReloadReply {
  readonly pid: number;
  readonly proxyFailures: readonly ProxyBindFailure[];
  readonly dnsFailures: readonly DnsBindFailure[];
  /** Proxies plus DNS zones now served; the helper exits after replying 0. */
  readonly serving: number;
}

/** Options of `runNetworkHelper`. */
export interface NetworkHelperOptions {
  readonly stateDir: string;
  readonly logger: Logger;
  /** Ends the helper (SIGTERM in the entry point). */
  readonly signal?: AbortSignal;
  /** Called once the control socket listens and the initial state is served. */
  readonly onReady?: () => void;
  /** DNS port, 53 except in tests of the helper alone. */
  readonly dnsPort?: number;
}

/**
 * The helper process of one state directory: runs the userland proxies of published ports and
 * the embedded DNS server of user networks, so that both outlive the CLI that started a
 * container. It serves what the state file says, re-reads it when asked on its unix socket
 * (`{"op":"reload"}`, one JSON object per line), and ends when a reload leaves it nothing to serve.
 * Resolves when it has stopped.
 */
export async function runNetworkHelper(options: NetworkHelperOptions): Promise<void> {
  const { stateDir, logger } = options;
  const socketPath = join(stateDir, stateFiles.helperSocket);
  const pidPath = join(stateDir, stateFiles.helperPid);
  const proxies = new Map<string, { proxy: PortProxy; target: string }>();
  const dns = new EmbeddedDnsServer({ logger, ...(options.dnsPort === undefined ? {} : { port: options.dnsPort }) });
  let queue: Promise<unknown> = Promise.resolve();
  let stopping = false;

  const reconcile = async (): Promise<ReloadReply> => {
    const plan = helperPlan(await readNetworkState(stateDir));
    const wanted = new Map(plan.proxies.map((p) => [p.key, p]));
    for (const [key, entry] of proxies) {
      if (!wanted.has(key)) {
        proxies.delete(key);
        await entry.proxy.close();
        logger.info('proxy stopped', { key });
      }
    }
    const proxyFailures: ProxyBindFailure[] = [];
    for (const p of plan.proxies) {
      const target = `${p.containerIp}:${p.containerPort}`;
      const existing = proxies.get(p.key);
      if (existing) {
        if (existing.target !== target) {
          existing.proxy.retarget({ host: p.containerIp, port: p.containerPort });
          proxies.set(p.key, { proxy: existing.proxy, target });
        }
        continue;
      }
      const proxyOptions = { hostIp: p.hostIp, hostPort: p.hostPort, target: { host: p.containerIp, port: p.containerPort }, logger };
      const proxy = p.protocol === 'udp' ? new UdpPortProxy(proxyOptions) : new TcpPortProxy(proxyOptions);
      try {
        await proxy.listen();
        proxies.set(p.key, { proxy, target });
        logger.info('proxy started', { key: p.key, target });
      } catch (err) {
        await proxy.close().catch(() => {});
        const code = typeof err === 'object' && err && 'code' in err ? String(err.code) : 'EUNKNOWN';
        proxyFailures.push({ key: p.key, code, message: err instanceof Error ? err.message : String(err) });
        logger.warn('proxy cannot listen', { key: p.key, code });
      }
    }
    const dnsFailures = await dns.update(plan.zones, plan.upstreams);
    return { pid: process.pid, proxyFailures, dnsFailures, serving: proxies.size + dns.size };
  };

  const server = createServer((socket) => serveClient(socket));
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all([...proxies.values()].map((e) => e.proxy.close()));
    proxies.clear();
    await dns.close();
    await rm(socketPath, { force: true });
    // Leave another helper's pid file alone (one started after this one was told to stop).
    if ((await readFile(pidPath, 'utf8').catch(() => '')).trim() === String(process.pid)) await rm(pidPath, { force: true });
    logger.info('helper stopped');
  };
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const finish = () => void stop().then(resolveDone, resolveDone);

  const serveClient = (socket: Socket) => {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        queue = queue.then(() => handle(line, socket));
      }
    });
  };

  const handle = async (line: string, socket: Socket) => {
    let op = '';
    try {
      op = String((JSON.parse(line) as { op?: unknown }).op);
    } catch {
      socket.end(JSON.stringify({ ok: false, error: 'request is not JSON' }) + '\n');
      return;
    }
    if (op === 'reload') {
      try {
        const reply = await reconcile();
        socket.end(JSON.stringify({ ok: true, ...reply }) + '\n');
        if (reply.serving === 0) finish();
      } catch (err) {
        logger.error('reload failed', { err });
        socket.end(JSON.stringify({ ok: false, error: err instanceof Error ? err.message : String(err) }) + '\n');
      }
    } else if (op === 'status') {
      socket.end(JSON.stringify({ ok: true, pid: process.pid, proxies: [...proxies.keys()], dns: dns.size }) + '\n');
    } else if (op === 'stop') {
      socket.end(JSON.stringify({ ok: true, pid: process.pid }) + '\n');
      finish();
    } else {
      socket.end(JSON.stringify({ ok: false, error: `unknown op ${JSON.stringify(op)}` }) + '\n');
    }
  };

  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await writeFile(pidPath, `${process.pid}\n`);
  options.signal?.addEventListener('abort', finish, { once: true });
  const initial = await reconcile();
  logger.info('helper ready', { pid: process.pid, serving: initial.serving });
  options.onReady?.();
  return done;
}
