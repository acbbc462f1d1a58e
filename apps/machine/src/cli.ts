import yargs, { type Argv } from 'yargs';
import { BerthError, ErrorKind, describeError, hasKind, isBerthError } from '@berth/errors';
import { MachineError, type DriverDefinition } from '@berth/machine';
import { App, defaultStoragePath, type GlobalOptions, type Io } from './app.js';
import { createCommand, driverFromArgv } from './commands/create.js';
import { configCommand, envCommand } from './commands/env.js';
import { activeCommand, inspectCommand, ipCommand, statusCommand, urlCommand, versionCommand } from './commands/info.js';
import { restartCommand, startCommand, stopCommand } from './commands/lifecycle.js';
import { lsCommand } from './commands/ls.js';
import { provisionCommand, regenerateCertsCommand, upgradeCommand } from './commands/provision.js';
import { rmCommand } from './commands/rm.js';
import { scpCommand } from './commands/scp.js';
import { runSsh } from './commands/ssh.js';

/** This program's version. */
export const machineVersion = '0.1.0';

/** The global flags that take a value, for finding the command word before yargs runs. */
const valueFlags = new Set(['-s', '--storage-path', '--tls-ca-cert', '--tls-ca-key', '--engine-bundle']);

/** Splits argv into the global flags and the command with its arguments. */
export function splitCommand(args: readonly string[]): { globals: string[]; command: string | undefined; rest: string[] } {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-')) return { globals: args.slice(0, i), command: arg, rest: args.slice(i + 1) };
    if (valueFlags.has(arg)) i++;
  }
  return { globals: [...args], command: undefined, rest: [] };
}

function globalOptions(y: Argv, env: Io['env']): Argv {
  return y
    // Repeatable flags take one value each (`--engine-label a=1 NAME`), as in docker-machine.
    // `--no-proxy` and `--no-regenerate-certs` are flags of their own, not negations.
    .parserConfiguration({ 'greedy-arrays': false, 'boolean-negation': false })
    .option('storage-path', { alias: 's', type: 'string', describe: `the store [env: MACHINE_STORAGE_PATH] [default: ${defaultStoragePath()}]`, global: true })
    .option('debug', { alias: 'D', type: 'boolean', describe: 'debug output on stderr [env: MACHINE_DEBUG]', global: true })
    .option('tls-ca-cert', { type: 'string', describe: 'CA to sign host certificates with [env: MACHINE_TLS_CA_CERT]', global: true })
    .option('tls-ca-key', { type: 'string', describe: 'private key of that CA [env: MACHINE_TLS_CA_KEY]', global: true })
    .option('engine-bundle', { type: 'string', describe: 'engine bundle (.tar.gz, or a directory of them) to install [env: MACHINE_ENGINE_BUNDLE]', global: true })
    .group(['storage-path', 'debug', 'tls-ca-cert', 'tls-ca-key', 'engine-bundle', 'help', 'version'], 'Global options:')
    .middleware((argv) => {
      // file < env < flags: fill what the command line left out from the environment.
      const fromEnv: [string, string][] = [
        ['storage-path', 'MACHINE_STORAGE_PATH'],
        ['tls-ca-cert', 'MACHINE_TLS_CA_CERT'],
        ['tls-ca-key', 'MACHINE_TLS_CA_KEY'],
        ['engine-bundle', 'MACHINE_ENGINE_BUNDLE'],
      ];
      for (const [flag, variable] of fromEnv) if (argv[flag] === undefined && env[variable]) argv[flag] = env[variable];
      if (argv.debug === undefined && env.MACHINE_DEBUG) argv.debug = !['', '0', 'false'].includes(env.MACHINE_DEBUG);
    });
}

function optionsOf(argv: Record<string, unknown>): GlobalOptions {
  return {
    storagePath: typeof argv['storage-path'] === 'string' && argv['storage-path'] ? argv['storage-path'] : defaultStoragePath(),
    debug: argv.debug === true,
    ...(typeof argv['tls-ca-cert'] === 'string' ? { tlsCaCert: argv['tls-ca-cert'] } : {}),
    ...(typeof argv['tls-ca-key'] === 'string' ? { tlsCaKey: argv['tls-ca-key'] } : {}),
    ...(typeof argv['engine-bundle'] === 'string' ? { engineBundle: argv['engine-bundle'] } : {}),
  };
}

class UsageError extends BerthError {
  constructor(message: string) {
    super(message, { code: 'ERR_USAGE', kind: ErrorKind.InvalidArgument, exitCode: 2 });
  }
}

/**
 * Runs one `machine` command line and resolves to its exit status: 0, 1 on error, 2 on a usage
 * error, 3 when a pre-create check failed (docker-machine's), 130 when interrupted; `ssh`
 * exits with the remote command's status. Results go to stdout, everything else to stderr.
 */
export async function runMachine(io: Io): Promise<number> {
  let app: App | undefined;
  let debug = false;
  try {
    const { globals, command, rest } = splitCommand(io.args);
    if (command === 'ssh' && !rest.includes('--help') && !rest.includes('-h')) {
      const argv = (await globalOptions(yargs([...globals]), io.env).strict().exitProcess(false).fail(fail).parse()) as Record<string, unknown>;
      app = new App(io, optionsOf(argv));
      debug = app.options.debug;
      return await runSsh(app, rest[0] === '--' ? rest.slice(1) : rest);
    }
    let definition: DriverDefinition | undefined;
    let driverNote = '';
    if (command === 'create') {
      const name = driverFromArgv(rest, io.env);
      const registry = new App(io, { storagePath: defaultStoragePath(), debug: false }).registry;
      if (registry.find(name)) definition = await registry.load(name);
      const available = registry.entries.map((e) => (e.aliases?.length ? `${e.name} (${e.aliases.join(', ')})` : e.name)).join(', ');
      driverNote = `Drivers: ${available}. \`create -d DRIVER --help\` lists a driver's flags.`;
      if (!definition && !rest.includes('--help') && !rest.includes('-h')) {
        throw new MachineError(`driver ${JSON.stringify(name)} not found (available: ${available})`, { code: 'ERR_DRIVER_NOT_FOUND', kind: ErrorKind.NotFound, exitCode: 1 });
      }
    }
    const getApp = () => {
      if (!app) throw new MachineError('internal: command ran before the global options were read', { code: 'ERR_INTERNAL', kind: ErrorKind.Internal });
      return app;
    };
    let output = '';
    const parser = globalOptions(yargs([...io.args]), io.env)
      .scriptName(io.argv0)
      .usage('$0 [global options] <command> [options]\n\nCreate hosts, provision the Berth engine on them over SSH, and point engine or docker at them.')
      .middleware((argv) => {
        app = new App(io, optionsOf(argv));
        debug = app.options.debug;
      })
      .command(createCommand(getApp, definition, driverNote))
      .command(lsCommand(getApp))
      .command(envCommand(getApp))
      .command(configCommand(getApp))
      .command({ command: 'ssh [name] [command..]', describe: 'Log in to a host or run a command there (arguments after the name are passed as they are)', handler: () => {} })
      .command(scpCommand(getApp))
      .command(ipCommand(getApp))
      .command(urlCommand(getApp))
      .command(statusCommand(getApp))
      .command(startCommand(getApp))
      .command(stopCommand(getApp, 'stop'))
      .command(restartCommand(getApp))
      .command(stopCommand(getApp, 'kill'))
      .command(rmCommand(getApp))
      .command(inspectCommand(getApp))
      .command(regenerateCertsCommand(getApp))
      .command(upgradeCommand(getApp))
      .command(provisionCommand(getApp))
      .command(activeCommand(getApp))
      .command(versionCommand(getApp, machineVersion))
      .demandCommand(1, 'name a command')
      .recommendCommands()
      .strict()
      .help()
      .alias('help', 'h')
      .version(machineVersion)
      .alias('version', 'v')
      .wrap(Math.min(120, io.stdout.columns ?? 100))
      .exitProcess(false)
      .fail(fail);
    await parser.parse(io.args, {}, (_err: unknown, _argv: unknown, text: string) => {
      output = text;
    });
    if (output) io.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
    return 0;
  } catch (err) {
    if (io.signal.aborted && !isBerthError(err)) return 130;
    if (hasKind(err, ErrorKind.Canceled) && io.signal.aborted) {
      io.stderr.write('machine: interrupted\n');
      return 130;
    }
    io.stderr.write(`machine: ${describeError(err)}\n`);
    if (debug && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
    if (err instanceof UsageError) io.stderr.write(`Run '${io.argv0} --help' for usage.\n`);
    return isBerthError(err) && err.exitCode !== undefined ? err.exitCode : 1;
  }
}

function fail(message: string | undefined, err: Error | undefined): never {
  if (err) throw err;
  throw new UsageError(message ?? 'invalid command line');
}
