import { NetworkErrorCode, networkError } from './network-error.js';

/** An IPv4 subnet: the network address as an unsigned 32-bit number and the prefix length. */
export interface Ipv4Subnet {
  readonly network: number;
  readonly prefix: number;
}

/** The unsigned 32-bit value of a dotted-quad IPv4 address; throws InvalidArgument otherwise. */
export function parseIpv4(text: string, what = 'IPv4 address'): number {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255)) {
    throw networkError(`invalid ${what} ${JSON.stringify(text)}: want a dotted quad such as 10.0.0.1`, 'InvalidArgument', NetworkErrorCode.InvalidAddress);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** True when `text` is a dotted-quad IPv4 address. */
export function isIpv4(text: string): boolean {
  try {
    parseIpv4(text);
    return true;
  } catch {
    return false;
  }
}

/** The dotted-quad text of an unsigned 32-bit IPv4 address. */
export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * A subnet in CIDR notation. Host bits are cleared (`10.1.2.3/24` is `10.1.2.0/24`), as `ip route`
 * does, so the stored form is always canonical.
 */
export function parseSubnet(text: string, what = 'subnet'): Ipv4Subnet {
  const slash = text.indexOf('/');
  const prefixText = text.slice(slash + 1);
  if (slash < 0 || !/^\d{1,2}$/.test(prefixText) || Number(prefixText) > 32) {
    throw networkError(`invalid ${what} ${JSON.stringify(text)}: want CIDR notation such as 10.10.0.0/24`, 'InvalidArgument', NetworkErrorCode.InvalidSubnet);
  }
  const prefix = Number(prefixText);
  const address = parseIpv4(text.slice(0, slash), what);
  return { network: (address & maskOf(prefix)) >>> 0, prefix };
}

/** `10.1.2.0/24`. */
export function formatSubnet(subnet: Ipv4Subnet): string {
  return `${formatIpv4(subnet.network)}/${subnet.prefix}`;
}

/** The number of addresses in the subnet, network and broadcast included. */
export function subnetSize(subnet: Ipv4Subnet): number {
  return 2 ** (32 - subnet.prefix);
}

/** The broadcast (last) address of the subnet. */
export function broadcastOf(subnet: Ipv4Subnet): number {
  return subnet.network + subnetSize(subnet) - 1;
}

/** True when `address` lies inside `subnet`. */
export function subnetContains(subnet: Ipv4Subnet, address: number): boolean {
  return ((address & maskOf(subnet.prefix)) >>> 0) === subnet.network;
}

/** True when two subnets share any address. */
export function subnetsOverlap(a: Ipv4Subnet, b: Ipv4Subnet): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  return ((a.network & maskOf(prefix)) >>> 0) === ((b.network & maskOf(prefix)) >>> 0);
}

/** The `count`-th subnet of length `prefix` inside `pool`, or undefined past its end. */
export function nthSubnet(pool: Ipv4Subnet, prefix: number, index: number): Ipv4Subnet | undefined {
  if (prefix < pool.prefix) return undefined;
  if (index >= 2 ** (prefix - pool.prefix)) return undefined;
  return { network: pool.network + index * 2 ** (32 - prefix), prefix };
}

/** True for 127.0.0.0/8. */
export function isLoopbackIpv4(address: number): boolean {
  return address >>> 24 === 127;
}
