export {
  MachineState,
  isMachineState,
  unsupportedOperation,
  invalidOption,
  stringFlag,
  numberFlag,
  booleanFlag,
  stringListFlag,
  openPortsFlag,
  requiredStringFlag,
} from './driver.js';
export type {
  BooleanFlag,
  Driver,
  DriverCallOptions,
  DriverConfig,
  DriverContext,
  DriverDefinition,
  DriverEntry,
  DriverOptions,
  FlagDefinition,
  FlagValue,
  FlagValues,
  JsonObject,
  JsonValue,
  NumberFlag,
  StringFlag,
  StringListFlag,
} from './driver.js';
export { CertificateError, DriverError, DriverErrorCode, MachineError, ProvisionError, SshError } from './errors.js';
export { SshKeyPair, SshKeyType, sshFingerprint, sshKeyFileName } from './ssh-key.js';
export type { SshKeyGenerateOptions } from './ssh-key.js';
export { SshSession, waitForSsh } from './ssh-session.js';
export type { HostKeyPin, SshConnectOptions, SshExecOptions, SshExecResult, SshPty, SshTarget, WaitForSshOptions } from './ssh-session.js';
export {
  certificateCovers,
  certificateInfo,
  createCertificateAuthority,
  ensureCertificateAuthority,
  issueCertificate,
  readCertificateAuthority,
} from './certificates.js';
export type { AuthorityPaths, CertificateInfo, CertificatePair, EnsureAuthorityOptions, IssueCertificateOptions } from './certificates.js';
export { ConfigVersion, HostFiles, HostStatus, HostStore, compareHostNames, migrateConfig, validateHostName } from './host-store.js';
export type { EngineOptions, HostConfig, HostStoreOptions, ProvisionRecord } from './host-store.js';
export { DriverRegistry } from './driver-registry.js';
export type { DriverRegistryOptions } from './driver-registry.js';
export { resolveFlagValues, withPrefixAliases } from './flags.js';
export { PackageManager, distroFor, parseOsRelease } from './os-release.js';
export { shellQuote } from './package-manager.js';
export type { Distro, OsRelease } from './os-release.js';
export { EnginePaths, InitSystem, defaultEnginePort, engineServeArgs } from './engine-service.js';
export { SshProvisioner, fileSha256 } from './provisioner.js';
export { LocalBundleSource, engineBundleFileName, readBundleManifest } from './bundle-source.js';
export type { BundleManifest, LocalBundleSourceOptions } from './bundle-source.js';
export type { EngineBundle, EngineBundleSource, EngineTls, HostFacts, SshProvisionerOptions } from './provisioner.js';
export { EngineClient, waitForEngine } from './engine-client.js';
export type { EngineClientOptions, EngineInfo, EngineVersion } from './engine-client.js';
export { HostManager, ProvisionPhase } from './host-manager.js';
export type { CertificateCheck, CreateHostOptions, HostCallOptions, HostManagerOptions, HostProgress, HostSummary, LoadedHost } from './host-manager.js';
