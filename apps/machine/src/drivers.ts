import type { DriverEntry } from '@berth/machine';

/**
 * The drivers `machine` offers. Each entry loads its package only when a command needs that
 * driver, so `machine ls` never loads a cloud SDK. Adding a driver is adding a package and an
 * entry here.
 */
export const driverEntries: readonly DriverEntry[] = [
  { name: 'generic', load: async () => (await import('@berth/driver-generic')).driver },
];
