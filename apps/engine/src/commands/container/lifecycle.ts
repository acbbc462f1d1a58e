import type { ContainerUpdateRequest } from '@berth/engine';
import { UsageError } from '../../cli/cli-errors.js';
import type { CommandSpec } from '../../cli/command-spec.js';
import { humanSize, parseBytes } from '../../format/units.js';
import { confirm, forEachArgument } from '../each-argument.js';
import { connectTerminal } from '../../streams/attach-io.js';
import { proxySignals } from '../../streams/signal-proxy.js';
import { filtersOf } from '../../cli/filter-flags.js';
import { parseRestartPolicy } from './create-options.js';

const filterOption = { type: 'string', array: true, requiresArg: true, describe: 'Provide filter values (e.g. "until=<timestamp>")' } as const;

/** `engine start`. */
export const startCommand: CommandSpec = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  describe: 'Start one or more stopped containers',
  args: [1, Infinity],
  options: {
    attach: { type: 'boolean', alias: 'a', describe: 'Attach STDOUT/STDERR and forward signals' },
    interactive: { type: 'boolean', alias: 'i', describe: "Attach container's STDIN" },
    'detach-keys': { type: 'string', requiresArg: true, describe: 'Override the key sequence for detaching a container' },
  },
  async run(args, cli) {
    const engine = await cli.engine();
    const names = args._args;
    if (args['attach'] === true || args['interactive'] === true) {
      if (names.length > 1) throw new UsageError('you cannot start and attach multiple containers at once', 'start');
      const info = await engine.inspectContainer(names[0]!, { signal: cli.signal });
      const tty = info.Config.Tty === true;
      const stdin = args['interactive'] === true && info.Config.OpenStdin === true;
      const stream = await engine.attachContainer(info.Id, { stream: true, stdin, stdout: true, stderr: true });
      const wait = await engine.waitContainer(info.Id, { condition: 'next-exit' });
      await engine.startContainer(info.Id, { signal: cli.signal });
      const release = tty ? () => undefined : proxySignals(cli, engine, info.Id);
      try {
        await connectTerminal(cli, stream, { stdin, tty });
        return (await wait.result).StatusCode;
      } finally {
        release();
      }
    }
    await forEachArgument(cli, names, async (name) => {
      await engine.startContainer(name, { signal: cli.signal });
      return name;
    });
  },
};

const timeoutOptions = {
  time: { type: 'string', alias: 't', requiresArg: true, describe: 'Seconds to wait before killing the container' },
  timeout: { type: 'string', requiresArg: true, describe: 'Seconds to wait before killing the container' },
  signal: { type: 'string', alias: 's', requiresArg: true, describe: 'Signal to send to the container' },
} as const;

function stopSettings(args: Record<string, unknown>): { timeout?: number; signalName?: string } {
  const t = args['timeout'] ?? args['time'];
  const timeout = t === undefined ? undefined : Number(t);
  if (timeout !== undefined && !Number.isInteger(timeout)) throw new UsageError(`invalid argument "${String(t)}" for "-t, --timeout" flag`, 'stop');
  return { ...(timeout !== undefined ? { timeout } : {}), ...(typeof args['signal'] === 'string' ? { signalName: args['signal'] } : {}) };
}

/** `engine stop`. */
export const stopCommand: CommandSpec = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  describe: 'Stop one or more running containers',
  args: [1, Infinity],
  options: timeoutOptions,
  async run(args, cli) {
    const engine = await cli.engine();
    const settings = stopSettings(args);
    await forEachArgument(cli, args._args, async (name) => {
      await engine.stopContainer(name, { signal: cli.signal, ...settings });
      return name;
    });
  },
};

/** `engine restart`. */
export const restartCommand: CommandSpec = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  describe: 'Restart one or more containers',
  args: [1, Infinity],
  options: timeoutOptions,
  async run(args, cli) {
    const engine = await cli.engine();
    const settings = stopSettings(args);
    await forEachArgument(cli, args._args, async (name) => {
      await engine.restartContainer(name, { signal: cli.signal, ...settings });
      return name;
    });
  },
};

/** `engine kill`. */
export const killCommand: CommandSpec = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  describe: 'Kill one or more running containers',
  args: [1, Infinity],
  options: { signal: { type: 'string', alias: 's', requiresArg: true, describe: 'Signal to send to the container' } },
  async run(args, cli) {
    const engine = await cli.engine();
    const signalName = typeof args['signal'] === 'string' ? args['signal'] : undefined;
    await forEachArgument(cli, args._args, async (name) => {
      await engine.killContainer(name, { signal: cli.signal, ...(signalName ? { signalName } : {}) });
      return name;
    });
  },
};

/** `engine pause`. */
export const pauseCommand: CommandSpec = {
  usage: 'CONTAINER [CONTAINER...]',
  describe: 'Pause all processes within one or more containers',
  args: [1, Infinity],
  async run(args, cli) {
    const engine = await cli.engine();
    await forEachArgument(cli, args._args, async (name) => {
      await engine.pauseContainer(name, { signal: cli.signal });
      return name;
    });
  },
};

/** `engine unpause`. */
export const unpauseCommand: CommandSpec = {
  usage: 'CONTAINER [CONTAINER...]',
  describe: 'Unpause all processes within one or more containers',
  args: [1, Infinity],
  async run(args, cli) {
    const engine = await cli.engine();
    await forEachArgument(cli, args._args, async (name) => {
      await engine.unpauseContainer(name, { signal: cli.signal });
      return name;
    });
  },
};

/** `engine rm`. */
export const rmCommand: CommandSpec = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  describe: 'Remove one or more containers',
  args: [1, Infinity],
  options: {
    force: { type: 'boolean', alias: 'f', describe: 'Force the removal of a running container (uses SIGKILL)' },
    volumes: { type: 'boolean', alias: 'v', describe: 'Remove anonymous volumes associated with the container' },
    link: { type: 'boolean', alias: 'l', describe: 'Remove the specified link' },
  },
  async run(args, cli) {
    const engine = await cli.engine();
    await forEachArgument(cli, args._args, async (name) => {
      await engine.removeContainer(name.replace(/^\//, ''), { signal: cli.signal, force: args['force'] === true, volumes: args['volumes'] === true, link: args['link'] === true });
      return name;
    });
  },
};

/** `engine wait`. */
export const waitCommand: CommandSpec = {
  usage: 'CONTAINER [CONTAINER...]',
  describe: 'Block until one or more containers stop, then print their exit codes',
  args: [1, Infinity],
  async run(args, cli) {
    const engine = await cli.engine();
    await forEachArgument(cli, args._args, async (name) => {
      const wait = await engine.waitContainer(name, { signal: cli.signal, condition: 'not-running' });
      return String((await wait.result).StatusCode);
    });
  },
};

/** `engine rename`. */
export const renameCommand: CommandSpec = {
  usage: 'CONTAINER NEW_NAME',
  describe: 'Rename a container',
  args: [2, 2],
  async run(args, cli) {
    const [from, to] = args._args;
    if (!to!.trim()) throw new UsageError('Neither old nor new names may be empty', 'rename');
    await (await cli.engine()).renameContainer(from!, to!, { signal: cli.signal });
  },
};

function updateBody(args: Record<string, unknown>): ContainerUpdateRequest {
  const body: Record<string, unknown> = {};
  const num = (flag: string, key: string) => {
    if (args[flag] === undefined) return;
    const n = Number(args[flag]);
    if (!Number.isFinite(n)) throw new UsageError(`invalid argument "${String(args[flag])}" for "--${flag}" flag`, 'update');
    body[key] = n;
  };
  const size = (flag: string, key: string) => {
    if (args[flag] === undefined) return;
    const text = String(args[flag]);
    const n = text === '-1' ? -1 : parseBytes(text);
    if (n === undefined) throw new UsageError(`invalid argument "${text}" for "--${flag}" flag: invalid size: '${text}'`, 'update');
    body[key] = n;
  };
  num('cpu-shares', 'CpuShares');
  num('cpu-period', 'CpuPeriod');
  num('cpu-quota', 'CpuQuota');
  num('blkio-weight', 'BlkioWeight');
  num('pids-limit', 'PidsLimit');
  size('memory', 'Memory');
  size('memory-reservation', 'MemoryReservation');
  size('memory-swap', 'MemorySwap');
  if (args['cpus'] !== undefined) {
    const n = Number(args['cpus']);
    if (!Number.isFinite(n) || n < 0) throw new UsageError(`invalid argument "${String(args['cpus'])}" for "--cpus" flag`, 'update');
    body['NanoCpus'] = Math.round(n * 1e9);
  }
  if (typeof args['cpuset-cpus'] === 'string') body['CpusetCpus'] = args['cpuset-cpus'];
  if (typeof args['cpuset-mems'] === 'string') body['CpusetMems'] = args['cpuset-mems'];
  if (typeof args['restart'] === 'string') body['RestartPolicy'] = parseRestartPolicy(args['restart']);
  return body as ContainerUpdateRequest;
}

/** `engine update`. */
export const updateCommand: CommandSpec = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  describe: 'Update configuration of one or more containers',
  args: [1, Infinity],
  options: {
    'blkio-weight': { type: 'string', requiresArg: true, describe: 'Block IO (relative weight), between 10 and 1000, or 0 to disable' },
    'cpu-period': { type: 'string', requiresArg: true, describe: 'Limit CPU CFS (Completely Fair Scheduler) period' },
    'cpu-quota': { type: 'string', requiresArg: true, describe: 'Limit CPU CFS (Completely Fair Scheduler) quota' },
    'cpu-shares': { type: 'string', alias: 'c', requiresArg: true, describe: 'CPU shares (relative weight)' },
    cpus: { type: 'string', requiresArg: true, describe: 'Number of CPUs' },
    'cpuset-cpus': { type: 'string', requiresArg: true, describe: 'CPUs in which to allow execution (0-3, 0,1)' },
    'cpuset-mems': { type: 'string', requiresArg: true, describe: 'MEMs in which to allow execution (0-3, 0,1)' },
    memory: { type: 'string', alias: 'm', requiresArg: true, describe: 'Memory limit' },
    'memory-reservation': { type: 'string', requiresArg: true, describe: 'Memory soft limit' },
    'memory-swap': { type: 'string', requiresArg: true, describe: "Swap limit equal to memory plus swap: -1 to enable unlimited swap" },
    'pids-limit': { type: 'string', requiresArg: true, describe: 'Tune container pids limit (set -1 for unlimited)' },
    restart: { type: 'string', requiresArg: true, describe: 'Restart policy to apply when a container exits' },
  },
  async run(args, cli) {
    const body = updateBody(args);
    if (Object.keys(body).length === 0) throw new UsageError('you must provide one or more flags when using this command', 'update');
    const engine = await cli.engine();
    await forEachArgument(cli, args._args, async (name) => {
      const result = await engine.updateContainer(name, body, { signal: cli.signal });
      for (const w of result.Warnings ?? []) cli.err(`WARNING: ${w}\n`);
      return name;
    });
  },
};

/** `engine container prune`. */
export const containerPruneCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'Remove all stopped containers',
  args: [0, 0],
  options: { force: { type: 'boolean', alias: 'f', describe: 'Do not prompt for confirmation' }, filter: filterOption },
  async run(args, cli) {
    if (!(await confirm(cli, 'WARNING! This will remove all stopped containers.\nAre you sure you want to continue?', args['force'] === true))) return;
    const result = await (await cli.engine()).pruneContainers({ signal: cli.signal, filters: filtersOf(args['filter']) });
    const deleted = result.ContainersDeleted ?? [];
    if (deleted.length) cli.out(`Deleted Containers:\n${deleted.join('\n')}\n\n`);
    cli.out(`Total reclaimed space: ${humanSize(result.SpaceReclaimed)}\n`);
  },
};
