import { ErrorKind } from '@berth/errors';
import type { DriverDefinition, DriverEntry } from './driver.js';
import { MachineError } from './errors.js';

/** Options of `DriverRegistry`. */
export interface DriverRegistryOptions {
  readonly entries: readonly DriverEntry[];
}

/**
 * The drivers an app offers, by name and alias. Entries load their package lazily, so a
 * command pays only for the drivers it uses. Adding a driver is adding a package and an entry.
 */
export class DriverRegistry {
  readonly entries: readonly DriverEntry[];
  readonly #byName = new Map<string, DriverEntry>();
  readonly #loaded = new Map<string, Promise<DriverDefinition>>();

  constructor(options: DriverRegistryOptions) {
    for (const entry of options.entries) {
      for (const name of [entry.name, ...(entry.aliases ?? [])]) {
        if (this.#byName.has(name)) {
          throw new MachineError(`driver name ${JSON.stringify(name)} is registered twice`, { code: 'ERR_DRIVER_REGISTRY', kind: ErrorKind.InvalidArgument });
        }
        this.#byName.set(name, entry);
      }
    }
    this.entries = [...options.entries];
  }

  /** The entry for a driver name or alias, or undefined. */
  find(name: string): DriverEntry | undefined {
    return this.#byName.get(name);
  }

  /** Loads the driver named `name` (or one of its aliases). */
  async load(name: string): Promise<DriverDefinition> {
    const entry = this.#byName.get(name);
    if (!entry) {
      const known = this.entries.map((e) => e.name).join(', ');
      throw new MachineError(`driver ${JSON.stringify(name)} not found (available: ${known})`, { code: 'ERR_DRIVER_NOT_FOUND', kind: ErrorKind.NotFound });
    }
    let loading = this.#loaded.get(entry.name);
    if (!loading) {
      loading = entry.load().then((definition) => {
        if (definition.name !== entry.name) {
          throw new MachineError(`the package of driver ${entry.name} defines driver ${definition.name}`, { code: 'ERR_DRIVER_REGISTRY', kind: ErrorKind.Internal });
        }
        return definition;
      });
      this.#loaded.set(entry.name, loading);
    }
    return loading;
  }
}
