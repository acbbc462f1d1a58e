export { NetworkError, NetworkErrorCode } from './network-error.js';
export {
  NetworkManager,
  defaultAddressPools,
} from './network-manager.js';
export type {
  AddressPool,
  ConnectOptions,
  ContainerFilePaths,
  ContainerFiles,
  ContainerFilesOptions,
  CreateNetworkOptions,
  EndpointInfo,
  InitOptions,
  NetworkContainer,
  NetworkInfo,
  NetworkManagerOptions,
  NetworkMode,
  PublishOptions,
  PublishedPort,
  RecoveryReport,
} from './network-manager.js';
export { NetworkDriver } from './network-state.js';
export { PortProtocol, anyHostIp, exposedPortSpecs, formatPortMapping, parsePublish } from './port-spec.js';
export type { PortMapping, PortSpec } from './port-spec.js';
export {
  fallbackNameservers,
  parseExtraHost,
  parseResolvConf,
  renderHostnameFile,
  renderHostsFile,
  renderResolvConf,
} from './container-files.js';
export type { ExtraHost, HostsFileOptions, ResolvConf, ResolvConfOptions } from './container-files.js';
export { FirewallBackend } from './firewall.js';
export type { Firewall, FirewallNetwork, FirewallPort, FirewallPreference, FirewallRuleset } from './firewall.js';
export { detectFirewall } from './detect-firewall.js';
export type { DetectFirewallOptions } from './detect-firewall.js';
export { runNetworkHelper } from './network-helper.js';
export type { NetworkHelperOptions } from './network-helper.js';
