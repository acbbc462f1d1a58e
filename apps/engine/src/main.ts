import { describeError, isBerthError } from '@berth/errors';
import { Cli, type CliIo } from './cli/cli.js';
import { UsageError, StatusError } from './cli/cli-errors.js';
import type { CommandSpec, ParsedArgs } from './cli/command-spec.js';
import { commandTable, commonCommands, otherCommands } from './cli/command-table.js';
import { globalFlagDefs, parseGlobalFlags } from './cli/global-flags.js';
import { managementCommands } from './cli/management-commands.js';
import { resolveSettings } from './cli/settings.js';
import type { SignalRouter } from './cli/signal-router.js';
import { parseOptions } from './cli/parse-options.js';
import { splitAtFirstPositional, valueFlags } from './cli/split-args.js';

/** Berth's version, commit and build time, set by the bundler; `-dev` when run from source. */
declare const BERTH_VERSION: string | undefined;
declare const BERTH_GIT_COMMIT: string | undefined;
declare const BERTH_BUILD_TIME: string | undefined;
export const berthVersion = typeof BERTH_VERSION === 'string' ? BERTH_VERSION : '0.1.0-dev';
export const berthBuild = {
  commit: typeof BERTH_GIT_COMMIT === 'string' ? BERTH_GIT_COMMIT : '',
  time: typeof BERTH_BUILD_TIME === 'string' ? BERTH_BUILD_TIME : '',
};

function rootHelp(): string {
  const rows = (list: readonly (readonly [string, string])[]) => list.map(([n, d]) => `  ${n.padEnd(11)} ${d}`).join('\n');
  const flags = Object.entries(globalFlagDefs)
    .filter(([, d]) => d.help)
    .map(([name, d]) => {
      const short = Object.entries(globalFlagDefs).find(([n, o]) => n.length === 2 && o.key === d.key && n !== name)?.[0];
      const label = short ? `${short}, ${name}` : `    ${name}`;
      return `  ${(label + (d.value ? ' string' : '')).padEnd(28)} ${d.help}`;
    })
    .join('\n');
  return [
    'Usage:  engine [OPTIONS] COMMAND',
    '',
    'A container engine: daemonless by default, or against a server with -H / DOCKER_HOST',
    '',
    'Common Commands:',
    rows(commonCommands),
    '',
    'Management Commands:',
    rows(Object.entries(managementCommands)),
    '',
    'Commands:',
    rows(otherCommands),
    '',
    'Global Options:',
    flags,
    '',
    "Run 'engine COMMAND --help' for more information on a command.",
    '',
  ].join('\n');
}

async function managementHelp(noun: string): Promise<string> {
  const rows: string[] = [];
  for (const key of Object.keys(commandTable).filter((k) => k.startsWith(`${noun} `))) {
    const spec = await commandTable[key]!();
    rows.push(`  ${key.slice(noun.length + 1).padEnd(10)} ${spec.describe}`);
  }
  return `Usage:  engine ${noun} COMMAND\n\n${managementCommands[noun]}\n\nCommands:\n${rows.join('\n')}\n\nRun 'engine ${noun} COMMAND --help' for more information on a command.\n`;
}

function countMessage(path: string, [min, max]: readonly [number, number], got: number): string | undefined {
  const plural = (n: number) => `${n} argument${n === 1 ? '' : 's'}`;
  if (min === max && got !== min) return min === 0 ? `"engine ${path}" accepts no arguments.` : `"engine ${path}" requires exactly ${plural(min)}.`;
  if (got < min) return `"engine ${path}" requires at least ${plural(min)}.`;
  if (got > max) return `"engine ${path}" requires at most ${plural(max)}.`;
  return undefined;
}

async function helpOf(path: string, spec: CommandSpec, cli: Cli): Promise<string> {
  const { default: yargs } = await import('yargs');
  return yargs([])
    .scriptName(`engine ${path}`)
    .usage(`Usage:  engine ${path} ${spec.usage}\n\n${spec.describe}`)
    .options(spec.options ?? {})
    .help(false)
    .version(false)
    .wrap(Math.min(120, cli.io.stdout.columns ?? 100))
    .getHelp();
}

async function parseCommand(path: string, spec: CommandSpec, args: readonly string[], cli: Cli): Promise<ParsedArgs | undefined> {
  const options = spec.options ?? {};
  let optionArgs = [...args];
  let trailing: string[] = [];
  if (spec.interspersed === false) {
    const split = splitAtFirstPositional(args, valueFlags(options));
    optionArgs = split.options;
    trailing = split.positional;
  }
  if (optionArgs.includes('--help')) {
    cli.out((await helpOf(path, spec, cli)) + '\n');
    return undefined;
  }
  const { values, positional: parsed } = parseOptions(optionArgs, options, path);
  const positional = [...parsed, ...trailing];
  if (spec.args) {
    const problem = countMessage(path, spec.args, positional.length);
    if (problem) throw new UsageError(problem, path);
  }
  return { ...values, _args: positional };
}

/**
 * Runs one `engine` command line and resolves to the process exit status. Only
 * `src/bin/engine.ts` turns that into the process's exit code.
 */
export async function runCli(argv: readonly string[], io: CliIo, signals: SignalRouter): Promise<number> {
  const signal = signals.signal;
  let path = '';
  let spec: CommandSpec | undefined;
  let cli: Cli | undefined;
  try {
    const { flags, rest } = parseGlobalFlags(argv);
    if (rest.length === 0 || rest[0] === '--help' || rest[0] === '-h' || rest[0] === 'help') {
      io.stdout.write(rootHelp());
      return 0;
    }
    if (rest[0] === '-v' || rest[0] === '--version') {
      io.stdout.write(`Berth version ${berthVersion}\n`);
      return 0;
    }
    const noun = rest[0]!;
    let consumed = 1;
    if (managementCommands[noun] !== undefined) {
      if (rest.length < 2 || rest[1] === '--help') {
        io.stdout.write(await managementHelp(noun));
        return 0;
      }
      consumed = 2;
    }
    path = rest.slice(0, consumed).join(' ');
    const load = commandTable[path];
    if (!load) throw new UsageError(`'${path}' is not an engine command.`, '');
    spec = await load();
    cli = new Cli({ io, settings: resolveSettings(flags, io.env), signals, version: berthVersion, build: berthBuild });
    const args = await parseCommand(path, spec, rest.slice(consumed), cli);
    if (!args) return 0;
    const status = await spec.run(args, cli);
    return status ?? 0;
  } catch (err) {
    return reportFailure(err, io, path, spec, signal);
  } finally {
    await cli?.close();
  }
}

function reportFailure(err: unknown, io: CliIo, path: string, spec: CommandSpec | undefined, signal: AbortSignal): number {
  if (err instanceof StatusError) return err.exitCode ?? 1;
  if (signal.aborted && isBerthError(err) && err.kind === 'Canceled') return 130;
  if (err instanceof UsageError) {
    const hint = err.command ? `See 'engine ${err.command} --help'.` : "See 'engine --help'.";
    io.stderr.write(`engine: ${err.message}\n${hint}\n`);
    return spec?.failureStatus ?? (path ? 2 : 1);
  }
  io.stderr.write(`engine: ${describeError(err)}\n`);
  if (isBerthError(err) && err.exitCode !== undefined) return err.exitCode;
  return spec?.failureStatus ?? 1;
}
