import { isIpv4 } from './ipv4.js';
import { NetworkErrorCode, networkError } from './network-error.js';

/** The transport protocols a port can be published for. */
export const PortProtocol = { Tcp: 'tcp', Udp: 'udp' } as const;
export type PortProtocol = (typeof PortProtocol)[keyof typeof PortProtocol];

/** The host address that means "every IPv4 address of the host", as docker shows it. */
export const anyHostIp = '0.0.0.0';

/**
 * One requested publication, as `-p` describes it. The host port is exact when `hostPortStart`
 * equals `hostPortEnd`, one free port of the range when they differ, and a free ephemeral port
 * when both are absent.
 */
export interface PortSpec {
  readonly protocol: PortProtocol;
  readonly containerPort: number;
  /** `0.0.0.0` for every address of the host, or one IPv4 address of it. */
  readonly hostIp: string;
  readonly hostPortStart?: number;
  readonly hostPortEnd?: number;
}

/** A publication in force: traffic to hostIp:hostPort goes to the container's port. */
export interface PortMapping {
  readonly protocol: PortProtocol;
  readonly containerPort: number;
  readonly hostIp: string;
  readonly hostPort: number;
}

function invalid(spec: string, why: string): never {
  throw networkError(`invalid port specification ${JSON.stringify(spec)}: ${why}`, 'InvalidArgument', NetworkErrorCode.InvalidPortSpec);
}

function parseRange(spec: string, text: string, what: string, allowZero: boolean): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) invalid(spec, `${what} ${JSON.stringify(text)} is not a port or a range such as 8000-8010`);
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  // Host port 0 alone means "any free port", as in docker.
  const min = allowZero && m[2] === undefined ? 0 : 1;
  if (start < min || start > 65535 || end < min || end > 65535) invalid(spec, `${what} ${text} is outside 1-65535`);
  if (end < start) invalid(spec, `${what} range ${text} ends before it starts`);
  return [start, end];
}

function parseProtocol(spec: string, text: string): PortProtocol {
  const lower = text.toLowerCase();
  if (lower === PortProtocol.Tcp || lower === PortProtocol.Udp) return lower;
  if (lower === 'sctp') {
    throw networkError(`invalid port specification ${JSON.stringify(spec)}: sctp is not supported, only tcp and udp`, 'NotImplemented', NetworkErrorCode.Unsupported);
  }
  return invalid(spec, `unknown protocol ${JSON.stringify(text)} (want tcp or udp)`);
}

/**
 * Parses docker's `-p` syntax, `[hostIp:][hostPort:]containerPort[/tcp|udp]`, where both ports may
 * be ranges: `8080:80`, `127.0.0.1::80`, `8080-8081:80-81/udp`, `8000-8010:80` (one free port of
 * the range), `80` (a free ephemeral port). A container range gives one spec per port.
 */
export function parsePublish(spec: string): PortSpec[] {
  const trimmed = spec.trim();
  if (trimmed.startsWith('[')) {
    throw networkError(`invalid port specification ${JSON.stringify(spec)}: IPv6 host addresses are not supported`, 'NotImplemented', NetworkErrorCode.Unsupported);
  }
  const slash = trimmed.lastIndexOf('/');
  const protocol = slash >= 0 ? parseProtocol(spec, trimmed.slice(slash + 1)) : PortProtocol.Tcp;
  const parts = (slash >= 0 ? trimmed.slice(0, slash) : trimmed).split(':');
  if (parts.length > 3) invalid(spec, 'too many colons (IPv6 host addresses are not supported)');
  const [hostIpText, hostPortText, containerText] =
    parts.length === 3 ? parts : parts.length === 2 ? ['', parts[0]!, parts[1]!] : ['', '', parts[0]!];
  if (!containerText) invalid(spec, 'no container port');
  if (hostIpText && !isIpv4(hostIpText!)) invalid(spec, `host address ${JSON.stringify(hostIpText)} is not an IPv4 address`);
  const hostIp = hostIpText || anyHostIp;
  const [cStart, cEnd] = parseRange(spec, containerText!, 'container port', false);
  const count = cEnd - cStart + 1;
  if (!hostPortText) {
    return Array.from({ length: count }, (_, i) => ({ protocol, containerPort: cStart + i, hostIp }));
  }
  const [hStart, hEnd] = parseRange(spec, hostPortText, 'host port', true);
  if (hStart === 0) return Array.from({ length: count }, (_, i) => ({ protocol, containerPort: cStart + i, hostIp }));
  if (count === 1) return [{ protocol, containerPort: cStart, hostIp, hostPortStart: hStart, hostPortEnd: hEnd }];
  if (hEnd - hStart + 1 !== count) invalid(spec, `host range ${hostPortText} and container range ${containerText} differ in length`);
  return Array.from({ length: count }, (_, i) => ({
    protocol,
    containerPort: cStart + i,
    hostIp,
    hostPortStart: hStart + i,
    hostPortEnd: hStart + i,
  }));
}

/**
 * The specs of `-P`: every exposed port (`80/tcp`, `53/udp`, `8000-8001`, as an image's
 * ExposedPorts or `--expose` give them) on a free ephemeral port of every host address.
 */
export function exposedPortSpecs(exposed: Iterable<string>): PortSpec[] {
  const specs: PortSpec[] = [];
  for (const entry of exposed) {
    const slash = entry.lastIndexOf('/');
    const protocol = slash >= 0 ? parseProtocol(entry, entry.slice(slash + 1)) : PortProtocol.Tcp;
    const [start, end] = parseRange(entry, slash >= 0 ? entry.slice(0, slash) : entry, 'exposed port', false);
    for (let port = start; port <= end; port++) specs.push({ protocol, containerPort: port, hostIp: anyHostIp });
  }
  return specs;
}

/** The line `engine port` prints for a mapping, as docker does: `80/tcp -> 0.0.0.0:8080`. */
export function formatPortMapping(mapping: PortMapping): string {
  return `${mapping.containerPort}/${mapping.protocol} -> ${mapping.hostIp}:${mapping.hostPort}`;
}
