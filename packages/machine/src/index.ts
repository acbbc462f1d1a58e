export {
  MachineState,
  isMachineState,
  unsupportedOperation,
  stringFlag,
  numberFlag,
  booleanFlag,
  stringListFlag,
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
