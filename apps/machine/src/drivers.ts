import type { DriverEntry } from '@berth/machine';

/**
 * The drivers `machine` offers. Each entry loads its package only when a command needs that
 * driver, so `machine ls` never loads a cloud SDK. Adding a driver is adding a package and an
 * entry here.
 */
export const driverEntries: readonly DriverEntry[] = [
  { name: 'generic', load: async () => (await import('@berth/driver-generic')).driver },
  { name: 'virtualbox', load: async () => (await import('@berth/driver-virtualbox')).driver },
  { name: 'aws', aliases: ['amazonec2'], load: async () => (await import('@berth/driver-aws')).driver },
  { name: 'gcp', aliases: ['google'], load: async () => (await import('@berth/driver-gcp')).driver },
  { name: 'azure', load: async () => (await import('@berth/driver-azure')).driver },
];
