import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { detectCompression, directoryContext, isTarHeader, packContext } from '@berth/builder';
import type { BuildOptions, Engine, JsonMessage } from '@berth/engine';
import { EngineErrorCode, engineError } from '@berth/engine/engine';
import type { Cli } from '../../cli/cli.js';
import { UsageError } from '../../cli/cli-errors.js';
import type { CommandSpec, ParsedArgs } from '../../cli/command-spec.js';
import { DockerConfig } from '../../cli/docker-config.js';
import { humanSize, parseBytes } from '../../format/units.js';
import { filtersOf } from '../../cli/filter-flags.js';
import { confirm } from '../each-argument.js';
import { showProgress } from './pull-image.js';

/** Where `--output` puts the result's filesystem. */
type BuildOutput = { readonly type: 'local'; readonly dest: string } | { readonly type: 'tar'; readonly dest: string };

/** docker's `--output`: `type=local,dest=DIR`, `type=tar,dest=FILE`, a bare `DIR`, or `-` (a tar on stdout). */
export function parseOutput(spec: string): BuildOutput {
  if (spec === '-') return { type: 'tar', dest: '-' };
  if (!spec.includes('=')) return { type: 'local', dest: spec };
  const fields = Object.fromEntries(spec.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')).trim(), kv.slice(kv.indexOf('=') + 1)]));
  const type = fields['type'] ?? 'local';
  const dest = fields['dest'] ?? (type === 'tar' ? '-' : undefined);
  if (type !== 'local' && type !== 'tar') throw new UsageError(`unsupported output type ${JSON.stringify(type)}: use type=local or type=tar`, 'build');
  if (!dest) throw new UsageError(`--output type=${type} needs dest=`, 'build');
  return { type, dest };
}

function buildArgsOf(values: readonly string[], env: NodeJS.ProcessEnv): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq > 0) out[v.slice(0, eq)] = v.slice(eq + 1);
    else out[v] = env[v] ?? null;
  }
  return out;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

/**
 * The context tar and the Dockerfile's name in it, from a directory or from stdin (a tar, or a
 * lone Dockerfile). For the in-process engine the directory's context is packed only if read,
 * and the engine reads the directory instead; for a remote one it is walked first, so a bad
 * context fails before the upload. `cleanup` removes the empty context a lone Dockerfile gets.
 */
async function contextOf(cli: Cli, path: string, file: string | undefined): Promise<{ stream: Readable; dockerfile: string; cleanup?: () => Promise<void> }> {
  const pack = cli.settings.remoteHost === undefined ? directoryContext : packContext;
  if (path === '-') {
    const data = await readAll(cli.io.stdin);
    if (isTarHeader(data.subarray(0, 512)) || detectCompression(data) !== 'none') return { stream: Readable.from([data]), dockerfile: file ?? 'Dockerfile' };
    const dir = await mkdtemp(join(tmpdir(), 'engine-build-'));
    return { ...(await pack({ dir, dockerfile: { content: data.toString('utf8') }, signal: cli.signal })), cleanup: () => rm(dir, { recursive: true, force: true }) };
  }
  if (/^(https?|git):\/\//.test(path) || path.startsWith('git@')) {
    throw engineError('building from a URL or git repository is not supported: clone or download it and build from the directory', EngineErrorCode.NotImplemented, 'NotImplemented');
  }
  // docker reads a relative -f against the current directory, not the context.
  const dockerfile = file === '-' ? { content: (await readAll(cli.io.stdin)).toString('utf8') } : file ? { path: resolve(file) } : undefined;
  return pack({ dir: resolve(path), signal: cli.signal, ...(dockerfile ? { dockerfile } : {}) });
}

/** Writes the built image's filesystem where `--output` says: create a container, export it, remove it. */
async function exportResult(cli: Cli, engine: Engine, imageId: string, output: BuildOutput): Promise<void> {
  const { Id } = await engine.createContainer({ Image: imageId, Cmd: ['/'], Labels: { 'org.berth.build-output': 'true' } }, { signal: cli.signal });
  try {
    const tar = await engine.exportContainer(Id, { signal: cli.signal });
    if (output.type === 'tar') {
      if (output.dest === '-') await pipeline(tar, cli.io.stdout, { end: false });
      else await pipeline(tar, createWriteStream(resolve(output.dest)));
    } else {
      const { extract } = await import('tar');
      await mkdir(resolve(output.dest), { recursive: true });
      await pipeline(tar, extract({ cwd: resolve(output.dest), preserveOwner: process.getuid?.() === 0 }) as unknown as NodeJS.WritableStream);
    }
  } finally {
    await engine.removeContainer(Id, { force: true }).catch(() => undefined);
  }
}

function numberFlag(args: ParsedArgs, name: string): number | undefined {
  if (args[name] === undefined) return undefined;
  const n = Number(args[name]);
  if (!Number.isFinite(n)) throw new UsageError(`invalid argument "${String(args[name])}" for "--${name}" flag`, 'build');
  return n;
}

/** `engine build`. */
export const buildCommand: CommandSpec = {
  usage: '[OPTIONS] PATH | -',
  describe: 'Build an image from a Dockerfile',
  args: [1, 1],
  options: {
    'add-host': { type: 'string', array: true, requiresArg: true, describe: 'Add a custom host-to-IP mapping (host:ip)' },
    'build-arg': { type: 'string', array: true, requiresArg: true, describe: 'Set build-time variables' },
    'cache-from': { type: 'string', array: true, requiresArg: true, describe: 'Images to consider as cache sources' },
    'cpu-period': { type: 'string', requiresArg: true, describe: 'Limit the CPU CFS (Completely Fair Scheduler) period' },
    'cpu-quota': { type: 'string', requiresArg: true, describe: 'Limit the CPU CFS (Completely Fair Scheduler) quota' },
    'cpu-shares': { type: 'string', alias: 'c', requiresArg: true, describe: 'CPU shares (relative weight)' },
    'cpuset-cpus': { type: 'string', requiresArg: true, describe: 'CPUs in which to allow execution (0-3, 0,1)' },
    file: { type: 'string', alias: 'f', requiresArg: true, describe: "Name of the Dockerfile (Default is 'PATH/Dockerfile')" },
    'force-rm': { type: 'boolean', describe: 'Always remove intermediate containers' },
    iidfile: { type: 'string', requiresArg: true, describe: 'Write the image ID to the file' },
    label: { type: 'string', array: true, requiresArg: true, describe: 'Set metadata for an image' },
    memory: { type: 'string', alias: 'm', requiresArg: true, describe: 'Memory limit' },
    'memory-swap': { type: 'string', requiresArg: true, describe: "Swap limit equal to memory plus swap: -1 to enable unlimited swap" },
    network: { type: 'string', requiresArg: true, describe: 'Set the networking mode for the RUN instructions during build' },
    'no-cache': { type: 'boolean', describe: 'Do not use cache when building the image' },
    output: { type: 'string', array: true, alias: 'o', requiresArg: true, describe: 'Output destination (format: "type=local,dest=path" or "type=tar,dest=file")' },
    platform: { type: 'string', requiresArg: true, describe: 'Set platform if server is multi-platform capable' },
    progress: { type: 'string', requiresArg: true, describe: 'Set type of progress output (auto, plain, tty)' },
    pull: { type: 'boolean', describe: 'Always attempt to pull a newer version of the image' },
    quiet: { type: 'boolean', alias: 'q', describe: 'Suppress the build output and print image ID on success' },
    rm: { type: 'boolean', default: true, describe: 'Remove intermediate containers after a successful build' },
    'shm-size': { type: 'string', requiresArg: true, describe: 'Size of /dev/shm' },
    tag: { type: 'string', array: true, alias: 't', requiresArg: true, describe: 'Name and optionally a tag in the "name:tag" format' },
    target: { type: 'string', requiresArg: true, describe: 'Set the target build stage to build' },
  },
  async run(args, cli) {
    const outputs = ((args['output'] as string[] | undefined) ?? []).map(parseOutput);
    if (outputs.length > 1) throw new UsageError('only one --output is supported', 'build');
    const quiet = args['quiet'] === true;
    const tags = (args['tag'] as string[] | undefined) ?? [];
    const labels: Record<string, string> = {};
    for (const l of (args['label'] as string[] | undefined) ?? []) {
      const eq = l.indexOf('=');
      labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
    }
    const authConfigs = await new DockerConfig(cli.settings.dockerConfigDir).allCredentials();
    const memory = args['memory'] === undefined ? undefined : parseBytes(String(args['memory']));
    const shm = args['shm-size'] === undefined ? undefined : parseBytes(String(args['shm-size']));
    const options: BuildOptions = {
      tags,
      buildArgs: buildArgsOf((args['build-arg'] as string[] | undefined) ?? [], cli.io.env),
      labels,
      noCache: args['no-cache'] === true,
      pull: args['pull'] === true,
      quiet,
      remove: args['rm'] !== false,
      forceRemove: args['force-rm'] === true,
      ...(typeof args['target'] === 'string' ? { target: args['target'] } : {}),
      ...(typeof args['platform'] === 'string' ? { platform: args['platform'] } : {}),
      ...(typeof args['network'] === 'string' ? { networkMode: args['network'] } : {}),
      ...(args['add-host'] ? { extraHosts: args['add-host'] as string[] } : {}),
      ...(args['cache-from'] ? { cacheFrom: args['cache-from'] as string[] } : {}),
      ...(memory !== undefined ? { memory } : {}),
      ...(shm !== undefined ? { shmSize: shm } : {}),
      ...(numberFlag(args, 'cpu-shares') !== undefined ? { cpuShares: numberFlag(args, 'cpu-shares')! } : {}),
      ...(numberFlag(args, 'cpu-period') !== undefined ? { cpuPeriod: numberFlag(args, 'cpu-period')! } : {}),
      ...(numberFlag(args, 'cpu-quota') !== undefined ? { cpuQuota: numberFlag(args, 'cpu-quota')! } : {}),
      ...(typeof args['cpuset-cpus'] === 'string' ? { cpuSetCpus: args['cpuset-cpus'] } : {}),
      ...(Object.keys(authConfigs).length ? { authConfigs } : {}),
    };
    const engine = await cli.engine();
    const context = await contextOf(cli, args._args[0]!, args['file'] as string | undefined);
    // With the result going to stdout as a tar, the build's own output moves to stderr.
    const toStdout = outputs[0]?.type === 'tar' && outputs[0].dest === '-';
    let streamedId: string | undefined;
    // dockerd's classic builder with q=1 sends the image ID only as its one stream line, no aux.
    async function* watched(messages: AsyncIterable<JsonMessage>): AsyncGenerator<JsonMessage> {
      for await (const m of messages) {
        streamedId = (quiet ? /^(sha256:[0-9a-f]{64})\n?$/.exec(m.stream ?? '')?.[1] : undefined) ?? streamedId;
        yield m;
      }
    }
    const build = engine.buildImage(context.stream, { ...options, dockerfile: context.dockerfile, signal: cli.signal });
    const aux = await showProgress(cli, watched(build), { to: toStdout ? 'stderr' : 'stdout', quiet }).finally(() => context.cleanup?.());
    const id = aux.map((a) => a['ID']).find((v): v is string => typeof v === 'string') ?? streamedId;
    if (!id) throw engineError('the build finished without reporting an image ID', EngineErrorCode.Remote, 'Internal');
    if (quiet) (toStdout ? cli.io.stderr : cli.io.stdout).write(`${id}\n`);
    if (typeof args['iidfile'] === 'string') await writeFile(args['iidfile'], id);
    if (outputs[0]) await exportResult(cli, engine, id, outputs[0]);
  },
};

/** `engine builder prune`. */
export const builderPruneCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'Remove build cache',
  args: [0, 0],
  options: {
    all: { type: 'boolean', alias: 'a', describe: 'Remove all unused build cache, not just dangling ones' },
    filter: { type: 'string', array: true, requiresArg: true, describe: 'Provide filter values (e.g. "until=24h")' },
    force: { type: 'boolean', alias: 'f', describe: 'Do not prompt for confirmation' },
  },
  async run(args, cli) {
    if (!(await confirm(cli, 'WARNING! This will remove all dangling build cache.\nAre you sure you want to continue?', args['force'] === true))) return;
    const result = await (await cli.engine()).pruneBuildCache({ signal: cli.signal, all: args['all'] === true, filters: filtersOf(args['filter']) });
    const deleted = result.CachesDeleted ?? [];
    if (deleted.length) cli.out(`Deleted build cache objects:\n${deleted.join('\n')}\n\n`);
    cli.out(`Total reclaimed space: ${humanSize(result.SpaceReclaimed)}\n`);
  },
};

