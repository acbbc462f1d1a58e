import type { Argv } from 'yargs';
import { ErrorKind } from '@berth/errors';
import { MachineError } from '@berth/machine';
import type { App } from '../app.js';

/** `machine rm [-f] [-y] NAME...`: removes hosts (in parallel) after one confirmation. */
export function rmCommand(app: () => App) {
  return {
    command: 'rm <name..>',
    describe: 'Remove hosts: their resources, what provisioning installed, and the store entry',
    builder: (y: Argv) =>
      y
        .positional('name', { type: 'string', array: true })
        .option('force', { alias: 'f', type: 'boolean', describe: 'remove the store entry even when removing the host fails; implies -y' })
        .option('y', { type: 'boolean', describe: 'do not ask for confirmation' }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      const names = argv.name as string[];
      const force = argv.force === true;
      for (const name of names) {
        if (!(await a.store.exists(name))) throw new MachineError(`host ${JSON.stringify(name)} does not exist`, { code: 'ERR_HOST_NOT_FOUND', kind: ErrorKind.NotFound });
      }
      if (!force && argv.y !== true) {
        a.note(`About to remove ${names.join(', ')}`);
        a.note('WARNING: This removes both the local reference and the remote host (a generic host is kept, with the engine uninstalled).');
        if (!(await a.confirm('Are you sure?'))) {
          throw new MachineError('removal canceled', { code: 'ERR_CANCELED', kind: ErrorKind.Canceled });
        }
      }
      await a.forEach(names, async (name) => {
        await a.manager.remove(name, { force, signal: a.io.signal, progress: a.progress });
        a.note(`Successfully removed ${name}`);
      });
    },
  };
}
