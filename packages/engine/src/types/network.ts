import type { Labels } from './common.js';

/** A container's endpoint on one network (`EndpointSettings`), as create asks for it and inspect reports it. */
export interface EndpointSettings {
  readonly IPAMConfig?: {
    readonly IPv4Address?: string;
    readonly IPv6Address?: string;
    readonly LinkLocalIPs?: readonly string[];
  } | null;
  readonly Links?: readonly string[] | null;
  readonly MacAddress?: string;
  /** `--network-alias`. */
  readonly Aliases?: readonly string[] | null;
  readonly DriverOpts?: Labels | null;
  readonly GwPriority?: number;
  readonly NetworkID?: string;
  readonly EndpointID?: string;
  readonly Gateway?: string;
  readonly IPAddress?: string;
  readonly IPPrefixLen?: number;
  readonly IPv6Gateway?: string;
  readonly GlobalIPv6Address?: string;
  readonly GlobalIPv6PrefixLen?: number;
  /** Names the container answers to on this network (its name, aliases, short ID). */
  readonly DNSNames?: readonly string[] | null;
}

/** One address pool of a network (`IPAMConfig`). */
export interface IpamConfig {
  readonly Subnet?: string;
  readonly IPRange?: string;
  readonly Gateway?: string;
  readonly AuxiliaryAddresses?: Labels;
}

/** A network's address management (`IPAM`). */
export interface Ipam {
  readonly Driver?: string;
  readonly Config?: readonly IpamConfig[] | null;
  readonly Options?: Labels | null;
}

/** A container on a network, as network inspect lists it. */
export interface NetworkContainer {
  readonly Name: string;
  readonly EndpointID: string;
  readonly MacAddress: string;
  /** CIDR form, `172.18.0.2/16`. */
  readonly IPv4Address: string;
  readonly IPv6Address: string;
}

/** A network (`Network`, the `NetworkInspect` shape). */
export interface Network {
  readonly Name: string;
  readonly Id: string;
  /** RFC 3339. */
  readonly Created: string;
  readonly Scope: 'local' | 'swarm' | 'global';
  /** `bridge`, `host` or `null`. */
  readonly Driver: string;
  readonly EnableIPv4: boolean;
  readonly EnableIPv6: boolean;
  readonly IPAM: Ipam;
  readonly Internal: boolean;
  readonly Attachable: boolean;
  readonly Ingress: boolean;
  readonly ConfigFrom: { readonly Network: string };
  readonly ConfigOnly: boolean;
  /** Filled by inspect; list leaves it empty as docker does. */
  readonly Containers: Readonly<Record<string, NetworkContainer>>;
  readonly Options: Labels;
  readonly Labels: Labels;
}

/** The body of `POST /networks/create`. */
export interface NetworkCreateRequest {
  readonly Name: string;
  readonly Driver?: string;
  readonly Scope?: string;
  readonly Internal?: boolean;
  readonly Attachable?: boolean;
  readonly Ingress?: boolean;
  readonly ConfigOnly?: boolean;
  readonly EnableIPv4?: boolean;
  readonly EnableIPv6?: boolean;
  readonly IPAM?: Ipam;
  readonly Options?: Labels;
  readonly Labels?: Labels;
  /** Refuse a name already taken (always true since API 1.44). */
  readonly CheckDuplicate?: boolean;
}

/** `{Id, Warning}`. */
export interface NetworkCreateResponse {
  readonly Id: string;
  readonly Warning: string;
}

/** The body of `POST /networks/{id}/connect`. */
export interface NetworkConnectRequest {
  readonly Container: string;
  readonly EndpointConfig?: EndpointSettings;
}

/** The body of `POST /networks/{id}/disconnect`. */
export interface NetworkDisconnectRequest {
  readonly Container: string;
  readonly Force?: boolean;
}

/** `{NetworksDeleted}`. */
export interface NetworkPruneResponse {
  readonly NetworksDeleted: readonly string[] | null;
}
