import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errnoCode, isBerthError, throwIfAborted } from '@berth/errors';
import { writeFileAtomic } from '@berth/fsutil';
import { noopLogger, type Logger } from '@berth/log';
import {
  parseExtraHost,
  parseResolvConf,
  renderHostnameFile,
  renderHostsFile,
  renderResolvConf,
  type ExtraHost,
} from './container-files.js';
import { detectFirewall } from './detect-firewall.js';
import type { Firewall, FirewallBackend, FirewallPreference, FirewallRuleset } from './firewall.js';
import { HelperClient } from './helper-client.js';
import { helperPlan, proxyKey, type ReloadReply } from './network-helper.js';
import { deleteLinks, ipBatch, linkExists, listLinks, listRoutes } from './iproute.js';
import {
  broadcastOf,
  formatIpv4,
  formatSubnet,
  isIpv4,
  isLoopbackIpv4,
  nthSubnet,
  parseIpv4,
  parseSubnet,
  subnetContains,
  subnetSize,
  subnetsOverlap,
  type Ipv4Subnet,
} from './ipv4.js';
import { netnsAlive, netnsIdentity, netnsPathOf } from './netns.js';
import { NetworkError, NetworkErrorCode, networkError } from './network-error.js';
import {
  NetworkDriver,
  readNetworkState,
  stateFiles,
  updateNetworkState,
  type EndpointRecord,
  type NetworkRecord,
  type NetworkState,
  type PortRecord,
} from './network-state.js';
import { anyHostIp, type PortMapping, type PortProtocol, type PortSpec } from './port-spec.js';

/** A pool subnets of new networks are cut from (docker's `default-address-pools`). */
export interface AddressPool {
  /** `172.17.0.0/16`. */
  readonly base: string;
  /** The prefix length of each network cut from the pool. */
  readonly size: number;
}

/** Docker's default pools: 172.17–31.0.0/16, then /20s of 192.168.0.0/16. */
export const defaultAddressPools: readonly AddressPool[] = [
  ...Array.from({ length: 15 }, (_, i) => ({ base: `172.${17 + i}.0.0/16`, size: 16 })),
  { base: '192.168.0.0/16', size: 20 },
];

/** Options of `NetworkManager`. Every name is configurable so that several state roots share a host. */
export interface NetworkManagerOptions {
  /** Where networks, endpoints, addresses and published ports are recorded (`<root>/network`). */
  readonly stateDir: string;
  readonly logger?: Logger;
  /** The default bridge's interface name (default `berth0`). */
  readonly defaultBridge?: string;
  /** The default bridge's subnet (default: the first of `addressPools` clear of the host's routes). */
  readonly defaultSubnet?: string;
  /** MTU of bridges and veths when a network sets none (default 1500). */
  readonly defaultMtu?: number;
  readonly addressPools?: readonly AddressPool[];
  /** User networks' bridges are `<prefix><id>` cut to 15 characters (default `berth-`). */
  readonly bridgePrefix?: string;
  /** Host ends of veth pairs are `<prefix><random hex>` cut to 15 characters (default `veth`). */
  readonly vethPrefix?: string;
  /** Owner tag of links (alias `berth:<tag>`) and firewall rules (comment `berth:<tag>`); default `default`. */
  readonly ruleTag?: string;
  readonly firewall?: FirewallPreference;
  /** The host's resolver configuration, copied into containers (default `/etc/resolv.conf`). */
  readonly hostResolvConfPath?: string;
  /** The host's hosts file, copied into `--network host` containers (default `/etc/hosts`). */
  readonly hostHostsPath?: string;
  /**
   * How to start the helper process (proxies and DNS); `--state-dir DIR` is appended. Default:
   * this Node binary running this package's `dist/helper-main.js`. An app bundled into one file
   * passes its own entry that calls `runNetworkHelper`.
   */
  readonly helperCommand?: readonly string[];
}

/** Options of `createNetwork` (`engine network create`). */
export interface CreateNetworkOptions {
  readonly name: string;
  /** Only `bridge` can be created. */
  readonly driver?: string;
  readonly subnet?: string;
  readonly gateway?: string;
  readonly ipRange?: string;
  readonly internal?: boolean;
  readonly attachable?: boolean;
  readonly labels?: Readonly<Record<string, string>>;
  /** Driver options; `com.docker.network.bridge.name` and `com.docker.network.driver.mtu` are honoured. */
  readonly options?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

/** A container attached to a network, as `network inspect` lists it. */
export interface NetworkContainer {
  readonly containerId: string;
  readonly name: string;
  readonly endpointId: string;
  readonly macAddress: string;
  /** `10.0.0.2/24`. */
  readonly ipv4Address: string;
}

/** A network as the API and CLI show it. */
export interface NetworkInfo {
  readonly id: string;
  readonly name: string;
  readonly driver: NetworkDriver;
  readonly scope: 'local';
  readonly created: string;
  readonly internal: boolean;
  readonly attachable: boolean;
  /** `bridge`, `host`, `none`. */
  readonly predefined: boolean;
  readonly isDefault: boolean;
  /** IPv4 addressing of a bridge network. */
  readonly ipam?: { readonly subnet: string; readonly gateway: string; readonly ipRange?: string };
  readonly bridgeName?: string;
  readonly mtu?: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly options: Readonly<Record<string, string>>;
  readonly containers: readonly NetworkContainer[];
}

/** Options of `connect` (`--network`, `network connect`). */
export interface ConnectOptions {
  readonly containerId: string;
  /** The container's name, resolvable on user networks (a leading `/` is dropped). */
  readonly containerName?: string;
  /** The container's network namespace: a path, or the pid of a process inside it. */
  readonly netnsPath?: string;
  readonly pid?: number;
  /** Network name, id or unique id prefix. */
  readonly network: string;
  /** `--network-alias` (user networks only). */
  readonly aliases?: readonly string[];
  /** `--ip` (user networks only). */
  readonly ip?: string;
  /** `--mac-address`; default `02:42:` followed by the address, as docker did. */
  readonly mac?: string;
  /** Interface name inside the container; default the first free `eth<n>`. */
  readonly ifname?: string;
  readonly signal?: AbortSignal;
}

/** A container's attachment to a network: what `NetworkSettings.Networks[name]` shows. */
export interface EndpointInfo {
  readonly id: string;
  readonly networkId: string;
  readonly networkName: string;
  readonly containerId: string;
  readonly containerName: string;
  readonly aliases: readonly string[];
  /** Names the embedded DNS server answers for it (user networks only). */
  readonly dnsNames: readonly string[];
  readonly ifname: string;
  readonly hostVeth: string;
  readonly ipAddress: string;
  /** The address given with `--ip`, if it was (docker's `IPAMConfig.IPv4Address`). */
  readonly requestedAddress?: string;
  readonly prefixLength: number;
  /** The network's gateway; empty on internal networks, which have no route out. */
  readonly gateway: string;
  readonly macAddress: string;
  /** True when the container's default route goes through this network. */
  readonly defaultRoute: boolean;
  /** The container's network namespace (docker's SandboxKey). */
  readonly sandboxKey: string;
}

/** A published port with where it leads, as `engine port` and `NetworkSettings.Ports` need it. */
export interface PublishedPort extends PortMapping {
  readonly containerId: string;
  readonly containerIp: string;
  readonly networkId: string;
}

/** Options of `publish` (`-p`, `-P`). */
export interface PublishOptions {
  readonly containerId: string;
  readonly ports: readonly PortSpec[];
  /** The network whose address the ports lead to; default the container's first non-internal one. */
  readonly network?: string;
  readonly signal?: AbortSignal;
}

/** The network mode of a container, for its /etc files. */
export type NetworkMode = 'bridge' | 'host' | 'none';

/** Options of `containerFiles` and `writeContainerFiles`. */
export interface ContainerFilesOptions {
  readonly containerId: string;
  readonly hostname: string;
  readonly domainname?: string;
  /** `bridge` (any bridge networks: default or user), `host` or `none`. */
  readonly mode: NetworkMode;
  /** `--add-host` entries (`name:ip`, `name:host-gateway`). */
  readonly extraHosts?: readonly string[];
  readonly dns?: readonly string[];
  readonly dnsSearch?: readonly string[];
  readonly dnsOptions?: readonly string[];
  readonly signal?: AbortSignal;
}

/** The content of a container's /etc/hosts, /etc/resolv.conf and /etc/hostname. */
export interface ContainerFiles {
  readonly hosts: string;
  readonly resolvConf: string;
  readonly hostname: string;
}

/** Where `writeContainerFiles` put them, for the engine's bind mounts (docker's HostsPath, ...). */
export interface ContainerFilePaths {
  readonly hostsPath: string;
  readonly resolvConfPath: string;
  readonly hostnamePath: string;
}

/** Options of `init`. */
export interface InitOptions {
  /**
   * The containers the engine knows to be running. Endpoints and ports of any other container
   * are released. Without it, an endpoint is released when its network namespace is gone.
   */
  readonly liveContainers?: Iterable<string>;
  readonly signal?: AbortSignal;
}

/** What `init` found and removed. */
export interface RecoveryReport {
  readonly endpointsReleased: number;
  readonly portsReleased: number;
  readonly linksRemoved: readonly string[];
  readonly firewall: FirewallBackend;
}

const namePattern = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const tagPattern = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,15}$/;
const ifnamePattern = /^[a-zA-Z0-9_.-]{1,15}$/;
const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const defaultHelperCommand = [process.execPath, fileURLToPath(new URL('../dist/helper-main.js', import.meta.url))];

function invalidOption(message: string): NetworkError {
  return networkError(message, 'InvalidArgument', NetworkErrorCode.InvalidOptions);
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

function macFromAddress(address: string): string {
  const value = parseIpv4(address);
  const bytes = [0x02, 0x42, value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

// The host's hosts file, a few hundred bytes read at every container start: one synchronous read.
function readHostFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Container networking on one host, for one state directory: the default bridge and user bridge
 * networks, a veth pair per container attachment with an address from the network's subnet,
 * masquerade and isolation rules, published ports (DNAT plus a userland proxy) and the embedded
 * DNS server of user networks, the last two run by a detached helper process so that they outlive
 * the caller. All changes happen under the state directory's lock; state is written atomically.
 * `init` recovers after a crash; every other method works without it.
 */
export class NetworkManager {
  readonly stateDir: string;
  readonly ruleTag: string;
  readonly #logger: Logger;
  readonly #defaultBridge: string;
  readonly #defaultSubnet: Ipv4Subnet | undefined;
  readonly #defaultMtu: number;
  readonly #pools: readonly { base: Ipv4Subnet; size: number }[];
  readonly #bridgePrefix: string;
  readonly #vethPrefix: string;
  readonly #firewallPreference: FirewallPreference;
  readonly #hostResolvConfPath: string;
  readonly #hostHostsPath: string;
  readonly #helper: HelperClient;
  readonly #alias: string;
  #firewall: Promise<Firewall> | undefined;

  constructor(options: NetworkManagerOptions) {
    if (!options || typeof options.stateDir !== 'string' || !isAbsolute(options.stateDir)) {
      throw invalidOption('NetworkManager: stateDir must be an absolute path');
    }
    this.stateDir = options.stateDir;
    // The helper's unix socket lives in the state directory; sun_path holds 107 bytes.
    if (Buffer.byteLength(join(this.stateDir, stateFiles.helperSocket)) > 107) {
      throw invalidOption(`NetworkManager: stateDir ${this.stateDir} is too long for a unix socket path inside it`);
    }
    this.#logger = (options.logger ?? noopLogger).child({ component: 'network' });
    this.ruleTag = options.ruleTag ?? 'default';
    if (!tagPattern.test(this.ruleTag)) {
      throw invalidOption(`NetworkManager: ruleTag ${JSON.stringify(this.ruleTag)} must be 1-16 letters, digits, _ or -`);
    }
    this.#alias = `berth:${this.ruleTag}`;
    this.#defaultBridge = options.defaultBridge ?? 'berth0';
    if (!ifnamePattern.test(this.#defaultBridge)) {
      throw invalidOption(`NetworkManager: defaultBridge ${JSON.stringify(this.#defaultBridge)} is not a valid interface name (1-15 characters)`);
    }
    this.#defaultSubnet = options.defaultSubnet === undefined ? undefined : parseSubnet(options.defaultSubnet, 'defaultSubnet');
    if (this.#defaultSubnet && this.#defaultSubnet.prefix > 30) throw invalidOption('NetworkManager: defaultSubnet must be /30 or larger');
    this.#defaultMtu = options.defaultMtu ?? 1500;
    if (!Number.isInteger(this.#defaultMtu) || this.#defaultMtu < 68 || this.#defaultMtu > 65535) {
      throw invalidOption(`NetworkManager: defaultMtu ${options.defaultMtu} is outside 68-65535`);
    }
    this.#pools = (options.addressPools ?? defaultAddressPools).map((p) => {
      const base = parseSubnet(p.base, 'address pool');
      if (!Number.isInteger(p.size) || p.size < base.prefix || p.size > 30) {
        throw invalidOption(`NetworkManager: address pool ${p.base} size ${p.size} must be between /${base.prefix} and /30`);
      }
      return { base, size: p.size };
    });
    this.#bridgePrefix = options.bridgePrefix ?? 'berth-';
    this.#vethPrefix = options.vethPrefix ?? 'veth';
    for (const [what, prefix] of [['bridgePrefix', this.#bridgePrefix], ['vethPrefix', this.#vethPrefix]] as const) {
      if (!/^[a-zA-Z][a-zA-Z0-9_-]{0,7}$/.test(prefix)) throw invalidOption(`NetworkManager: ${what} ${JSON.stringify(prefix)} must be 1-8 letters, digits, _ or -`);
    }
    this.#firewallPreference = options.firewall ?? 'auto';
    this.#hostResolvConfPath = options.hostResolvConfPath ?? '/etc/resolv.conf';
    this.#hostHostsPath = options.hostHostsPath ?? '/etc/hosts';
    const helperCommand = options.helperCommand ?? defaultHelperCommand;
    if (helperCommand.length === 0) throw invalidOption('NetworkManager: helperCommand must not be empty');
    this.#helper = new HelperClient({ stateDir: this.stateDir, command: helperCommand, logger: this.#logger });
  }

  /** The firewall in use, detected once per manager. */
  firewall(signal?: AbortSignal): Promise<Firewall> {
    this.#firewall ??= detectFirewall({ preference: this.#firewallPreference, tag: this.ruleTag, logger: this.#logger, signal }).catch((err: unknown) => {
      this.#firewall = undefined;
      throw err;
    });
    return this.#firewall;
  }

  /**
   * Brings the host in line with the state: creates the predefined networks, recreates missing
   * bridges (after a reboot), releases endpoints of containers that are gone (their veths, addresses
   * and ports), deletes links with this tag that no record owns, rewrites the firewall rules, and
   * starts or stops the helper. Run it when the engine or its server starts.
   */
  async init(options: InitOptions = {}): Promise<RecoveryReport> {
    const { signal } = options;
    const firewall = await this.firewall(signal);
    await this.#enableForwarding(firewall);
    const live = options.liveContainers ? new Set(options.liveContainers) : undefined;
    return updateNetworkState(
      this.stateDir,
      async (state, commit) => {
        if (state.firewallBackend && state.firewallBackend !== firewall.backend) await this.#removeRulesOf(state.firewallBackend, signal);
        state.firewallBackend = firewall.backend;
        await this.#ensurePredefined(state, signal);
        const links = await listLinks({ signal });
        const names = new Set(links.map((l) => l.name));

        const released: EndpointRecord[] = [];
        for (const e of state.endpoints) {
          const alive = (!live || live.has(e.containerId)) && (await netnsAlive(e.netnsPath, e.netnsId));
          if (!alive) released.push(e);
        }
        const releasedIds = new Set(released.map((e) => e.id));
        const portsBefore = state.ports.length;
        state.endpoints = state.endpoints.filter((e) => !releasedIds.has(e.id));
        state.ports = state.ports.filter((p) => !releasedIds.has(p.endpointId));

        const owned = new Set([
          ...state.networks.flatMap((n) => (n.bridge ? [n.bridge.name] : [])),
          ...state.endpoints.map((e) => e.hostVeth),
        ]);
        const strays = links.filter((l) => l.alias === this.#alias && !owned.has(l.name)).map((l) => l.name);
        await deleteLinks(strays, { signal });
        const batch: string[] = [];
        for (const n of state.networks) {
          if (!n.bridge) continue;
          if (names.has(n.bridge.name)) batch.push(...this.#bridgeRefreshLines(n));
          else batch.push(...this.#bridgeCreateLines(n));
        }
        await ipBatch(batch, { signal });
        await firewall.apply(this.#ruleset(state), signal);
        this.#refreshUpstreams(state, await this.#hostResolvConf());
        await commit();
        await this.#syncHelper(state, signal);
        const report = {
          endpointsReleased: released.length,
          portsReleased: portsBefore - state.ports.length,
          linksRemoved: strays,
          firewall: firewall.backend,
        };
        if (released.length || strays.length) this.#logger.info('network state recovered', report);
        return report;
      },
      signal,
    );
  }

  /** Creates a bridge network with its bridge and rules (`engine network create`). */
  async createNetwork(options: CreateNetworkOptions): Promise<NetworkInfo> {
    const { signal } = options;
    const driver = options.driver ?? NetworkDriver.Bridge;
    if (driver !== NetworkDriver.Bridge) {
      throw networkError(`network driver ${JSON.stringify(driver)} is not supported: only bridge networks can be created`, 'NotImplemented', NetworkErrorCode.Unsupported);
    }
    if (typeof options.name !== 'string' || !namePattern.test(options.name)) {
      throw networkError(
        `invalid network name ${JSON.stringify(options.name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`,
        'InvalidArgument',
        NetworkErrorCode.InvalidName,
      );
    }
    const userOptions = { ...(options.options ?? {}) };
    const mtuText = userOptions['com.docker.network.driver.mtu'];
    const mtu = mtuText === undefined ? this.#defaultMtu : Number(mtuText);
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw invalidOption(`invalid MTU ${JSON.stringify(mtuText)}: want 68-65535`);
    const requestedBridge = userOptions['com.docker.network.bridge.name'];
    if (requestedBridge !== undefined && !ifnamePattern.test(requestedBridge)) {
      throw invalidOption(`invalid bridge name ${JSON.stringify(requestedBridge)}: want 1-15 letters, digits, _, . or -`);
    }
    const explicitSubnet = options.subnet === undefined ? undefined : parseSubnet(options.subnet);
    if (explicitSubnet && explicitSubnet.prefix > 30) throw invalidOption(`subnet ${options.subnet} is too small: want /30 or larger`);
    if (!explicitSubnet && (options.gateway !== undefined || options.ipRange !== undefined)) {
      throw invalidOption('--gateway and --ip-range need --subnet');
    }
    const firewall = await this.firewall(signal);
    await this.#enableForwarding(firewall);
    const routes = await listRoutes({ signal });

    return updateNetworkState(
      this.stateDir,
      async (state) => {
        await this.#ensurePredefined(state, signal);
        if (state.networks.some((n) => n.name === options.name)) {
          throw networkError(`network with name ${options.name} already exists`, 'Conflict', NetworkErrorCode.NetworkExists);
        }
        const id = randomHex(32);
        const subnet = explicitSubnet ?? this.#allocateSubnet(state, routes);
        if (explicitSubnet) this.#checkSubnetFree(state, routes, explicitSubnet);
        const gateway = options.gateway === undefined ? subnet.network + 1 : parseIpv4(options.gateway, 'gateway');
        if (!subnetContains(subnet, gateway) || gateway === subnet.network || gateway === broadcastOf(subnet)) {
          throw invalidOption(`gateway ${formatIpv4(gateway)} is not a usable address of subnet ${formatSubnet(subnet)}`);
        }
        let ipRange: string | undefined;
        if (options.ipRange !== undefined) {
          const range = parseSubnet(options.ipRange, 'ip range');
          if (range.prefix < subnet.prefix || !subnetContains(subnet, range.network)) {
            throw invalidOption(`ip range ${options.ipRange} is not inside subnet ${formatSubnet(subnet)}`);
          }
          ipRange = formatSubnet(range);
        }
        const bridgeName = requestedBridge ?? `${this.#bridgePrefix}${id}`.slice(0, 15);
        if (state.networks.some((n) => n.bridge?.name === bridgeName)) {
          throw networkError(`bridge ${bridgeName} is already used by another network`, 'Conflict', NetworkErrorCode.NetworkExists);
        }
        const record: NetworkRecord = {
          id,
          name: options.name,
          driver: NetworkDriver.Bridge,
          created: new Date().toISOString(),
          internal: options.internal ?? false,
          attachable: options.attachable ?? false,
          predefined: false,
          isDefault: false,
          labels: { ...(options.labels ?? {}) },
          options: userOptions,
          bridge: { name: bridgeName, subnet: formatSubnet(subnet), gateway: formatIpv4(gateway), ...(ipRange ? { ipRange } : {}), mtu },
        };
        await ipBatch(this.#bridgeCreateLines(record), { signal });
        state.networks.push(record);
        try {
          await firewall.apply(this.#ruleset(state), signal);
        } catch (err) {
          state.networks.pop();
          await deleteLinks([bridgeName]).catch(() => {});
          throw err;
        }
        this.#logger.info('network created', { network: record.name, id, bridge: bridgeName, subnet: record.bridge?.subnet });
        return this.#info(state, record);
      },
      signal,
    );
  }

  /** Removes a user network; refused while containers are attached, and for predefined networks. */
  async removeNetwork(ref: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    const firewall = await this.firewall(signal);
    await updateNetworkState(
      this.stateDir,
      async (state) => {
        await this.#ensurePredefined(state, signal);
        const network = this.#resolve(state, ref);
        await this.#removeNetworkRecord(state, network, firewall, signal);
      },
      signal,
    );
  }

  /** Every network, predefined ones first, then by name (`engine network ls`). */
  async listNetworks(options: { signal?: AbortSignal } = {}): Promise<NetworkInfo[]> {
    const state = await this.#readyState(options.signal);
    return [...state.networks]
      .sort((a, b) => Number(b.predefined) - Number(a.predefined) || a.name.localeCompare(b.name))
      .map((n) => this.#info(state, n));
  }

  /** One network by name, id or unique id prefix (`engine network inspect`). */
  async inspectNetwork(ref: string, options: { signal?: AbortSignal } = {}): Promise<NetworkInfo> {
    const state = await this.#readyState(options.signal);
    return this.#info(state, this.#resolve(state, ref));
  }

  /** Removes every user network no container is attached to, that `filter` accepts; returns their names. */
  async pruneNetworks(options: { filter?: (network: NetworkInfo) => boolean; signal?: AbortSignal } = {}): Promise<string[]> {
    const { signal } = options;
    const firewall = await this.firewall(signal);
    return updateNetworkState(
      this.stateDir,
      async (state) => {
        await this.#ensurePredefined(state, signal);
        const removed: string[] = [];
        for (const n of [...state.networks]) {
          if (n.predefined || state.endpoints.some((e) => e.networkId === n.id)) continue;
          if (options.filter && !options.filter(this.#info(state, n))) continue;
          await this.#removeNetworkRecord(state, n, firewall, signal);
          removed.push(n.name);
        }
        return removed;
      },
      signal,
    );
  }

  /**
   * Attaches a container's network namespace to a bridge network: a veth pair with its host end on
   * the bridge and the other end (`eth<n>`) in the namespace, an address from the network, the
   * default route through the first non-internal network, loopback up. Two `ip -batch` execs.
   */
  async connect(options: ConnectOptions): Promise<EndpointInfo> {
    const { signal } = options;
    if (!options.containerId || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(options.containerId)) {
      throw invalidOption(`invalid container id ${JSON.stringify(options.containerId)}`);
    }
    const netnsPath = netnsPathOf(options);
    const netnsId = await netnsIdentity(netnsPath);
    const containerName = (options.containerName ?? '').replace(/^\//, '');
    const aliases = [...new Set(options.aliases ?? [])];
    for (const a of aliases) if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(a)) throw invalidOption(`invalid network alias ${JSON.stringify(a)}`);
    if (options.mac !== undefined && (!macPattern.test(options.mac) || (parseInt(options.mac.slice(0, 2), 16) & 1) === 1)) {
      throw invalidOption(`invalid MAC address ${JSON.stringify(options.mac)}: want a unicast address such as 02:42:0a:00:00:02`);
    }
    if (options.ifname !== undefined && !ifnamePattern.test(options.ifname)) throw invalidOption(`invalid interface name ${JSON.stringify(options.ifname)}`);

    const hostResolv = await this.#hostResolvConf();
    return updateNetworkState(
      this.stateDir,
      async (state, commit) => {
        await this.#ensurePredefined(state, signal);
        const network = this.#resolve(state, options.network);
        if (!network.bridge) {
          throw networkError(
            `container cannot be connected to network ${network.name}: run it with --network ${network.name === 'none' || network.driver === NetworkDriver.Null ? 'none' : 'host'} instead`,
            'InvalidArgument',
            NetworkErrorCode.Unsupported,
          );
        }
        if (network.isDefault && aliases.length) {
          throw invalidOption('network-scoped aliases are supported only for containers on user-defined networks');
        }
        if (network.isDefault && options.ip !== undefined) {
          throw invalidOption('a user-specified IP address is supported only on user-defined networks');
        }
        const reaped = await this.#reapDead(state, signal);
        const mine = state.endpoints.filter((e) => e.containerId === options.containerId);
        if (mine.some((e) => e.networkId === network.id)) {
          throw networkError(`container ${options.containerId} is already connected to network ${network.name}`, 'AlreadyExists', NetworkErrorCode.EndpointExists);
        }
        const bridge = network.bridge;
        if (!(await linkExists(bridge.name))) await ipBatch(this.#bridgeCreateLines(network), { signal });
        const address = this.#allocateAddress(state, network, options.ip);
        const prefixLength = parseSubnet(bridge.subnet).prefix;
        const ifname = options.ifname ?? this.#freeIfname(mine);
        if (mine.some((e) => e.ifname === ifname)) throw invalidOption(`interface ${ifname} is already used by the container`);
        const defaultRoute = !network.internal && !mine.some((e) => e.defaultRoute);
        const hostVeth = `${this.#vethPrefix}${randomHex(8)}`.slice(0, 15);
        const mac = (options.mac ?? macFromAddress(address)).toLowerCase();
        const record: EndpointRecord = {
          id: randomHex(32),
          networkId: network.id,
          containerId: options.containerId,
          containerName,
          aliases,
          ifname,
          hostVeth,
          address,
          staticAddress: options.ip !== undefined,
          prefixLength,
          macAddress: mac,
          defaultRoute,
          netnsPath,
          netnsId,
          created: new Date().toISOString(),
        };
        await ipBatch(
          [
            `link add name ${hostVeth} mtu ${bridge.mtu} type veth peer name ${ifname} mtu ${bridge.mtu} address ${mac} netns ${netnsPath}`,
            `link set dev ${hostVeth} alias ${this.#alias}`,
            `link set dev ${hostVeth} master ${bridge.name}`,
            `link set dev ${hostVeth} up`,
          ],
          { signal },
        );
        try {
          await ipBatch(
            [
              'link set dev lo up',
              `addr add ${address}/${prefixLength} broadcast + dev ${ifname}`,
              `link set dev ${ifname} up`,
              ...(defaultRoute ? [`route replace default via ${bridge.gateway} dev ${ifname}`] : []),
            ],
            { netnsPath, signal },
          );
        } catch (err) {
          await deleteLinks([hostVeth]).catch(() => {});
          throw err;
        }
        state.endpoints.push(record);
        state.ipamCursor[network.id] = address;
        this.#refreshUpstreams(state, hostResolv);
        await commit();
        this.#logger.info('container connected', { containerId: record.containerId, network: network.name, address, hostVeth });
        // The embedded DNS server learns the new name; the default bridge has none.
        if (!network.isDefault || reaped) await this.#syncHelper(state, signal);
        return this.#endpointInfo(state, record);
      },
      signal,
    );
  }

  /** Detaches a container from one network: its veth, address and the ports leading to it go. */
  async disconnect(options: { containerId: string; network: string; signal?: AbortSignal }): Promise<void> {
    const { signal } = options;
    await updateNetworkState(
      this.stateDir,
      async (state, commit) => {
        await this.#ensurePredefined(state, signal);
        const network = this.#resolve(state, options.network);
        const endpoint = state.endpoints.find((e) => e.containerId === options.containerId && e.networkId === network.id);
        if (!endpoint) {
          throw networkError(`container ${options.containerId} is not connected to network ${network.name}`, 'NotFound', NetworkErrorCode.NotConnected);
        }
        await this.#release(state, [endpoint], signal);
        await commit();
        await this.#syncHelper(state, signal);
      },
      signal,
    );
  }

  /** Detaches a container from every network and unpublishes its ports (container stop or removal). */
  async releaseContainer(options: { containerId: string; signal?: AbortSignal }): Promise<void> {
    const { signal } = options;
    await updateNetworkState(
      this.stateDir,
      async (state, commit) => {
        const endpoints = state.endpoints.filter((e) => e.containerId === options.containerId);
        const hadPorts = state.ports.some((p) => p.containerId === options.containerId);
        if (endpoints.length === 0 && !hadPorts) return;
        // Ports leading to the endpoints go with them (and their rules); none should be left over.
        await this.#release(state, endpoints, signal);
        const rest = state.ports.filter((p) => p.containerId !== options.containerId);
        if (rest.length !== state.ports.length) {
          state.ports = rest;
          await (await this.firewall(signal)).apply(this.#ruleset(state), signal);
        }
        await commit();
        await this.#syncHelper(state, signal);
      },
      signal,
    );
  }

  /** Renames a container in the embedded DNS of its user networks (`engine rename`). */
  async renameContainer(options: { containerId: string; name: string; signal?: AbortSignal }): Promise<void> {
    const { signal } = options;
    const name = options.name.replace(/^\//, '');
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw invalidOption(`invalid container name ${JSON.stringify(options.name)}`);
    await updateNetworkState(
      this.stateDir,
      async (state, commit) => {
        if (!state.endpoints.some((e) => e.containerId === options.containerId)) return;
        state.endpoints = state.endpoints.map((e) => (e.containerId === options.containerId ? { ...e, containerName: name } : e));
        await commit();
        await this.#syncHelper(state, signal);
      },
      signal,
    );
  }

  /** The container's endpoints, in the order they were connected. */
  async containerEndpoints(containerId: string, options: { signal?: AbortSignal } = {}): Promise<EndpointInfo[]> {
    const state = await readNetworkState(this.stateDir);
    throwIfAborted(options.signal);
    return state.endpoints.filter((e) => e.containerId === containerId).map((e) => this.#endpointInfo(state, e));
  }

  /**
   * Publishes ports of a connected container, all or none: each host port is checked against
   * this state and bound by the helper's proxy, then DNAT rules are written. A host port already
   * in use fails with Conflict (ERR_PORT_IN_USE) naming the port, and nothing of the call remains.
   */
  async publish(options: PublishOptions): Promise<PublishedPort[]> {
    const { signal } = options;
    const firewall = await this.firewall(signal);
    return updateNetworkState(
      this.stateDir,
      async (state, commit) => {
        await this.#reapDead(state, signal);
        const endpoint = this.#publishEndpoint(state, options.containerId, options.network);
        const added: PortRecord[] = [];
        for (const spec of options.ports) {
          const hostPort = await this.#chooseHostPort(state, added, spec);
          added.push({
            protocol: spec.protocol,
            containerPort: spec.containerPort,
            hostIp: spec.hostIp || anyHostIp,
            hostPort,
            containerId: options.containerId,
            endpointId: endpoint.id,
            containerIp: endpoint.address,
          });
        }
        if (added.length === 0) return [];
        const rollback = async (cause: unknown): Promise<never> => {
          state.ports = state.ports.filter((p) => !added.includes(p));
          await commit();
          await this.#syncHelper(state, signal).catch(() => undefined);
          await firewall.apply(this.#ruleset(state), signal).catch(() => undefined);
          throw cause;
        };
        state.ports.push(...added);
        await commit();
        let reply: ReloadReply | undefined;
        try {
          reply = await this.#syncHelper(state, signal);
        } catch (err) {
          await rollback(err);
        }
        const keys = new Map(added.map((p) => [proxyKey(p.protocol, p.hostIp, p.hostPort), p]));
        const failure = reply?.proxyFailures.find((f) => keys.has(f.key));
        if (failure) {
          const p = keys.get(failure.key)!;
          const what = `host port ${p.hostPort}/${p.protocol} on ${p.hostIp}`;
          await rollback(
            failure.code === 'EADDRINUSE'
              ? networkError(`${what} is already in use by another program`, 'Conflict', NetworkErrorCode.PortInUse, failure.message)
              : failure.code === 'EADDRNOTAVAIL'
                ? networkError(`${what}: ${p.hostIp} is not an address of this host`, 'InvalidArgument', NetworkErrorCode.InvalidAddress, failure.message)
                : networkError(`${what} cannot be bound (${failure.code})`, 'Unavailable', NetworkErrorCode.HelperFailed, failure.message),
          );
        }
        try {
          await firewall.apply(this.#ruleset(state), signal);
        } catch (err) {
          await rollback(err);
        }
        this.#logger.info('ports published', { containerId: options.containerId, ports: added.map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.protocol}`) });
        return added.map((p) => this.#published(state, p));
      },
      signal,
    );
  }

  /** Removes every published port of the container. */
  async unpublish(options: { containerId: string; signal?: AbortSignal }): Promise<void> {
    const { signal } = options;
    const firewall = await this.firewall(signal);
    await updateNetworkState(
      this.stateDir,
      async (state, commit) => {
        const before = state.ports.length;
        state.ports = state.ports.filter((p) => p.containerId !== options.containerId);
        if (state.ports.length === before) return;
        await commit();
        await firewall.apply(this.#ruleset(state), signal);
        await this.#syncHelper(state, signal);
      },
      signal,
    );
  }

  /** The container's published ports, by container port then protocol (`engine port`). */
  async listPorts(containerId: string, options: { signal?: AbortSignal } = {}): Promise<PublishedPort[]> {
    const state = await readNetworkState(this.stateDir);
    throwIfAborted(options.signal);
    return state.ports
      .filter((p) => p.containerId === containerId)
      .sort((a, b) => a.containerPort - b.containerPort || a.protocol.localeCompare(b.protocol) || a.hostPort - b.hostPort)
      .map((p) => this.#published(state, p));
  }

  /** The default bridge's gateway, which `--add-host name:host-gateway` resolves to. */
  async hostGateway(options: { signal?: AbortSignal } = {}): Promise<string> {
    const state = await this.#readyState(options.signal);
    return state.networks.find((n) => n.isDefault)!.bridge!.gateway;
  }

  /**
   * A container's /etc/hosts, /etc/resolv.conf and /etc/hostname, as docker writes them. On a
   * user network resolv.conf names the embedded DNS server (the first user network's gateway);
   * on the default bridge it is the host's minus loopback resolvers; with `host` it is the host's.
   */
  async containerFiles(options: ContainerFilesOptions): Promise<ContainerFiles> {
    const state = await this.#readyState(options.signal);
    const hostGateway = state.networks.find((n) => n.isDefault)?.bridge?.gateway;
    const extraHosts: ExtraHost[] = (options.extraHosts ?? []).map((h) => parseExtraHost(h, hostGateway));
    const hostResolv = await this.#hostResolvConf();
    const overrides = {
      ...(options.dns?.length ? { nameservers: options.dns } : {}),
      ...(options.dnsSearch?.length ? { search: options.dnsSearch } : {}),
      ...(options.dnsOptions?.length ? { options: options.dnsOptions } : {}),
    };
    for (const n of options.dns ?? []) if (!isIpv4(n) && !n.includes(':')) throw invalidOption(`invalid --dns address ${JSON.stringify(n)}`);
    let hosts: string;
    let resolvConf: string;
    if (options.mode === 'host') {
      const hostHosts = readHostFile(this.#hostHostsPath) ?? renderHostsFile({ hostname: options.hostname, addresses: [] });
      hosts = hostHosts + extraHosts.map((h) => `${h.address}\t${h.name}\n`).join('');
      resolvConf = renderResolvConf({ host: hostResolv, keepLoopback: true, ...overrides });
    } else {
      const endpoints = options.mode === 'none' ? [] : state.endpoints.filter((e) => e.containerId === options.containerId);
      hosts = renderHostsFile({
        hostname: options.hostname,
        ...(options.domainname ? { domainname: options.domainname } : {}),
        addresses: endpoints.map((e) => e.address),
        extraHosts,
      });
      const userNetwork = endpoints.map((e) => state.networks.find((n) => n.id === e.networkId)).find((n) => n && !n.isDefault);
      resolvConf = renderResolvConf({
        host: hostResolv,
        ...(userNetwork?.bridge ? { embeddedDns: userNetwork.bridge.gateway } : {}),
        ...overrides,
      });
    }
    return { hosts, resolvConf, hostname: renderHostnameFile(options.hostname) };
  }

  /** Writes `containerFiles` into `dir` (hosts, resolv.conf, hostname) for the engine to bind-mount. */
  async writeContainerFiles(dir: string, options: ContainerFilesOptions): Promise<ContainerFilePaths> {
    const files = await this.containerFiles(options);
    await mkdir(dir, { recursive: true });
    const paths = { hostsPath: join(dir, 'hosts'), resolvConfPath: join(dir, 'resolv.conf'), hostnamePath: join(dir, 'hostname') };
    await writeFileAtomic(paths.hostsPath, files.hosts);
    await writeFileAtomic(paths.resolvConfPath, files.resolvConf);
    await writeFileAtomic(paths.hostnamePath, files.hostname);
    return paths;
  }

  /** Brings up loopback only, for `--network none` (the namespace is the engine's). */
  async setupLoopback(options: { netnsPath?: string; pid?: number; signal?: AbortSignal }): Promise<void> {
    await ipBatch(['link set dev lo up'], { netnsPath: netnsPathOf(options), signal: options.signal });
  }

  /** The rules this manager's tag has in the firewall, in the backend's syntax (for diagnostics and tests). */
  async listRules(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    return (await this.firewall(options.signal)).list(options.signal);
  }

  /** The pid of this state directory's helper process, if it runs. */
  helperPid(options: { signal?: AbortSignal } = {}): Promise<number | undefined> {
    return this.#helper.pid(options.signal);
  }

  /**
   * Removes everything this tag owns on the host: veths, bridges, firewall rules, the helper, and
   * the state file (`engine system reset`, and test cleanup).
   */
  async removeAll(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    const firewall = await this.firewall(signal);
    await updateNetworkState(
      this.stateDir,
      async (state) => {
        await this.#helper.stop(signal);
        const links = await listLinks({ signal });
        await deleteLinks(
          links.filter((l) => l.alias === this.#alias).map((l) => l.name),
          { signal },
        );
        await firewall.remove(signal);
        if (state.firewallBackend && state.firewallBackend !== firewall.backend) await this.#removeRulesOf(state.firewallBackend, signal);
        state.networks = [];
        state.endpoints = [];
        state.ports = [];
        state.ipamCursor = {};
      },
      signal,
    );
    await rm(join(this.stateDir, stateFiles.state), { force: true });
  }

  // --- internals ---

  async #readyState(signal?: AbortSignal): Promise<NetworkState> {
    const state = await readNetworkState(this.stateDir);
    throwIfAborted(signal);
    const names = new Set(state.networks.map((n) => n.name));
    if (state.networks.some((n) => n.isDefault) && names.has('host') && names.has('none')) return state;
    return updateNetworkState(
      this.stateDir,
      async (s) => {
        await this.#ensurePredefined(s, signal);
        return s;
      },
      signal,
    );
  }

  /** Adds the `bridge`, `host` and `none` records (and the default bridge's rules) when missing. */
  async #ensurePredefined(state: NetworkState, signal?: AbortSignal): Promise<void> {
    const created = new Date().toISOString();
    const base = { created, internal: false, attachable: false, predefined: true, isDefault: false, labels: {}, options: {} };
    if (!state.networks.some((n) => n.name === 'host')) state.networks.push({ ...base, id: randomHex(32), name: 'host', driver: NetworkDriver.Host });
    if (!state.networks.some((n) => n.name === 'none')) state.networks.push({ ...base, id: randomHex(32), name: 'none', driver: NetworkDriver.Null });
    if (state.networks.some((n) => n.isDefault)) return;
    const routes = await listRoutes({ signal });
    const subnet = this.#defaultSubnet ?? this.#allocateSubnet(state, routes);
    this.#checkSubnetFree(state, routes, subnet, this.#defaultBridge);
    state.networks.push({
      ...base,
      id: randomHex(32),
      name: 'bridge',
      driver: NetworkDriver.Bridge,
      isDefault: true,
      options: {
        'com.docker.network.bridge.default_bridge': 'true',
        'com.docker.network.bridge.name': this.#defaultBridge,
        'com.docker.network.driver.mtu': String(this.#defaultMtu),
      },
      bridge: { name: this.#defaultBridge, subnet: formatSubnet(subnet), gateway: formatIpv4(subnet.network + 1), mtu: this.#defaultMtu },
    });
    const firewall = await this.firewall(signal);
    await this.#enableForwarding(firewall);
    state.firewallBackend = firewall.backend;
    await firewall.apply(this.#ruleset(state), signal);
    this.#logger.info('default network created', { bridge: this.#defaultBridge, subnet: formatSubnet(subnet) });
  }

  #resolve(state: NetworkState, ref: string): NetworkRecord {
    const exact = state.networks.find((n) => n.id === ref) ?? state.networks.find((n) => n.name === ref);
    if (exact) return exact;
    const byPrefix = ref ? state.networks.filter((n) => n.id.startsWith(ref)) : [];
    if (byPrefix.length === 1) return byPrefix[0]!;
    if (byPrefix.length > 1) {
      throw networkError(`network ${ref} is ambiguous (${byPrefix.length} matches found on ID prefix)`, 'InvalidArgument', NetworkErrorCode.NetworkAmbiguous);
    }
    throw networkError(`network ${ref} not found`, 'NotFound', NetworkErrorCode.NetworkNotFound);
  }

  async #removeNetworkRecord(state: NetworkState, network: NetworkRecord, firewall: Firewall, signal?: AbortSignal): Promise<void> {
    if (network.predefined) {
      throw networkError(`${network.name} is a pre-defined network and cannot be removed`, 'PermissionDenied', NetworkErrorCode.NetworkPredefined);
    }
    const attached = state.endpoints.filter((e) => e.networkId === network.id);
    if (attached.length) {
      const who = attached.map((e) => e.containerName || e.containerId.slice(0, 12)).join(', ');
      throw networkError(`network ${network.name} has active endpoints (${who})`, 'Conflict', NetworkErrorCode.NetworkInUse);
    }
    state.networks = state.networks.filter((n) => n.id !== network.id);
    delete state.ipamCursor[network.id];
    await firewall.apply(this.#ruleset(state), signal);
    if (network.bridge) await deleteLinks([network.bridge.name], { signal });
    this.#logger.info('network removed', { network: network.name, id: network.id });
  }

  /**
   * Releases the endpoints whose namespace is gone: containers that exited while no Berth process
   * was there to see it. Their addresses, DNS names and host ports come free for the caller.
   * True when any were released (the caller then reloads the helper).
   */
  async #reapDead(state: NetworkState, signal?: AbortSignal): Promise<boolean> {
    const dead: EndpointRecord[] = [];
    for (const e of state.endpoints) if (!(await netnsAlive(e.netnsPath, e.netnsId))) dead.push(e);
    if (dead.length === 0) return false;
    this.#logger.info('releasing endpoints of exited containers', { containers: [...new Set(dead.map((e) => e.containerId))] });
    await this.#release(state, dead, signal);
    return true;
  }

  /** Deletes endpoints' veths, drops them and their ports from `state`, and moves the default route if needed. */
  async #release(state: NetworkState, endpoints: readonly EndpointRecord[], signal?: AbortSignal): Promise<void> {
    if (endpoints.length === 0) return;
    const ids = new Set(endpoints.map((e) => e.id));
    const hadPorts = state.ports.some((p) => ids.has(p.endpointId));
    await deleteLinks(
      endpoints.map((e) => e.hostVeth),
      { signal },
    );
    state.endpoints = state.endpoints.filter((e) => !ids.has(e.id));
    state.ports = state.ports.filter((p) => !ids.has(p.endpointId));
    if (hadPorts) await (await this.firewall(signal)).apply(this.#ruleset(state), signal);
    // Losing the network of the default route moves it to another non-internal network, as docker does.
    for (const lost of endpoints.filter((e) => e.defaultRoute)) {
      const nextIndex = state.endpoints.findIndex(
        (e) => e.containerId === lost.containerId && !state.networks.find((n) => n.id === e.networkId)?.internal,
      );
      const next = state.endpoints[nextIndex];
      if (!next || !(await netnsAlive(next.netnsPath, next.netnsId))) continue;
      const gateway = state.networks.find((n) => n.id === next.networkId)?.bridge?.gateway;
      if (!gateway) continue;
      await ipBatch([`route replace default via ${gateway} dev ${next.ifname}`], { netnsPath: next.netnsPath, signal }).catch((err: unknown) =>
        this.#logger.warn('cannot move the default route', { containerId: next.containerId, err }),
      );
      state.endpoints[nextIndex] = { ...next, defaultRoute: true };
    }
    for (const e of endpoints) this.#logger.info('container disconnected', { containerId: e.containerId, networkId: e.networkId, address: e.address });
  }

  #bridgeCreateLines(network: NetworkRecord): string[] {
    const b = network.bridge!;
    const prefix = parseSubnet(b.subnet).prefix;
    // A bridge takes the lowest MAC of its ports unless it has one set: removing a port would
    // then change the gateway's MAC under the containers' ARP caches (seconds of lost packets).
    const mac = randomBytes(6);
    mac[0] = (mac[0]! & 0xfe) | 0x02;
    return [
      `link add name ${b.name} mtu ${b.mtu} type bridge`,
      `link set dev ${b.name} address ${[...mac].map((x) => x.toString(16).padStart(2, '0')).join(':')}`,
      `link set dev ${b.name} alias ${this.#alias}`,
      `addr add ${b.gateway}/${prefix} broadcast + dev ${b.name}`,
      `link set dev ${b.name} up`,
    ];
  }

  #bridgeRefreshLines(network: NetworkRecord): string[] {
    const b = network.bridge!;
    const prefix = parseSubnet(b.subnet).prefix;
    return [`addr replace ${b.gateway}/${prefix} broadcast + dev ${b.name}`, `link set dev ${b.name} up`];
  }

  #ruleset(state: NetworkState): FirewallRuleset {
    const bridgeOf = new Map<string, string>();
    for (const e of state.endpoints) {
      const name = state.networks.find((n) => n.id === e.networkId)?.bridge?.name;
      if (name) bridgeOf.set(e.id, name);
    }
    return {
      networks: state.networks.flatMap((n) => (n.bridge ? [{ bridge: n.bridge.name, subnet: n.bridge.subnet, internal: n.internal }] : [])),
      // Loopback host addresses are the proxy's alone: DNAT to them would need route_localnet.
      ports: state.ports.flatMap((p) => {
        const bridge = bridgeOf.get(p.endpointId);
        return bridge && !isLoopbackIpv4(parseIpv4(p.hostIp)) ? [{ protocol: p.protocol, hostIp: p.hostIp, hostPort: p.hostPort, containerIp: p.containerIp, containerPort: p.containerPort, bridge }] : [];
      }),
    };
  }

  /** Subnets in use: this state's networks and the host's routes other than default ones. */
  #checkSubnetFree(state: NetworkState, routes: readonly { destination: string; device: string }[], subnet: Ipv4Subnet, ownBridge?: string): void {
    for (const n of state.networks) {
      if (n.bridge && subnetsOverlap(parseSubnet(n.bridge.subnet), subnet)) {
        throw networkError(
          `subnet ${formatSubnet(subnet)} overlaps subnet ${n.bridge.subnet} of network ${n.name}`,
          'Conflict',
          NetworkErrorCode.SubnetOverlap,
        );
      }
    }
    const ours = new Set(state.networks.flatMap((n) => (n.bridge ? [n.bridge.name] : [])));
    if (ownBridge) ours.add(ownBridge);
    for (const r of routes) {
      if (r.destination === 'default' || ours.has(r.device)) continue;
      const dest = parseSubnet(r.destination.includes('/') ? r.destination : `${r.destination}/32`, 'route');
      if (subnetsOverlap(dest, subnet)) {
        throw networkError(
          `subnet ${formatSubnet(subnet)} overlaps the host route ${r.destination} dev ${r.device}`,
          'Conflict',
          NetworkErrorCode.SubnetOverlap,
        );
      }
    }
  }

  #allocateSubnet(state: NetworkState, routes: readonly { destination: string; device: string }[]): Ipv4Subnet {
    for (const pool of this.#pools) {
      for (let i = 0; ; i++) {
        const candidate = nthSubnet(pool.base, pool.size, i);
        if (!candidate) break;
        try {
          this.#checkSubnetFree(state, routes, candidate);
          return candidate;
        } catch (err) {
          if (!(err instanceof NetworkError) || err.code !== NetworkErrorCode.SubnetOverlap) throw err;
        }
      }
    }
    throw networkError('all address pools are in use: give a --subnet, or free a network', 'Unavailable', NetworkErrorCode.PoolExhausted);
  }

  #allocateAddress(state: NetworkState, network: NetworkRecord, requested?: string): string {
    const b = network.bridge!;
    const subnet = parseSubnet(b.subnet);
    const used = new Set(state.endpoints.filter((e) => e.networkId === network.id).map((e) => parseIpv4(e.address)));
    used.add(parseIpv4(b.gateway));
    const reserved = (a: number) => a === subnet.network || a === broadcastOf(subnet);
    if (requested !== undefined) {
      const a = parseIpv4(requested, 'IP address');
      if (!subnetContains(subnet, a) || reserved(a)) {
        throw invalidOption(`IP address ${requested} is not a usable address of network ${network.name} (${b.subnet})`);
      }
      if (used.has(a)) throw networkError(`IP address ${requested} is already in use on network ${network.name}`, 'Conflict', NetworkErrorCode.AddressInUse);
      return requested;
    }
    const range = b.ipRange ? parseSubnet(b.ipRange) : subnet;
    const size = subnetSize(range);
    const cursor = state.ipamCursor[network.id];
    const cursorValue = cursor && isIpv4(cursor) ? parseIpv4(cursor) : range.network;
    const start = subnetContains(range, cursorValue) ? cursorValue - range.network + 1 : 1;
    for (let i = 0; i < size; i++) {
      const a = range.network + ((start + i) % size);
      if (!reserved(a) && !used.has(a)) return formatIpv4(a);
    }
    throw networkError(`no free IPv4 address left on network ${network.name} (${b.ipRange ?? b.subnet})`, 'Unavailable', NetworkErrorCode.AddressExhausted);
  }

  #freeIfname(mine: readonly EndpointRecord[]): string {
    for (let i = 0; ; i++) if (!mine.some((e) => e.ifname === `eth${i}`)) return `eth${i}`;
  }

  #publishEndpoint(state: NetworkState, containerId: string, network?: string): EndpointRecord {
    const mine = state.endpoints.filter((e) => e.containerId === containerId);
    if (network !== undefined) {
      const wanted = this.#resolve(state, network);
      const e = mine.find((x) => x.networkId === wanted.id);
      if (!e) throw networkError(`container ${containerId} is not connected to network ${wanted.name}`, 'FailedPrecondition', NetworkErrorCode.NotConnected);
      return e;
    }
    const e = mine.find((x) => !state.networks.find((n) => n.id === x.networkId)?.internal);
    if (!e) {
      throw networkError(
        `container ${containerId} has no non-internal bridge network to publish ports on`,
        'FailedPrecondition',
        NetworkErrorCode.NotConnected,
      );
    }
    return e;
  }

  /** The host port for a spec: exact, the first free one of a range, or a free ephemeral one. */
  async #chooseHostPort(state: NetworkState, pending: readonly PortRecord[], spec: PortSpec): Promise<number> {
    const hostIp = spec.hostIp || anyHostIp;
    if (spec.protocol !== 'tcp' && spec.protocol !== 'udp') throw invalidOption(`invalid protocol ${JSON.stringify(spec.protocol)}`);
    if (!Number.isInteger(spec.containerPort) || spec.containerPort < 1 || spec.containerPort > 65535) {
      throw invalidOption(`invalid container port ${spec.containerPort}`);
    }
    if (hostIp !== anyHostIp) parseIpv4(hostIp, 'host IP');
    const taken = (port: number) =>
      [...state.ports, ...pending].find(
        (p) => p.protocol === spec.protocol && p.hostPort === port && (p.hostIp === hostIp || p.hostIp === anyHostIp || hostIp === anyHostIp),
      );
    if (spec.hostPortStart !== undefined && spec.hostPortStart === (spec.hostPortEnd ?? spec.hostPortStart)) {
      const owner = taken(spec.hostPortStart);
      if (owner) {
        throw networkError(
          `host port ${spec.hostPortStart}/${spec.protocol} on ${hostIp} is already published by container ${owner.containerId.slice(0, 12)}`,
          'Conflict',
          NetworkErrorCode.PortInUse,
        );
      }
      return spec.hostPortStart;
    }
    if (spec.hostPortStart !== undefined && spec.hostPortEnd !== undefined) {
      for (let port = spec.hostPortStart; port <= spec.hostPortEnd; port++) {
        if (!taken(port) && (await probePort(spec.protocol, hostIp, port)) === port) return port;
      }
      throw networkError(
        `no free host port in ${spec.hostPortStart}-${spec.hostPortEnd}/${spec.protocol} on ${hostIp}`,
        'Conflict',
        NetworkErrorCode.PortInUse,
      );
    }
    for (let attempt = 0; attempt < 16; attempt++) {
      const port = await probePort(spec.protocol, hostIp, 0);
      if (port !== undefined && !taken(port)) return port;
    }
    throw networkError(`no free ephemeral host port for ${spec.protocol} on ${hostIp}`, 'Unavailable', NetworkErrorCode.PortInUse);
  }

  #published(state: NetworkState, p: PortRecord): PublishedPort {
    const networkId = state.endpoints.find((e) => e.id === p.endpointId)?.networkId ?? '';
    return {
      protocol: p.protocol,
      containerPort: p.containerPort,
      hostIp: p.hostIp,
      hostPort: p.hostPort,
      containerId: p.containerId,
      containerIp: p.containerIp,
      networkId,
    };
  }

  #info(state: NetworkState, n: NetworkRecord): NetworkInfo {
    const containers = state.endpoints
      .filter((e) => e.networkId === n.id)
      .map((e) => ({
        containerId: e.containerId,
        name: e.containerName,
        endpointId: e.id,
        macAddress: e.macAddress,
        ipv4Address: `${e.address}/${e.prefixLength}`,
      }));
    return {
      id: n.id,
      name: n.name,
      driver: n.driver,
      scope: 'local',
      created: n.created,
      internal: n.internal,
      attachable: n.attachable,
      predefined: n.predefined,
      isDefault: n.isDefault,
      ...(n.bridge
        ? {
            ipam: { subnet: n.bridge.subnet, gateway: n.bridge.gateway, ...(n.bridge.ipRange ? { ipRange: n.bridge.ipRange } : {}) },
            bridgeName: n.bridge.name,
            mtu: n.bridge.mtu,
          }
        : {}),
      labels: n.labels,
      options: n.options,
      containers,
    };
  }

  #endpointInfo(state: NetworkState, e: EndpointRecord): EndpointInfo {
    const n = state.networks.find((x) => x.id === e.networkId);
    return {
      id: e.id,
      networkId: e.networkId,
      networkName: n?.name ?? '',
      containerId: e.containerId,
      containerName: e.containerName,
      aliases: e.aliases,
      dnsNames: n && !n.isDefault ? [e.containerName, ...e.aliases, e.containerId.slice(0, 12)].filter(Boolean) : [],
      ifname: e.ifname,
      hostVeth: e.hostVeth,
      ipAddress: e.address,
      ...(e.staticAddress ? { requestedAddress: e.address } : {}),
      prefixLength: e.prefixLength,
      gateway: n?.internal ? '' : (n?.bridge?.gateway ?? ''),
      macAddress: e.macAddress,
      defaultRoute: e.defaultRoute,
      sandboxKey: e.netnsPath,
    };
  }

  async #hostResolvConf(): Promise<string> {
    try {
      return readFileSync(this.#hostResolvConfPath, 'utf8');
    } catch (err) {
      this.#logger.warn('cannot read the host resolv.conf', { path: this.#hostResolvConfPath, err });
      return '';
    }
  }

  #refreshUpstreams(state: NetworkState, hostResolv: string): void {
    state.upstreamDns = parseResolvConf(hostResolv).nameservers.filter((n) => isIpv4(n) || n.includes(':'));
  }

  /** Makes the helper serve `state` (already written): started when there is work, stopped when not. */
  async #syncHelper(state: NetworkState, signal?: AbortSignal): Promise<ReloadReply | undefined> {
    const plan = helperPlan(state);
    if (plan.proxies.length === 0 && plan.zones.length === 0) {
      await this.#helper.reloadIfRunning(signal);
      return undefined;
    }
    const reply = await this.#helper.reload(signal);
    for (const f of reply.dnsFailures) this.#logger.warn('embedded DNS cannot listen', { gateway: f.gateway, code: f.code });
    return reply;
  }

  async #enableForwarding(firewall: Firewall): Promise<void> {
    if (firewall.backend === 'none') return;
    const path = '/proc/sys/net/ipv4/ip_forward';
    const value = (await readFile(path, 'utf8').catch(() => '')).trim();
    if (value !== '0') return;
    try {
      await writeFile(path, '1\n');
      this.#logger.info('enabled IPv4 forwarding (net.ipv4.ip_forward=1)');
    } catch (err) {
      // Docker goes on too: containers then reach each other and the host, but nothing beyond.
      this.#logger.warn('IPv4 forwarding is disabled and cannot be enabled: containers have no outbound network', { err });
    }
  }

  async #removeRulesOf(backend: string, signal?: AbortSignal): Promise<void> {
    try {
      const old = await detectFirewall({ preference: backend as FirewallPreference, tag: this.ruleTag, logger: this.#logger, signal });
      await old.remove(signal);
    } catch (err) {
      this.#logger.warn('cannot remove rules of the previous firewall backend', { backend, err });
    }
  }
}

/**
 * Binds and releases `port` (0 for an ephemeral one) to see whether it is free; returns the port
 * bound, or undefined when it is taken. The helper binds it for good right after, under the lock.
 */
async function probePort(protocol: PortProtocol, hostIp: string, port: number): Promise<number | undefined> {
  try {
    if (protocol === 'udp') {
      const socket = createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ address: hostIp, port }, () => resolve());
      });
      const bound = socket.address().port;
      await new Promise<void>((resolve) => socket.close(() => resolve()));
      return bound;
    }
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: hostIp, port }, () => resolve());
    });
    const address = server.address();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return typeof address === 'object' && address ? address.port : undefined;
  } catch (err) {
    if (errnoCode(err) === 'EADDRINUSE') return undefined;
    if (errnoCode(err) === 'EADDRNOTAVAIL') {
      throw networkError(`host IP ${hostIp} is not an address of this host`, 'InvalidArgument', NetworkErrorCode.InvalidAddress, err);
    }
    if (isBerthError(err)) throw err;
    throw networkError(`cannot probe host port ${port}/${protocol} on ${hostIp}`, 'Internal', NetworkErrorCode.HelperFailed, err);
  }
}
