import type { PortProtocol } from './port-spec.js';

/** Which packet filter a Firewall drives. */
export const FirewallBackend = {
  IptablesNft: 'iptables-nft',
  IptablesLegacy: 'iptables-legacy',
  Nftables: 'nftables',
  None: 'none',
} as const;
export type FirewallBackend = (typeof FirewallBackend)[keyof typeof FirewallBackend];

/** The choice a user makes: a backend, `iptables` (whichever variant `iptables` is) or `auto`. */
export type FirewallPreference = 'auto' | 'iptables' | FirewallBackend;

/** A bridge network as the firewall sees it. */
export interface FirewallNetwork {
  readonly bridge: string;
  readonly subnet: string;
  /** No route out: no masquerade, no forwarding in or out of the bridge. */
  readonly internal: boolean;
}

/** A published port as the firewall sees it: DNAT from the host to the container. */
export interface FirewallPort {
  readonly protocol: PortProtocol;
  /** `0.0.0.0` for every host address. */
  readonly hostIp: string;
  readonly hostPort: number;
  readonly containerIp: string;
  readonly containerPort: number;
  /** The bridge the container sits on; traffic coming from it goes through the proxy instead. */
  readonly bridge: string;
}

/** The whole desired state of one owner's rules. */
export interface FirewallRuleset {
  readonly networks: readonly FirewallNetwork[];
  readonly ports: readonly FirewallPort[];
}

/**
 * The packet-filter rules of one owner (a rule tag). `apply` replaces the owner's rules with the
 * given desired state in one transaction, so a crash never leaves half a change and recovery is
 * just another `apply`. Every rule carries the comment `berth:<tag>`; `list` shows them and
 * `remove` deletes them all, leaving other owners' rules alone.
 *
 * Policy, per bridge: masquerade what leaves for other interfaces; accept replies; accept
 * DNATed traffic to a published port (from anywhere, other bridges included); accept traffic
 * inside the bridge; drop traffic between Berth bridges (docker's isolation); accept new traffic
 * out of a non-internal bridge; drop any other new traffic into a bridge, so container addresses
 * are not reachable by routing; an internal bridge forwards nothing in or out. Published ports are DNATed for traffic to a
 * local address, except from loopback (served by the userland proxy) and from the container's
 * own bridge (hairpin, also served by the proxy).
 */
export interface Firewall {
  readonly backend: FirewallBackend;
  readonly tag: string;
  apply(ruleset: FirewallRuleset, signal?: AbortSignal): Promise<void>;
  remove(signal?: AbortSignal): Promise<void>;
  list(signal?: AbortSignal): Promise<string[]>;
}

/** The comment every rule of `tag` carries. */
export function ruleComment(tag: string): string {
  return `berth:${tag}`;
}

/** A Firewall for hosts without a usable packet filter: no NAT, published ports via the proxy only. */
export class NoFirewall implements Firewall {
  readonly backend = FirewallBackend.None;
  readonly tag: string;
  constructor(options: { readonly tag: string }) {
    this.tag = options.tag;
  }
  async apply(): Promise<void> {}
  async remove(): Promise<void> {}
  async list(): Promise<string[]> {
    return [];
  }
}
