import type { DriverDefinition, DriverOptions } from '@berth/machine';
import { AzureDriver } from './azure-driver.js';
import { azureConfigFromFlags, azureFlags, type AzureDriverConfig } from './flags.js';

/** The azure driver: hosts on Azure virtual machines (`machine create -d azure`, as docker-machine). */
export const driver: DriverDefinition = {
  name: 'azure',
  aliases: [],
  description: 'Microsoft Azure virtual machines',
  flags: azureFlags,
  create(options: DriverOptions): AzureDriver {
    const config = options.config ? (options.config as AzureDriverConfig) : azureConfigFromFlags(options.flags, options.context.machineName);
    return new AzureDriver({ context: options.context, config });
  },
};

export { AzureDriver } from './azure-driver.js';
export type { AzureDriverOptions } from './azure-driver.js';
export { AzureDriverError, AzureErrorCode } from './azure-error.js';
export { azureConfigFromFlags, azureEnvironments, azureFlags, defaultImage } from './flags.js';
export type { AzureDriverConfig } from './flags.js';
