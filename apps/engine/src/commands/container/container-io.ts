import type { ExecConfig } from '@berth/engine';
import { EngineErrorCode, engineError } from '@berth/engine/engine';
import { UsageError } from '../../cli/cli-errors.js';
import type { CommandSpec } from '../../cli/command-spec.js';
import { parseTimestamp } from '../../format/units.js';
import { connectTerminal, copyOutput } from '../../streams/attach-io.js';
import { readKeyValueFile, resolveEnv } from './create-options.js';
import { proxySignals } from '../../streams/signal-proxy.js';

function timeFlag(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const t = parseTimestamp(String(value));
  if (t === undefined) throw new UsageError(`invalid value for "${flag}": ${String(value)} is not a timestamp or a duration`, 'logs');
  return t;
}

/** `engine logs`. */
export const logsCommand: CommandSpec = {
  usage: '[OPTIONS] CONTAINER',
  describe: 'Fetch the logs of a container',
  args: [1, 1],
  options: {
    details: { type: 'boolean', describe: 'Show extra details provided to logs' },
    follow: { type: 'boolean', alias: 'f', describe: 'Follow log output' },
    since: { type: 'string', requiresArg: true, describe: 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
    tail: { type: 'string', alias: 'n', requiresArg: true, default: 'all', describe: 'Number of lines to show from the end of the logs' },
    timestamps: { type: 'boolean', alias: 't', describe: 'Show timestamps' },
    until: { type: 'string', requiresArg: true, describe: 'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
  },
  async run(args, cli) {
    const tailText = String(args['tail']);
    const tail = tailText === 'all' ? 'all' : Number(tailText);
    if (tail !== 'all' && !Number.isInteger(tail)) throw new UsageError(`invalid value for "--tail": ${tailText}`, 'logs');
    const since = timeFlag(args['since'], '--since');
    const until = timeFlag(args['until'], '--until');
    const logs = await (await cli.engine()).containerLogs(args._args[0]!, {
      signal: cli.signal,
      follow: args['follow'] === true,
      stdout: true,
      stderr: true,
      timestamps: args['timestamps'] === true,
      tail: tail === 'all' || tail < 0 ? 'all' : tail,
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
    });
    try {
      await copyOutput(cli, logs.output);
    } catch (err) {
      if (!cli.signal.aborted) throw err;
    }
  },
};

/** `engine exec`. */
export const execCommand: CommandSpec = {
  usage: '[OPTIONS] CONTAINER COMMAND [ARG...]',
  describe: 'Execute a command in a running container',
  args: [2, Infinity],
  interspersed: false,
  failureStatus: 125,
  options: {
    detach: { type: 'boolean', alias: 'd', describe: 'Detached mode: run command in the background' },
    'detach-keys': { type: 'string', requiresArg: true, describe: 'Override the key sequence for detaching a container' },
    env: { type: 'string', array: true, alias: 'e', requiresArg: true, describe: 'Set environment variables' },
    'env-file': { type: 'string', array: true, requiresArg: true, describe: 'Read in a file of environment variables' },
    interactive: { type: 'boolean', alias: 'i', describe: 'Keep STDIN open even if not attached' },
    privileged: { type: 'boolean', describe: 'Give extended privileges to the command' },
    tty: { type: 'boolean', alias: 't', describe: 'Allocate a pseudo-TTY' },
    user: { type: 'string', alias: 'u', requiresArg: true, describe: 'Username or UID (format: "<name|uid>[:<group|gid>]")' },
    workdir: { type: 'string', alias: 'w', requiresArg: true, describe: 'Working directory inside the container' },
  },
  async run(args, cli) {
    const [container, ...cmd] = args._args;
    const detach = args['detach'] === true;
    const tty = args['tty'] === true;
    const interactive = args['interactive'] === true;
    if (tty && interactive && !detach && !cli.io.stdin.isTTY) throw new UsageError('the input device is not a TTY', 'exec');
    const env = resolveEnv([...((args['env-file'] as string[] | undefined) ?? []).flatMap(readKeyValueFile), ...((args['env'] as string[] | undefined) ?? [])], cli.io.env);
    const out = cli.io.stdout;
    const config: ExecConfig = {
      User: (args['user'] as string | undefined) ?? '',
      Privileged: args['privileged'] === true,
      Tty: tty,
      ConsoleSize: tty && out.isTTY ? [out.rows, out.columns] : null,
      AttachStdin: interactive && !detach,
      AttachStdout: !detach,
      AttachStderr: !detach,
      ...(typeof args['detach-keys'] === 'string' ? { DetachKeys: args['detach-keys'] } : {}),
      Env: env,
      WorkingDir: (args['workdir'] as string | undefined) ?? '',
      Cmd: cmd,
    };
    const engine = await cli.engine();
    const { Id: execId } = await engine.createExec(container!, config, { signal: cli.signal });
    if (detach) {
      await engine.startExec(execId, { Detach: true, Tty: tty }, { signal: cli.signal });
      return 0;
    }
    const stream = await engine.startExec(execId, { Detach: false, Tty: tty, ConsoleSize: config.ConsoleSize ?? null }, { signal: cli.signal });
    if (stream) await connectTerminal(cli, stream, { stdin: interactive, tty });
    const result = await engine.inspectExec(execId);
    return result.ExitCode ?? 0;
  },
};

/** `engine attach`. */
export const attachCommand: CommandSpec = {
  usage: '[OPTIONS] CONTAINER',
  describe: 'Attach local standard input, output, and error streams to a running container',
  args: [1, 1],
  options: {
    'detach-keys': { type: 'string', requiresArg: true, describe: 'Override the key sequence for detaching a container' },
    'no-stdin': { type: 'boolean', describe: 'Do not attach STDIN' },
    'sig-proxy': { type: 'boolean', default: true, describe: 'Proxy all received signals to the process' },
  },
  async run(args, cli) {
    const engine = await cli.engine();
    const info = await engine.inspectContainer(args._args[0]!, { signal: cli.signal });
    if (!info.State.Running) throw engineError('You cannot attach to a stopped container, start it first', EngineErrorCode.ContainerNotRunning, 'Conflict');
    if (info.State.Paused) throw engineError('You cannot attach to a paused container, unpause it first', EngineErrorCode.ContainerPaused, 'Conflict');
    const tty = info.Config.Tty === true;
    const stdin = args['no-stdin'] !== true && info.Config.OpenStdin === true;
    if (stdin && tty && !cli.io.stdin.isTTY) throw new UsageError('the input device is not a TTY', 'attach');
    const stream = await engine.attachContainer(info.Id, {
      stream: true,
      stdin,
      stdout: true,
      stderr: true,
      ...(typeof args['detach-keys'] === 'string' ? { detachKeys: args['detach-keys'] } : {}),
    });
    const wait = await engine.waitContainer(info.Id, { condition: 'next-exit' });
    const release = !tty && args['sig-proxy'] !== false ? proxySignals(cli, engine, info.Id) : () => undefined;
    try {
      await connectTerminal(cli, stream, { stdin, tty });
      const now = await engine.inspectContainer(info.Id).catch(() => undefined);
      if (now?.State.Running) return 0;
      return (await wait.result).StatusCode;
    } finally {
      release();
    }
  },
};
