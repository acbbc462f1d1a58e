import { randomBytes } from 'node:crypto';
import { numberFlag, type DriverDefinition, type DriverOptions } from '@berth/machine';
import { AwsDriver } from './aws-driver.js';
import { awsConfigFromFlags, awsFlags, type AwsDriverConfig } from './flags.js';

/** The aws driver: hosts on Amazon EC2 (`machine create -d aws`, or docker-machine's `-d amazonec2`). */
export const driver: DriverDefinition = {
  name: 'aws',
  aliases: ['amazonec2'],
  description: 'Amazon EC2 instances',
  flags: awsFlags,
  create(options: DriverOptions): AwsDriver {
    if (options.config) return new AwsDriver({ context: options.context, config: options.config as AwsDriverConfig });
    if (numberFlag(options.flags, 'aws-block-duration-minutes') !== undefined) {
      options.context.logger.warn('--aws-block-duration-minutes is ignored: AWS no longer offers spot blocks');
    }
    const config = awsConfigFromFlags(options.flags, options.context.machineName, randomBytes(4).toString('hex'));
    return new AwsDriver({ context: options.context, config });
  },
};

export { AwsDriver } from './aws-driver.js';
export type { AwsDriverOptions } from './aws-driver.js';
export { AwsDriverError, AwsErrorCode } from './aws-error.js';
export { awsFlags, awsConfigFromFlags, defaultAmiNamePattern, defaultInstanceType } from './flags.js';
export type { AwsDriverConfig } from './flags.js';
