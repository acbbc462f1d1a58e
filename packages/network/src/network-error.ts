import { BerthError, type ErrorKind } from '@berth/errors';

/** Errors of the networking library. Branch on `code` or `kind`, never on the message. */
export class NetworkError extends BerthError {}

/** The stable codes of `NetworkError`. */
export const NetworkErrorCode = {
  InvalidOptions: 'ERR_NETWORK_INVALID_OPTIONS',
  InvalidAddress: 'ERR_INVALID_ADDRESS',
  InvalidSubnet: 'ERR_INVALID_SUBNET',
  InvalidPortSpec: 'ERR_INVALID_PORT_SPEC',
  InvalidName: 'ERR_INVALID_NETWORK_NAME',
  NetworkNotFound: 'ERR_NETWORK_NOT_FOUND',
  NetworkExists: 'ERR_NETWORK_EXISTS',
  NetworkAmbiguous: 'ERR_NETWORK_AMBIGUOUS',
  NetworkInUse: 'ERR_NETWORK_IN_USE',
  NetworkPredefined: 'ERR_NETWORK_PREDEFINED',
  SubnetOverlap: 'ERR_SUBNET_OVERLAP',
  PoolExhausted: 'ERR_ADDRESS_POOL_EXHAUSTED',
  AddressInUse: 'ERR_ADDRESS_IN_USE',
  AddressExhausted: 'ERR_ADDRESS_EXHAUSTED',
  EndpointExists: 'ERR_ENDPOINT_EXISTS',
  PortInUse: 'ERR_PORT_IN_USE',
  NotConnected: 'ERR_CONTAINER_NOT_CONNECTED',
  NamespaceNotFound: 'ERR_NETNS_NOT_FOUND',
  CommandFailed: 'ERR_NETWORK_COMMAND_FAILED',
  FirewallUnavailable: 'ERR_FIREWALL_UNAVAILABLE',
  MalformedDnsMessage: 'ERR_MALFORMED_DNS_MESSAGE',
  HelperFailed: 'ERR_NETWORK_HELPER_FAILED',
  Unsupported: 'ERR_NETWORK_UNSUPPORTED',
} as const;
export type NetworkErrorCode = (typeof NetworkErrorCode)[keyof typeof NetworkErrorCode];

/** Shorthand for the many throw sites: `networkError('...', 'InvalidArgument', NetworkErrorCode.X)`. */
export function networkError(message: string, kind: ErrorKind, code: NetworkErrorCode, cause?: unknown): NetworkError {
  return new NetworkError(message, cause === undefined ? { code, kind } : { code, kind, cause });
}
