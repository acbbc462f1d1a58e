import type { DriverDefinition, DriverOptions } from '@berth/machine';
import { gcpConfigFromFlags, gcpFlags, type GcpDriverConfig } from './flags.js';
import { GcpDriver } from './gcp-driver.js';

/** The gcp driver: hosts on Google Compute Engine (`machine create -d gcp`, or docker-machine's `-d google`). */
export const driver: DriverDefinition = {
  name: 'gcp',
  aliases: ['google'],
  description: 'Google Compute Engine instances',
  flags: gcpFlags,
  create(options: DriverOptions): GcpDriver {
    const config = options.config ? (options.config as GcpDriverConfig) : gcpConfigFromFlags(options.flags, options.context.machineName);
    return new GcpDriver({ context: options.context, config });
  },
};

export { GcpDriver } from './gcp-driver.js';
export type { GcpDriverOptions } from './gcp-driver.js';
export { GcpDriverError, GcpErrorCode } from './gcp-error.js';
export { defaultImage, defaultScopes, gcpConfigFromFlags, gcpFlags } from './flags.js';
export type { GcpDriverConfig } from './flags.js';
