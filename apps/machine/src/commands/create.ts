import type { Argv } from 'yargs';
import { resolveFlagValues, type DriverDefinition, type FlagDefinition } from '@berth/machine';
import type { App } from '../app.js';

/** The driver `create` uses without `-d` (docker-machine's default). */
export const defaultDriver = 'virtualbox';

function flagHelp(flag: FlagDefinition): string {
  const parts = [flag.usage];
  if (flag.default !== undefined && !(Array.isArray(flag.default) && flag.default.length === 0)) {
    parts.push(`[default: ${flag.secret ? '(set)' : Array.isArray(flag.default) ? flag.default.join(',') : String(flag.default)}]`);
  }
  if (flag.envVar) parts.push(`[env: ${flag.envVar}]`);
  if (flag.required) parts.push('[required]');
  if (flag.aliases?.length) parts.push(`[deprecated: ${flag.aliases.map((a) => `--${a}`).join(', ')}]`);
  return parts.join(' ');
}

/** Adds a driver's flags (and their aliases) to the `create` command's options. */
export function addDriverFlags(y: Argv, definition: DriverDefinition): Argv {
  for (const flag of definition.flags) {
    const type = flag.type === 'string[]' ? 'array' : flag.type;
    y.option(flag.name, {
      type,
      describe: flagHelp(flag),
      group: `${definition.name} driver options:`,
      ...(flag.aliases?.length ? { alias: [...flag.aliases] } : {}),
      ...(flag.type === 'string' && flag.choices ? { choices: [...flag.choices] } : {}),
      ...(flag.type === 'string[]' ? { string: true } : {}),
    });
  }
  return y;
}

/** `machine create [-d DRIVER] [flags] NAME...`: creates hosts in parallel and provisions them. */
export function createCommand(app: () => App, definition: DriverDefinition | undefined, driverNote: string) {
  return {
    command: 'create <name..>',
    describe: 'Create and provision hosts (several names: in parallel)',
    builder: (y: Argv) => {
      y.positional('name', { type: 'string', describe: 'host name(s)' })
        .option('driver', { alias: 'd', type: 'string', describe: `driver to create the host with [env: MACHINE_DRIVER] [default: ${defaultDriver}]` })
        .option('engine-env', { type: 'array', string: true, describe: 'environment variable for the engine, K=V (repeatable)' })
        .option('engine-label', { type: 'array', string: true, describe: 'label of the engine, k=v (repeatable)' })
        .option('engine-opt', { type: 'array', string: true, describe: 'engine flag, name=value, passed as --name=value (repeatable)' })
        .option('engine-insecure-registry', { type: 'array', string: true, describe: 'registry the engine may reach without TLS (repeatable)' })
        .option('engine-registry-mirror', { type: 'array', string: true, describe: 'registry mirror of the engine (repeatable) [env: ENGINE_REGISTRY_MIRROR]' })
        .option('tls-san', { type: 'array', string: true, describe: 'extra name or IP for the engine certificate (repeatable)' })
        .group(['driver', 'engine-env', 'engine-label', 'engine-opt', 'engine-insecure-registry', 'engine-registry-mirror', 'tls-san'], 'Create options:');
      if (definition) addDriverFlags(y, definition);
      if (driverNote) y.epilogue(driverNote);
      return y;
    },
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      if (!definition) return;
      const names = argv.name as string[];
      const flags = resolveFlagValues(definition.flags, argv, a.io.env);
      const list = (key: string) => ((argv[key] as string[] | undefined) ?? []).map(String);
      const mirrors = list('engine-registry-mirror');
      if (!mirrors.length && a.io.env.ENGINE_REGISTRY_MIRROR) mirrors.push(...a.io.env.ENGINE_REGISTRY_MIRROR.split(','));
      const engine = {
        env: list('engine-env'),
        labels: list('engine-label'),
        opts: list('engine-opt'),
        insecureRegistries: list('engine-insecure-registry'),
        registryMirrors: mirrors,
      };
      await a.forEach(names, async (name) => {
        a.note(`(${name}) Creating with the ${definition.name} driver...`);
        const config = await a.manager.create({
          name,
          driver: definition.name,
          flags,
          engine,
          tlsSans: list('tls-san'),
          signal: a.io.signal,
          progress: a.progress,
        });
        a.note(`(${name}) The engine is up and running. To point engine or docker at it, run: ${a.io.argv0} env ${config.name}`);
      });
    },
  };
}

/**
 * The driver a `create` command line names: `-d X`, `--driver X`, `--driver=X`, `-dX`, else
 * MACHINE_DRIVER, else the default. Found before yargs runs, because the driver's flags are
 * part of the command's options (docker-machine's two-pass parsing).
 */
export function driverFromArgv(args: readonly string[], env: Readonly<Record<string, string | undefined>>): string {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (arg === '-d' || arg === '--driver') return args[i + 1] ?? '';
    if (arg.startsWith('--driver=')) return arg.slice('--driver='.length);
    if (/^-d[^-]/.test(arg)) return arg.slice(2).replace(/^=/, '');
  }
  return env.MACHINE_DRIVER || defaultDriver;
}
