import { isIP } from 'node:net';
import { readFile, rm } from 'node:fs/promises';
import type { Options } from 'yargs';
import type { ContainerSupervisor, Engine, EngineApiTls } from '@berth/engine';
import { listenEngineApi } from '@berth/engine/server';
import { writeFileAtomic } from '@berth/fsutil';
import { createJsonLogger } from '@berth/log';
import { UsageError } from '../cli/cli-errors.js';
import type { CommandSpec, ParsedArgs } from '../cli/command-spec.js';
import { createLocalEngine } from '../cli/local-engine.js';
import { storageDriverOf, type DaemonSettings } from '../cli/settings.js';

const defaultSocket = 'unix:///run/berth/berth.sock';

/**
 * dockerd options Berth does not have, each with the reason. They are parsed (so that
 * `--engine-opt iptables=false` from a provisioner gets this answer, not "unknown flag") and
 * refused: an engine that ignored them would not be what was asked for.
 */
const refusedReasons = {
  network: "Berth's default bridge takes --bridge, --bip and --mtu; its firewall rules and address pools are its own",
  parts: 'Berth has no containerd, swarm, plugins or metrics endpoint',
  defaults: 'Berth takes this per container (docker run flags), not as an engine-wide default',
  other: 'Berth does not implement it',
} as const;
const refusedOptions: Readonly<Record<string, keyof typeof refusedReasons>> = {
  'default-address-pool': 'network',
  'default-gateway': 'network',
  'default-gateway-v6': 'network',
  'default-network-opt': 'network',
  'fixed-cidr': 'network',
  'fixed-cidr-v6': 'network',
  bip6: 'network',
  icc: 'network',
  ip: 'network',
  'ip-forward': 'network',
  'ip-masq': 'network',
  iptables: 'network',
  ip6tables: 'network',
  ipv6: 'network',
  'userland-proxy': 'network',
  'userland-proxy-path': 'network',
  'host-gateway-ip': 'network',
  'network-control-plane-mtu': 'network',
  'add-runtime': 'parts',
  'authorization-plugin': 'parts',
  'cdi-spec-dir': 'parts',
  containerd: 'parts',
  'containerd-namespace': 'parts',
  'containerd-plugins-namespace': 'parts',
  'cri-containerd': 'parts',
  experimental: 'parts',
  feature: 'parts',
  'metrics-addr': 'parts',
  'node-generic-resource': 'parts',
  'swarm-default-advertise-addr': 'parts',
  'cgroup-parent': 'defaults',
  'cpu-rt-period': 'defaults',
  'cpu-rt-runtime': 'defaults',
  'default-cgroupns-mode': 'defaults',
  'default-ipc-mode': 'defaults',
  'default-shm-size': 'defaults',
  'default-ulimit': 'defaults',
  'exec-opt': 'defaults',
  init: 'defaults',
  'no-new-privileges': 'defaults',
  'oom-score-adjust': 'defaults',
  'seccomp-profile': 'defaults',
  'selinux-enabled': 'defaults',
  'storage-opt': 'defaults',
  'userns-remap': 'defaults',
  'allow-nondistributable-artifacts': 'other',
  'api-cors-header': 'other',
  group: 'other',
  'http-proxy': 'other',
  'https-proxy': 'other',
  'no-proxy': 'other',
  'log-format': 'other',
  'max-download-attempts': 'other',
  'raw-logs': 'other',
  rootless: 'other',
  'shutdown-timeout': 'other',
  validate: 'other',
};

async function readPem(path: string | undefined, what: string, flag: string): Promise<Buffer> {
  if (!path) throw new UsageError(`${flag} is required with --tlsverify/--tls (${what})`, 'serve');
  try {
    return await readFile(path);
  } catch (err) {
    throw new UsageError(`cannot read the ${what} ${path}: ${(err as Error).message}`, 'serve');
  }
}

function isSupervisor(engine: Engine): engine is Engine & ContainerSupervisor {
  return typeof (engine as Partial<ContainerSupervisor>).supervise === 'function';
}

function list(args: ParsedArgs, name: string): string[] {
  const v = args[name];
  return v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String);
}

function positiveCount(args: ParsedArgs, name: string): number | undefined {
  const v = args[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`invalid value ${JSON.stringify(String(v))} for --${name}: want a positive integer`, 'serve');
  return n;
}

/** dockerd's daemon options on serve's command line, checked as dockerd checks them. */
function daemonOptions(args: ParsedArgs): DaemonSettings {
  for (const name of Object.keys(refusedOptions)) {
    if (args[name] !== undefined) throw new UsageError(`--${name} is a dockerd option that Berth does not support: ${refusedReasons[refusedOptions[name]!]}`, 'serve');
  }
  if (args['config-file'] !== undefined) throw new UsageError('--config-file is an engine-wide option: give it before the command (engine --config-file FILE serve)', 'serve');
  if (args['live-restore'] === false) throw new UsageError("--live-restore=false is not available: Berth's containers always outlive the engine (its runtime's monitor keeps them)", 'serve');
  const servers = list(args, 'dns');
  for (const s of servers) if (!isIP(s)) throw new UsageError(`invalid value ${JSON.stringify(s)} for --dns: want an IP address`, 'serve');
  const search = list(args, 'dns-search');
  const dnsOptions = list(args, 'dns-opt');
  const logOpts: Record<string, string> = {};
  for (const opt of list(args, 'log-opt')) {
    const eq = opt.indexOf('=');
    if (eq <= 0) throw new UsageError(`invalid value ${JSON.stringify(opt)} for --log-opt: want key=value`, 'serve');
    logOpts[opt.slice(0, eq)] = opt.slice(eq + 1);
  }
  const dns = { ...(servers.length ? { servers } : {}), ...(search.length ? { search } : {}), ...(dnsOptions.length ? { options: dnsOptions } : {}) };
  const downloads = positiveCount(args, 'max-concurrent-downloads');
  const uploads = positiveCount(args, 'max-concurrent-uploads');
  const mirrors = list(args, 'registry-mirror');
  return {
    ...(mirrors.length ? { registryMirrors: mirrors } : {}),
    ...(Object.keys(dns).length ? { dns } : {}),
    ...(typeof args['storage-driver'] === 'string' ? { storageDriver: storageDriverOf(args['storage-driver'], '--storage-driver', 'serve') } : {}),
    ...(typeof args['log-driver'] === 'string' ? { logDriver: args['log-driver'] } : {}),
    ...(Object.keys(logOpts).length ? { logOpts } : {}),
    ...(downloads ? { maxConcurrentDownloads: downloads } : {}),
    ...(uploads ? { maxConcurrentUploads: uploads } : {}),
    ...(typeof args['init-path'] === 'string' ? { initPath: args['init-path'] } : {}),
  };
}

function mtuOf(args: ParsedArgs): number | undefined {
  if (args['mtu'] === undefined) return undefined;
  const mtu = Number(args['mtu']);
  if (!Number.isInteger(mtu) || mtu < 576) throw new UsageError(`invalid MTU ${JSON.stringify(String(args['mtu']))}: want an integer of at least 576`, 'serve');
  return mtu;
}

const refusedSpecs: Record<string, Options> = Object.fromEntries(
  Object.keys(refusedOptions).map((name) => [name, { type: 'string', hidden: true, ...(name === 'group' ? { alias: 'G' } : {}) } satisfies Options]),
);

/** `engine serve`: the Docker Engine API in front of the local engine, until SIGINT/SIGTERM. */
export const serveCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'Serve the Docker Engine API on a unix socket or TCP (with mutual TLS)',
  args: [0, 0],
  options: {
    host: { type: 'string', array: true, alias: 'H', requiresArg: true, describe: `Where to listen: unix:///path or tcp://host:port (default ${defaultSocket})` },
    tls: { type: 'boolean', describe: 'Serve TLS on TCP hosts (without checking clients)' },
    tlsverify: { type: 'boolean', describe: 'Serve TLS and require client certificates signed by --tlscacert' },
    tlscacert: { type: 'string', requiresArg: true, describe: 'CA that client certificates must be signed by' },
    tlscert: { type: 'string', requiresArg: true, describe: "The server's TLS certificate" },
    tlskey: { type: 'string', requiresArg: true, describe: "The server's TLS key" },
    label: { type: 'string', array: true, requiresArg: true, describe: 'Set key=value labels on the engine (shown by info)' },
    root: { type: 'string', alias: 'data-root', requiresArg: true, describe: 'Root of persistent state (default /var/lib/berth, or BERTH_ROOT)' },
    runroot: { type: 'string', alias: 'exec-root', requiresArg: true, describe: 'Root of runtime state (default /run/berth, or BERTH_RUNROOT)' },
    pidfile: { type: 'string', alias: 'p', requiresArg: true, describe: "Write the engine's process ID to this file while it runs" },
    'insecure-registry': { type: 'string', array: true, requiresArg: true, describe: 'Registry reached over plain HTTP (repeatable)' },
    'registry-mirror': { type: 'string', array: true, requiresArg: true, describe: 'Docker Hub mirror (http(s) URL) tried before Docker Hub (repeatable)' },
    'max-concurrent-downloads': { type: 'string', requiresArg: true, describe: 'Layer downloads at once per pull (default 3)' },
    'max-concurrent-uploads': { type: 'string', requiresArg: true, describe: 'Layer uploads at once per push (default 5)' },
    'log-level': { type: 'string', alias: 'l', requiresArg: true, choices: ['debug', 'info', 'warn', 'error'], describe: 'Logging level (default info)' },
    debug: { type: 'boolean', alias: 'D', describe: 'Log at debug level' },
    bridge: { type: 'string', alias: 'b', requiresArg: true, describe: 'Name of the default bridge (default berth0)' },
    bip: { type: 'string', requiresArg: true, describe: 'Subnet of the default bridge, CIDR (default: a free private range)' },
    mtu: { type: 'string', requiresArg: true, describe: "MTU of the default bridge and its containers' interfaces (default 1500)" },
    dns: { type: 'string', array: true, requiresArg: true, describe: 'DNS server of containers that set none (repeatable)' },
    'dns-search': { type: 'string', array: true, requiresArg: true, describe: 'DNS search domain of containers that set none (repeatable)' },
    'dns-opt': { type: 'string', array: true, requiresArg: true, describe: 'Resolver option of containers that set none (repeatable)' },
    'storage-driver': { type: 'string', alias: 's', requiresArg: true, describe: 'overlay2 (overlayfs, where it works) or vfs (copies)' },
    'log-driver': { type: 'string', requiresArg: true, choices: ['json-file', 'none'], describe: 'Log driver of containers that name none (default json-file)' },
    'log-opt': { type: 'string', array: true, requiresArg: true, describe: "That driver's options, key=value (max-size, max-file, compress)" },
    'default-runtime': { type: 'string', requiresArg: true, describe: 'OCI runtime: berth-runtime (default), runc, crun or a path' },
    'init-path': { type: 'string', requiresArg: true, describe: 'The init binary of --init containers (default: berth-runtime init)' },
    'live-restore': { type: 'boolean', describe: 'Keep containers running while the engine is down (always so with Berth)' },
    'config-file': { type: 'string', hidden: true },
    ...refusedSpecs,
  },
  async run(args, cli) {
    const file = cli.settings.configFile;
    const daemon = daemonOptions(args);
    const mtu = mtuOf(args);
    const hosts = (args['host'] as string[] | undefined) ?? (cli.settings.listenHosts.length ? cli.settings.listenHosts : [defaultSocket]);
    const verify = args['tlsverify'] === true || (args['tlsverify'] === undefined && file.tlsverify === true);
    const useTls = verify || args['tls'] === true || file.tls === true;
    let tls: EngineApiTls | undefined;
    if (useTls) {
      tls = {
        cert: await readPem((args['tlscert'] as string | undefined) ?? file.tlscert, 'certificate', '--tlscert'),
        key: await readPem((args['tlskey'] as string | undefined) ?? file.tlskey, 'key', '--tlskey'),
        verifyClients: verify,
        ...(verify ? { ca: await readPem((args['tlscacert'] as string | undefined) ?? file.tlscacert, 'CA certificate', '--tlscacert') } : {}),
      };
    }
    // dockerd's flags are also serve's own (`engine serve --root ... --log-level debug`), as the provisioner writes them.
    const level = args['debug'] === true ? 'debug' : typeof args['log-level'] === 'string' ? (args['log-level'] as 'debug' | 'info' | 'warn' | 'error') : cli.settings.logLevel === 'warn' ? 'info' : cli.settings.logLevel;
    const logger = createJsonLogger({ write: (line) => cli.io.stderr.write(line), level }).child({ component: 'serve' });
    if (!tls && hosts.some((h) => h.startsWith('tcp://'))) {
      logger.warn('the API is served on TCP without TLS: anyone who can reach the port controls the engine; use --tlsverify');
    }
    const labels = [...cli.settings.labels, ...((args['label'] as string[] | undefined) ?? [])];
    const engine = await createLocalEngine(cli, {
      labels,
      logger,
      daemon,
      ...(typeof args['root'] === 'string' ? { root: args['root'] } : {}),
      ...(typeof args['runroot'] === 'string' ? { runroot: args['runroot'] } : {}),
      ...(typeof args['default-runtime'] === 'string' ? { runtime: args['default-runtime'] } : {}),
      ...(args['insecure-registry'] ? { insecureRegistries: args['insecure-registry'] as string[] } : {}),
      network: {
        ...(typeof args['bridge'] === 'string' ? { bridge: args['bridge'] } : {}),
        ...(typeof args['bip'] === 'string' ? { subnet: args['bip'] } : {}),
        ...(mtu ? { mtu } : {}),
      },
    });
    const stopped = new AbortController();
    const onAbort = () => stopped.abort();
    cli.signal.addEventListener('abort', onAbort, { once: true });
    // Written before the API answers, as dockerd does: whoever reaches the socket finds the pidfile.
    const pidfile = typeof args['pidfile'] === 'string' ? args['pidfile'] : undefined;
    if (pidfile) await writeFileAtomic(pidfile, `${process.pid}\n`);
    let server;
    try {
      server = await listenEngineApi({ engine, hosts, serverVersion: cli.version, logger, ...(tls ? { tls } : {}) });
    } catch (err) {
      if (pidfile) await rm(pidfile, { force: true });
      throw err;
    }
    for (const address of server.addresses) logger.info('API listen', { address });
    const supervising = isSupervisor(engine) ? engine.supervise({ signal: stopped.signal }).catch((err: unknown) => logger.error('supervisor stopped', { error: err })) : undefined;
    await new Promise<void>((resolve) => (stopped.signal.aborted ? resolve() : stopped.signal.addEventListener('abort', () => resolve(), { once: true })));
    logger.info('shutting down');
    await server.close();
    await supervising;
    if (pidfile) await rm(pidfile, { force: true });
    cli.signal.removeEventListener('abort', onAbort);
  },
};
