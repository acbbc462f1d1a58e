import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readJsonFile, withFileLock, writeJsonAtomic } from '@berth/fsutil';
import type { PortMapping } from './port-spec.js';

/** The drivers of Berth networks: a Linux bridge, the host's namespace, or no network at all. */
export const NetworkDriver = { Bridge: 'bridge', Host: 'host', Null: 'null' } as const;
export type NetworkDriver = (typeof NetworkDriver)[keyof typeof NetworkDriver];

/** The bridge of a bridge network and its IPv4 addressing. */
export interface BridgeConfig {
  /** The Linux interface name (`berth0`, `br-<id>`). */
  readonly name: string;
  readonly subnet: string;
  readonly gateway: string;
  /** Addresses are handed out from this part of the subnet only (`--ip-range`). */
  readonly ipRange?: string;
  readonly mtu: number;
}

/** A network as stored. The predefined `bridge`, `host` and `none` networks are records too. */
export interface NetworkRecord {
  readonly id: string;
  readonly name: string;
  readonly driver: NetworkDriver;
  /** RFC 3339. */
  readonly created: string;
  readonly internal: boolean;
  readonly attachable: boolean;
  /** `bridge`, `host` and `none`: cannot be removed. */
  readonly predefined: boolean;
  /** Only the default bridge: no embedded DNS, no aliases, no `--ip` (as in docker). */
  readonly isDefault: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly options: Readonly<Record<string, string>>;
  readonly bridge?: BridgeConfig;
}

/** A container's attachment to a bridge network. */
export interface EndpointRecord {
  readonly id: string;
  readonly networkId: string;
  readonly containerId: string;
  readonly containerName: string;
  readonly aliases: readonly string[];
  /** The interface name inside the container (`eth0`, `eth1`, ...). */
  readonly ifname: string;
  /** The host end of the veth pair, a port of the network's bridge. */
  readonly hostVeth: string;
  readonly address: string;
  /** True when the address was asked for (`--ip`), which docker shows as IPAMConfig. */
  readonly staticAddress: boolean;
  readonly prefixLength: number;
  readonly macAddress: string;
  /** True when the container's default route goes through this endpoint's gateway. */
  readonly defaultRoute: boolean;
  /** The container's network namespace, and its nsfs identity (`dev:ino`) to tell a reused path. */
  readonly netnsPath: string;
  readonly netnsId: string;
  readonly created: string;
}

/** A published port as stored, with where it leads. */
export interface PortRecord extends PortMapping {
  readonly containerId: string;
  readonly endpointId: string;
  readonly containerIp: string;
}

/** Everything the library persists under its state directory, in one file. */
export interface NetworkState {
  readonly version: 1;
  /** The firewall backend the current rules were written with, so that they can be removed with it. */
  firewallBackend?: string;
  networks: NetworkRecord[];
  endpoints: EndpointRecord[];
  ports: PortRecord[];
  /** Per network id, the last address handed out: allocation moves on from it before reusing any. */
  ipamCursor: Record<string, string>;
  /** The resolvers the embedded DNS server forwards to (the host's, loopback ones included). */
  upstreamDns: string[];
}

function emptyState(): NetworkState {
  return { version: 1, networks: [], endpoints: [], ports: [], ipamCursor: {}, upstreamDns: [] };
}

/** The file names inside a state directory, shared by the manager and the helper process. */
export const stateFiles = {
  state: 'network.json',
  lock: 'network.lock',
  helperSocket: 'helper.sock',
  helperLock: 'helper.lock',
  helperLog: 'helper.log',
  helperPid: 'helper.pid',
} as const;

/** Reads the state file without a lock: writers replace it atomically, so a reader sees a whole version. */
export async function readNetworkState(stateDir: string): Promise<NetworkState> {
  return (await readJsonFile<NetworkState>(join(stateDir, stateFiles.state))) ?? emptyState();
}

/**
 * Runs `fn` on the state under the state directory's lock, and writes the state back when `fn`
 * returns normally, so that several processes never hand out one address or port twice. `fn`
 * may call `commit` to write the state early, when another process (the helper) must see it
 * before `fn` goes on.
 */
export async function updateNetworkState<T>(
  stateDir: string,
  fn: (state: NetworkState, commit: () => Promise<void>) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  return withFileLock(
    join(stateDir, stateFiles.lock),
    async () => {
      const state = await readNetworkState(stateDir);
      let written = JSON.stringify(state);
      const commit = async () => {
        const now = JSON.stringify(state);
        if (now === written) return;
        await writeJsonAtomic(join(stateDir, stateFiles.state), state);
        written = now;
      };
      const result = await fn(state, commit);
      await commit();
      return result;
    },
    signal ? { signal } : {},
  );
}
