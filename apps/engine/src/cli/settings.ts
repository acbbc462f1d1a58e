import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { sha256Hex } from '@berth/oci';
import { UsageError } from './cli-errors.js';
import type { GlobalFlags } from './global-flags.js';

/** The engine configuration file (dockerd's daemon.json keys). */
export interface EngineConfigFile {
  readonly 'data-root'?: string;
  readonly 'exec-root'?: string;
  readonly 'insecure-registries'?: readonly string[];
  readonly labels?: readonly string[];
  readonly hosts?: readonly string[];
  readonly tls?: boolean;
  readonly tlsverify?: boolean;
  readonly tlscacert?: string;
  readonly tlscert?: string;
  readonly tlskey?: string;
  readonly runtime?: string;
  readonly 'log-level'?: string;
  readonly debug?: boolean;
  /** The default bridge's name (dockerd's `bridge`, default berth0) and subnet (`bip`, CIDR). */
  readonly bridge?: string;
  readonly bip?: string;
  readonly mtu?: number;
  /** Tag of Berth's links and firewall rules, so that several engines on one host keep theirs apart. */
  readonly 'network-tag'?: string;
  readonly 'registry-mirrors'?: readonly string[];
  readonly dns?: readonly string[];
  readonly 'dns-search'?: readonly string[];
  readonly 'dns-opts'?: readonly string[];
  /** `overlay2` or `vfs` (Berth's overlay and copying snapshotters). */
  readonly 'storage-driver'?: string;
  readonly 'log-driver'?: string;
  readonly 'log-opts'?: Readonly<Record<string, string>>;
  readonly 'max-concurrent-downloads'?: number;
  readonly 'max-concurrent-uploads'?: number;
  readonly 'init-path'?: string;
}

/** What dockerd takes as daemon options and Berth's engine honours, from the file or `engine serve`'s flags. */
export interface DaemonSettings {
  readonly registryMirrors?: readonly string[];
  readonly dns?: { readonly servers?: readonly string[]; readonly search?: readonly string[]; readonly options?: readonly string[] };
  readonly storageDriver?: 'overlay2' | 'vfs';
  readonly logDriver?: string;
  readonly logOpts?: Readonly<Record<string, string>>;
  readonly maxConcurrentDownloads?: number;
  readonly maxConcurrentUploads?: number;
  readonly initPath?: string;
}

/** TLS file paths toward a remote engine. */
export interface TlsFiles {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly verify: boolean;
}

/** Everything the commands need to know about where and how the engine runs. */
export interface Settings {
  /** Set when commands go to a server (-H, BERTH_HOST, DOCKER_HOST). */
  readonly remoteHost: string | undefined;
  readonly tls: TlsFiles | undefined;
  /** `-H` as given, which `serve` takes as its listen addresses. */
  readonly listenHosts: readonly string[];
  readonly root: string;
  readonly runroot: string;
  readonly insecureRegistries: readonly string[];
  readonly runtime: string | undefined;
  readonly labels: readonly string[];
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** The docker client configuration directory (credentials): --config, DOCKER_CONFIG, ~/.docker. */
  readonly dockerConfigDir: string;
  readonly configFile: EngineConfigFile;
  readonly configFilePath: string | undefined;
  /** Default-network settings: bridge name, subnet, MTU, rule tag. */
  readonly network: { readonly bridge?: string; readonly subnet?: string; readonly mtu?: number; readonly tag?: string };
  readonly daemon: DaemonSettings;
}

function readConfigFile(path: string, required: boolean): EngineConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UsageError(`cannot read the engine configuration file ${path}: ${(err as Error).message}`, '');
  }
  try {
    return JSON.parse(text) as EngineConfigFile;
  } catch (err) {
    throw new UsageError(`the engine configuration file ${path} is not valid JSON: ${(err as Error).message}`, '');
  }
}

const levels = new Set(['debug', 'info', 'warn', 'error']);

/** The state root when none is given (dockerd's /var/lib/docker). */
export const defaultRoot = '/var/lib/berth';

/**
 * The default bridge and rule tag of a state root whose settings name none: berth0 and
 * `default` (the network package's defaults) for the default root; for any other root, names
 * derived from its path, so that two roots on one host never take each other's bridge, links or
 * firewall rules (a root's network manager removes links of its tag that it does not know).
 */
export function rootNetworkNames(root: string, network: Settings['network']): Settings['network'] {
  const path = resolve(root);
  if (path === defaultRoot) return network;
  const digest = sha256Hex(path);
  return { bridge: `berth${digest.slice(0, 8)}`, tag: `r${digest.slice(0, 12)}`, ...network };
}

function networkSettings(file: EngineConfigFile, env: NodeJS.ProcessEnv): Settings['network'] {
  const bridge = env['BERTH_BRIDGE'] ?? file.bridge;
  const subnet = env['BERTH_BIP'] ?? file.bip;
  const mtuText = env['BERTH_MTU'] ?? (file.mtu === undefined ? undefined : String(file.mtu));
  const tag = env['BERTH_NETWORK_TAG'] ?? file['network-tag'];
  const mtu = mtuText === undefined ? undefined : Number(mtuText);
  if (mtu !== undefined && !(Number.isInteger(mtu) && mtu >= 576)) throw new UsageError(`invalid MTU ${JSON.stringify(mtuText)}: want an integer of at least 576`, '');
  return { ...(bridge ? { bridge } : {}), ...(subnet ? { subnet } : {}), ...(mtu !== undefined ? { mtu } : {}), ...(tag ? { tag } : {}) };
}

/** A storage driver as dockerd names it; Berth has overlay2 (overlayfs) and vfs (copies). */
export function storageDriverOf(name: string, source: string, command = ''): 'overlay2' | 'vfs' {
  if (name === 'overlay2' || name === 'overlay') return 'overlay2';
  if (name === 'vfs') return 'vfs';
  throw new UsageError(`${source}: storage driver ${JSON.stringify(name)} is not available: Berth has overlay2 and vfs`, command);
}

function daemonSettings(file: EngineConfigFile): DaemonSettings {
  const dns = {
    ...(file.dns?.length ? { servers: file.dns } : {}),
    ...(file['dns-search']?.length ? { search: file['dns-search'] } : {}),
    ...(file['dns-opts']?.length ? { options: file['dns-opts'] } : {}),
  };
  return {
    ...(file['registry-mirrors']?.length ? { registryMirrors: file['registry-mirrors'] } : {}),
    ...(Object.keys(dns).length ? { dns } : {}),
    ...(file['storage-driver'] ? { storageDriver: storageDriverOf(file['storage-driver'], 'storage-driver') } : {}),
    ...(file['log-driver'] ? { logDriver: file['log-driver'] } : {}),
    ...(file['log-opts'] ? { logOpts: file['log-opts'] } : {}),
    ...(file['max-concurrent-downloads'] ? { maxConcurrentDownloads: file['max-concurrent-downloads'] } : {}),
    ...(file['max-concurrent-uploads'] ? { maxConcurrentUploads: file['max-concurrent-uploads'] } : {}),
    ...(file['init-path'] ? { initPath: file['init-path'] } : {}),
  };
}

/** Resolves settings with the precedence file < environment < flags. */
export function resolveSettings(flags: GlobalFlags, env: NodeJS.ProcessEnv): Settings {
  const explicitFile = flags.configFile ?? env['BERTH_CONFIG_FILE'];
  const configFilePath = explicitFile ?? '/etc/berth/engine.json';
  const file = readConfigFile(configFilePath, explicitFile !== undefined);
  const home = env['HOME'] || homedir();
  const dockerConfigDir = flags.config ?? env['DOCKER_CONFIG'] ?? join(home, '.docker');
  const remoteHost = flags.host?.[flags.host.length - 1] ?? (env['BERTH_HOST'] || undefined) ?? (env['DOCKER_HOST'] || undefined);
  const verify = flags.tlsverify ?? (env['DOCKER_TLS_VERIFY'] ? env['DOCKER_TLS_VERIFY'] !== '0' : undefined) ?? file.tlsverify ?? false;
  const useTls = verify || flags.tls === true || file.tls === true;
  const certDir = env['DOCKER_CERT_PATH'] || dockerConfigDir;
  const tls: TlsFiles | undefined = useTls
    ? {
        ca: flags.tlscacert ?? file.tlscacert ?? join(certDir, 'ca.pem'),
        cert: flags.tlscert ?? file.tlscert ?? join(certDir, 'cert.pem'),
        key: flags.tlskey ?? file.tlskey ?? join(certDir, 'key.pem'),
        verify,
      }
    : undefined;
  const insecure = [
    ...(file['insecure-registries'] ?? []),
    ...(env['BERTH_INSECURE_REGISTRIES'] ?? '').split(',').filter(Boolean),
    ...(flags.insecureRegistry ?? []),
  ];
  const logLevel = flags.debug || file.debug ? 'debug' : (flags.logLevel ?? env['BERTH_LOG_LEVEL'] ?? file['log-level'] ?? 'warn');
  if (!levels.has(logLevel)) throw new UsageError(`invalid log level ${JSON.stringify(logLevel)}: want debug, info, warn or error`, '');
  return {
    remoteHost: remoteHost && remoteHost !== '' ? remoteHost : undefined,
    tls,
    listenHosts: flags.host ?? file.hosts ?? [],
    root: flags.root ?? env['BERTH_ROOT'] ?? file['data-root'] ?? defaultRoot,
    runroot: flags.runroot ?? env['BERTH_RUNROOT'] ?? file['exec-root'] ?? '/run/berth',
    insecureRegistries: [...new Set(insecure)],
    runtime: flags.runtime ?? env['BERTH_RUNTIME'] ?? file.runtime,
    labels: file.labels ?? [],
    logLevel: logLevel as Settings['logLevel'],
    dockerConfigDir,
    configFile: file,
    configFilePath: explicitFile !== undefined || Object.keys(file).length > 0 ? configFilePath : undefined,
    network: networkSettings(file, env),
    daemon: daemonSettings(file),
  };
}
