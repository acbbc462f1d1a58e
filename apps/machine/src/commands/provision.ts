import type { Argv } from 'yargs';
import { ErrorKind } from '@berth/errors';
import { MachineError } from '@berth/machine';
import type { App } from '../app.js';

const names = (y: Argv) => y.positional('name', { type: 'string', array: true });

/** `machine provision NAME...`: runs provisioning again (packages, engine, certificates, service). */
export function provisionCommand(app: () => App) {
  return {
    command: 'provision <name..>',
    describe: 'Provision hosts again',
    builder: names,
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      await a.forEach(argv.name as string[], async (name) => {
        await a.manager.provision(name, { signal: a.io.signal, progress: a.progress });
        a.note(`(${name}) Provisioned.`);
      });
    },
  };
}

/** `machine upgrade NAME...`: installs the current engine bundle and restarts the engine. */
export function upgradeCommand(app: () => App) {
  return {
    command: 'upgrade <name..>',
    describe: 'Upgrade the engine on hosts to the current bundle',
    builder: names,
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      await a.forEach(argv.name as string[], async (name) => {
        const { upgraded, version } = await a.manager.upgrade(name, { signal: a.io.signal, progress: a.progress });
        a.note(upgraded ? `(${name}) Upgraded the engine to ${version}.` : `(${name}) The engine is already ${version}.`);
      });
    },
  };
}

/** `machine regenerate-certs NAME...`: new server certificates for the hosts' current addresses. */
export function regenerateCertsCommand(app: () => App) {
  return {
    command: 'regenerate-certs <name..>',
    describe: 'Make new TLS certificates for hosts (after an IP change) and restart their engines',
    builder: (y: Argv) =>
      names(y)
        .option('force', { alias: 'f', type: 'boolean', describe: 'do not ask for confirmation' })
        .option('client-certs', { type: 'boolean', describe: "also make the store's client certificate again" }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      const list = argv.name as string[];
      if (argv.force !== true && !(await a.confirm(`Regenerate TLS certificates of ${list.join(', ')}? The engines restart.`))) {
        throw new MachineError('regeneration canceled', { code: 'ERR_CANCELED', kind: ErrorKind.Canceled });
      }
      const clientCerts = argv['client-certs'] === true;
      if (clientCerts) await a.manager.regenerateCertificates(list[0]!, { clientCerts, signal: a.io.signal, progress: a.progress });
      await a.forEach(clientCerts ? list.slice(1) : list, async (name) => {
        await a.manager.regenerateCertificates(name, { signal: a.io.signal, progress: a.progress });
      });
    },
  };
}
