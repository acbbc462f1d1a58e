import type { Argv } from 'yargs';
import type { App } from '../app.js';

const names = (y: Argv) => y.positional('name', { type: 'string', array: true, describe: 'host name(s) (default: "default")' });

async function targets(a: App, argv: Record<string, unknown>): Promise<string[]> {
  const given = (argv.name as string[] | undefined) ?? [];
  return given.length ? given : [await a.targetName(undefined)];
}

// After a start, an address off the certificate is fixed right away unless the user said not to.
async function afterStart(a: App, name: string, result: { addressChanged: boolean; address: string }, regenerate: boolean): Promise<void> {
  if (!result.addressChanged) return;
  if (!regenerate) {
    a.note(`(${name}) The IP changed to ${result.address}; run \`${a.io.argv0} regenerate-certs ${name}\` before using it`);
    return;
  }
  a.note(`(${name}) The IP changed to ${result.address}: regenerating its certificates`);
  await a.manager.regenerateCertificates(name, { signal: a.io.signal, progress: a.progress });
}

/** `machine start NAME...`: starts hosts, and regenerates certificates when an address changed. */
export function startCommand(app: () => App) {
  return {
    command: 'start [name..]',
    describe: 'Start hosts',
    builder: (y: Argv) => names(y).option('no-regenerate-certs', { type: 'boolean', describe: 'when the IP changed, only say so instead of regenerating the certificates' }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      await a.forEach(await targets(a, argv), async (name) => {
        a.note(`Starting "${name}"...`);
        const result = await a.manager.start(name, { signal: a.io.signal, progress: a.progress });
        await afterStart(a, name, result, argv['no-regenerate-certs'] !== true);
        a.note(`Machine "${name}" was started.`);
      });
    },
  };
}

/** `machine restart NAME...`. */
export function restartCommand(app: () => App) {
  return {
    command: 'restart [name..]',
    describe: 'Restart hosts',
    builder: (y: Argv) => names(y).option('no-regenerate-certs', { type: 'boolean', describe: 'when the IP changed, only say so instead of regenerating the certificates' }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      await a.forEach(await targets(a, argv), async (name) => {
        a.note(`Restarting "${name}"...`);
        const result = await a.manager.restart(name, { signal: a.io.signal, progress: a.progress });
        await afterStart(a, name, result, argv['no-regenerate-certs'] !== true);
        a.note(`Machine "${name}" was restarted.`);
      });
    },
  };
}

/** `machine stop NAME...` and `machine kill NAME...`. */
export function stopCommand(app: () => App, verb: 'stop' | 'kill') {
  return {
    command: `${verb} [name..]`,
    describe: verb === 'stop' ? 'Stop hosts gracefully' : 'Stop hosts forcefully (power off)',
    builder: names,
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      await a.forEach(await targets(a, argv), async (name) => {
        a.note(`${verb === 'stop' ? 'Stopping' : 'Killing'} "${name}"...`);
        if (verb === 'stop') await a.manager.stop(name, { signal: a.io.signal });
        else await a.manager.kill(name, { signal: a.io.signal });
        a.note(`Machine "${name}" was ${verb === 'stop' ? 'stopped' : 'killed'}.`);
      });
    },
  };
}
