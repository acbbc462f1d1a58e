import type { Argv } from 'yargs';
import { ErrorKind, describeError } from '@berth/errors';
import { MachineError, MachineState } from '@berth/machine';
import type { App } from '../app.js';
import { parseFormat, renderTemplate } from '../format/template.js';

/** `machine ip NAME...`: the address of each host, one per line in the given order. */
export function ipCommand(app: () => App) {
  return {
    command: 'ip [name..]',
    describe: 'Print the IP address of hosts',
    builder: (y: Argv) => y.positional('name', { type: 'string', array: true }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      const given = (argv.name as string[] | undefined) ?? [];
      const list = given.length ? given : [await a.targetName(undefined)];
      const ips = new Map<string, string>();
      await a.forEach(list, async (name) => {
        ips.set(name, await (await a.manager.load(name)).driver.ip({ signal: a.io.signal }));
      });
      for (const name of list) a.out(ips.get(name)!);
    },
  };
}

/** `machine url [NAME]`. */
export function urlCommand(app: () => App) {
  return {
    command: 'url [name]',
    describe: 'Print the engine URL of a host',
    builder: (y: Argv) => y.positional('name', { type: 'string' }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      const host = await a.manager.load(await a.targetName(argv.name as string | undefined));
      a.out(await host.driver.url({ signal: a.io.signal }));
    },
  };
}

/** `machine status [NAME]`. */
export function statusCommand(app: () => App) {
  return {
    command: 'status [name]',
    describe: 'Print the state of a host',
    builder: (y: Argv) => y.positional('name', { type: 'string' }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      const host = await a.manager.load(await a.targetName(argv.name as string | undefined));
      a.out(await host.driver.state({ signal: a.io.signal }));
    },
  };
}

/** `machine inspect [NAME]`: the host's config.json, with its directory, or a template over it. */
export function inspectCommand(app: () => App) {
  return {
    command: 'inspect [name]',
    describe: 'Print what the store knows about a host (JSON)',
    builder: (y: Argv) => y.positional('name', { type: 'string' }).option('format', { alias: 'f', type: 'string', describe: 'Go template over the JSON, e.g. "{{.driver.ipAddress}}"' }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      const name = await a.targetName(argv.name as string | undefined);
      const config = await a.store.load(name);
      const data = { ...config, hostDir: a.store.hostDir(name) };
      if (typeof argv.format === 'string') a.out(renderTemplate(parseFormat(argv.format).template, data));
      else a.out(JSON.stringify(data, null, 2));
    },
  };
}

/** `machine active`: the running host whose URL is $DOCKER_HOST. */
export function activeCommand(app: () => App) {
  return {
    command: 'active',
    describe: 'Print the host that DOCKER_HOST points at',
    builder: (y: Argv) => y.option('timeout', { alias: 't', type: 'number', default: 10, describe: 'seconds to wait for each host' }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      const dockerHost = a.io.env.DOCKER_HOST;
      if (dockerHost) {
        const timeoutMs = Number(argv.timeout) * 1000;
        for (const name of await a.store.list()) {
          const summary = await a.manager.summary(name, { timeoutMs, resources: false });
          if (summary.url === dockerHost && summary.state === MachineState.Running) {
            a.out(name);
            return;
          }
        }
      }
      throw new MachineError('No active host found', { code: 'ERR_NO_ACTIVE_HOST', kind: ErrorKind.NotFound });
    },
  };
}

/** `machine version [NAME]`: this program's version, or the engine version of a host. */
export function versionCommand(app: () => App, version: string) {
  return {
    command: 'version [name]',
    describe: 'Print the version of machine, or of the engine on a host',
    builder: (y: Argv) => y.positional('name', { type: 'string' }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      if (!argv.name) {
        a.out(`machine version ${version}`);
        return;
      }
      const name = String(argv.name);
      try {
        const client = await a.manager.engineClient(name);
        a.out((await client.version({ signal: a.io.signal })).Version);
      } catch (err) {
        throw new MachineError(`cannot get the engine version of ${name}: ${describeError(err)}`, { code: 'ERR_ENGINE_UNAVAILABLE', kind: ErrorKind.Unavailable, cause: err });
      }
    },
  };
}
