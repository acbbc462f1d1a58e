import { BerthError, type BerthErrorOptions } from '@berth/errors';

/** Errors of the host store, the host lifecycle and the CLI's machine operations. */
export class MachineError extends BerthError {
  constructor(message: string, options: BerthErrorOptions) {
    super(message, options);
  }
}

/**
 * Errors a driver throws. Drivers wrap their SDK's or tool's failures in it, with a code of
 * their own (`ERR_AWS_...`) or one of `DriverErrorCode`.
 */
export class DriverError extends BerthError {
  constructor(message: string, options: BerthErrorOptions) {
    super(message, options);
  }
}

/** Codes shared by every driver, so that the CLI can branch on them whatever the driver. */
export const DriverErrorCode = {
  /** The driver cannot do this operation (generic cannot stop a host). */
  Unsupported: 'ERR_DRIVER_UNSUPPORTED',
  /** A flag or saved config value is missing or malformed. */
  InvalidOption: 'ERR_DRIVER_INVALID_OPTION',
  /** The driver's host (VM, instance) no longer exists. */
  HostGone: 'ERR_DRIVER_HOST_GONE',
  /** The host did not reach the expected state in time. */
  StateTimeout: 'ERR_DRIVER_STATE_TIMEOUT',
} as const;
export type DriverErrorCode = (typeof DriverErrorCode)[keyof typeof DriverErrorCode];

/** Failures talking SSH to a host: connect, authenticate, host key, exec, SFTP. */
export class SshError extends BerthError {
  constructor(message: string, options: BerthErrorOptions) {
    super(message, options);
  }
}

/** Failures while provisioning: OS detection, package install, engine upload, service start. */
export class ProvisionError extends BerthError {
  constructor(message: string, options: BerthErrorOptions) {
    super(message, options);
  }
}

/** Failures making, reading or checking TLS certificates. */
export class CertificateError extends BerthError {
  constructor(message: string, options: BerthErrorOptions) {
    super(message, options);
  }
}
