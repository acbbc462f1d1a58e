import { availableParallelism } from 'node:os';
import type { DriverDefinition, DriverOptions } from '@berth/machine';
import { virtualBoxConfigFromFlags, virtualBoxFlags, type VirtualBoxDriverConfig } from './flags.js';
import { VirtualBoxDriver } from './virtualbox-driver.js';

/** The virtualbox driver: a local VirtualBox VM (`machine create -d virtualbox`, as docker-machine). */
export const driver: DriverDefinition = {
  name: 'virtualbox',
  aliases: [],
  description: 'a local VirtualBox VM',
  flags: virtualBoxFlags,
  create(options: DriverOptions): VirtualBoxDriver {
    const config = options.config
      ? (options.config as VirtualBoxDriverConfig)
      : virtualBoxConfigFromFlags(options.flags, options.context.machineName, availableParallelism(), process.platform);
    return new VirtualBoxDriver({ context: options.context, config });
  },
};

export { VirtualBoxDriver } from './virtualbox-driver.js';
export type { VirtualBoxDriverOptions } from './virtualbox-driver.js';
export { VBoxManage, VirtualBoxError, VirtualBoxErrorCode } from './vbox-manage.js';
export type { VBoxManageOptions } from './vbox-manage.js';
export { ensureBootImage } from './boot-image.js';
export type { BootImageOptions } from './boot-image.js';
export { makeSeedIso } from './seed-iso.js';
export type { IsoFile } from './seed-iso.js';
export { makeCloudInitSeed } from './cloud-init.js';
export type { SeedOptions } from './cloud-init.js';
export { defaultBootImage, defaultHostOnlyCidr, virtualBoxConfigFromFlags, virtualBoxFlags } from './flags.js';
export type { VirtualBoxDriverConfig } from './flags.js';
