import { createWriteStream } from 'node:fs';
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { hasKind } from '@berth/errors';
import type { ContainerPathStat, Engine } from '@berth/engine';
import { EngineErrorCode, engineError } from '@berth/engine/engine';
import type { Cli } from '../../cli/cli.js';
import { UsageError } from '../../cli/cli-errors.js';
import type { CommandSpec } from '../../cli/command-spec.js';
import { humanSize } from '../../format/units.js';

// Go's os.FileMode type bits, as the path stat header carries them.
const modeDir = 2 ** 31;

function isDirStat(s: ContainerPathStat): boolean {
  return s.mode >= modeDir;
}

/** `CONTAINER:PATH` or a local path; a colon after a slash is part of a local path, as docker reads it. */
function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.')) return { path: arg };
  const colon = arg.indexOf(':');
  if (colon <= 0) return { path: arg };
  return { container: arg.slice(0, colon), path: arg.slice(colon + 1) };
}

async function statOrUndefined(engine: Engine, id: string, path: string, signal: AbortSignal): Promise<ContainerPathStat | undefined> {
  try {
    return await engine.statContainerPath(id, path, { signal });
  } catch (err) {
    if (hasKind(err, 'NotFound')) return undefined;
    throw err;
  }
}

/** A pass-through that counts the bytes going by (for docker's "Successfully copied"). */
function byteCounter(): Transform & { bytes: number } {
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      counter.bytes += chunk.length;
      callback(null, chunk);
    },
  }) as Transform & { bytes: number };
  counter.bytes = 0;
  return counter;
}

async function countingPipe(source: Readable, sink: Writable): Promise<number> {
  const counter = byteCounter();
  await pipeline(source, counter, sink);
  return counter.bytes;
}

async function copyFromContainer(cli: Cli, engine: Engine, container: string, path: string, dest: string, quiet: boolean): Promise<void> {
  // Everything that waits is done before the archive is asked for, so it is read as it comes.
  if (dest === '-') {
    const { archive } = await engine.getContainerArchive(container, path, { signal: cli.signal });
    await pipeline(archive, cli.io.stdout, { end: false });
    return;
  }
  const { extract } = await import('tar');
  const target = resolve(dest);
  const existing = await stat(target).catch(() => undefined);
  const preserveOwner = process.getuid?.() === 0;
  let bytes: number;
  if (existing?.isDirectory()) {
    const { archive } = await engine.getContainerArchive(container, path, { signal: cli.signal });
    bytes = await countingPipe(archive, extract({ cwd: target, preserveOwner }) as unknown as Writable);
  } else {
    // A new name: unpack beside it, then move the copied root into place.
    const parent = dirname(target);
    const parentStat = await stat(parent).catch(() => undefined);
    if (!parentStat?.isDirectory()) throw engineError(`destination directory ${parent} does not exist`, EngineErrorCode.PathNotFound, 'NotFound');
    const staging = await mkdtemp(join(parent, '.engine-cp-'));
    try {
      const { archive } = await engine.getContainerArchive(container, path, { signal: cli.signal });
      bytes = await countingPipe(archive, extract({ cwd: staging, preserveOwner }) as unknown as Writable);
      const source = path.endsWith('/.') ? staging : join(staging, basename(path.replace(/\/+$/, '')) || '.');
      if (existing && !existing.isDirectory() && (await stat(source)).isDirectory()) throw engineError(`cannot copy a directory to the file ${dest}`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
      await rename(source, target);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
  if (!quiet && cli.io.stderr.isTTY) cli.err(`Successfully copied ${humanSize(bytes)} to ${dest}\n`);
}

async function copyToContainer(cli: Cli, engine: Engine, src: string, container: string, path: string, options: { copyUIDGID: boolean; followLink: boolean; quiet: boolean }): Promise<void> {
  const destStat = await statOrUndefined(engine, container, path, cli.signal);
  if (src === '-') {
    if (!destStat || !isDirStat(destStat)) throw engineError(`destination "${container}:${path}" must be a directory`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
    await engine.putContainerArchive(container, path, cli.io.stdin, { signal: cli.signal, copyUIDGID: options.copyUIDGID });
    return;
  }
  const source = resolve(src);
  const srcStat = await stat(source).catch(() => undefined);
  if (!srcStat) throw engineError(`could not find the file ${src} in the local filesystem`, EngineErrorCode.PathNotFound, 'NotFound');
  const { create } = await import('tar');
  const contentsOnly = src.endsWith('/.');
  let into = path;
  let rootName: string | undefined;
  if (destStat && !isDirStat(destStat) && srcStat.isDirectory()) {
    throw engineError(`cannot copy a directory to the file ${container}:${path}`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
  }
  if (!destStat || !isDirStat(destStat)) {
    // A new name (or a file to overwrite): extract into the parent with the root renamed.
    into = path.replace(/\/+$/, '').replace(/\/[^/]*$/, '') || '/';
    rootName = basename(path.replace(/\/+$/, ''));
    if (path.endsWith('/') && !destStat) throw engineError(`destination directory ${container}:${path} does not exist`, EngineErrorCode.PathNotFound, 'NotFound');
  }
  const base = basename(source);
  const tar = create(
    {
      cwd: contentsOnly ? source : dirname(source),
      follow: options.followLink,
      portable: !options.copyUIDGID,
      ...(rootName !== undefined && !contentsOnly
        ? {
            onWriteEntry: (entry: { path: string }) => {
              if (entry.path === base) entry.path = rootName!;
              else if (entry.path.startsWith(`${base}/`)) entry.path = rootName + entry.path.slice(base.length);
            },
          }
        : {}),
    },
    [contentsOnly ? '.' : base],
  );
  // node-tar's pack stream is not a Node stream; piping it through a Transform makes it one.
  const body = byteCounter();
  tar.on('error', (err: unknown) => body.destroy(err as Error));
  tar.pipe(body);
  await engine.putContainerArchive(container, into, body, { signal: cli.signal, copyUIDGID: options.copyUIDGID });
  if (!options.quiet && cli.io.stderr.isTTY) cli.err(`Successfully copied ${humanSize(body.bytes)} to ${container}:${path}\n`);
}

/** `engine cp`. */
export const cpCommand: CommandSpec = {
  usage: '[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n        engine cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
  describe: 'Copy files/folders between a container and the local filesystem',
  args: [2, 2],
  options: {
    archive: { type: 'boolean', alias: 'a', describe: 'Archive mode (copy all uid/gid information)' },
    'follow-link': { type: 'boolean', alias: 'L', describe: 'Always follow symbol link in SRC_PATH' },
    quiet: { type: 'boolean', alias: 'q', describe: 'Suppress progress output during copy' },
  },
  async run(args, cli) {
    const [srcArg, destArg] = args._args as [string, string];
    const src = splitCpArg(srcArg);
    const dest = splitCpArg(destArg);
    if (src.container && dest.container) throw new UsageError('copying between containers is not supported', 'cp');
    if (!src.container && !dest.container) throw new UsageError('must specify at least one container source', 'cp');
    const engine = await cli.engine();
    const quiet = args['quiet'] === true;
    if (src.container) {
      if (!src.path) throw new UsageError('source path must not be empty', 'cp');
      await copyFromContainer(cli, engine, src.container, src.path, dest.path, quiet);
    } else {
      if (!dest.path) throw new UsageError('destination path must not be empty', 'cp');
      await copyToContainer(cli, engine, src.path, dest.container!, dest.path, { copyUIDGID: args['archive'] === true, followLink: args['follow-link'] === true, quiet });
    }
  },
};

/** `engine commit`. */
export const commitCommand: CommandSpec = {
  usage: '[OPTIONS] CONTAINER [REPOSITORY[:TAG]]',
  describe: "Create a new image from a container's changes",
  args: [1, 2],
  options: {
    author: { type: 'string', alias: 'a', requiresArg: true, describe: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
    change: { type: 'string', array: true, alias: 'c', requiresArg: true, describe: 'Apply Dockerfile instruction to the created image' },
    message: { type: 'string', alias: 'm', requiresArg: true, describe: 'Commit message' },
    pause: { type: 'boolean', alias: 'p', default: true, describe: 'Pause container during commit' },
  },
  async run(args, cli) {
    const [container, reference] = args._args;
    let repo: string | undefined;
    let tag: string | undefined;
    if (reference) {
      const at = reference.lastIndexOf(':');
      if (at > reference.lastIndexOf('/')) {
        repo = reference.slice(0, at);
        tag = reference.slice(at + 1);
      } else {
        repo = reference;
      }
    }
    const result = await (await cli.engine()).commitContainer({
      signal: cli.signal,
      container: container!,
      pause: args['pause'] !== false,
      changes: (args['change'] as string[] | undefined) ?? [],
      ...(repo ? { repo } : {}),
      ...(tag ? { tag } : {}),
      ...(typeof args['message'] === 'string' ? { comment: args['message'] } : {}),
      ...(typeof args['author'] === 'string' ? { author: args['author'] } : {}),
    });
    cli.out(`${result.Id}\n`);
  },
};

/** `engine diff`. */
export const diffCommand: CommandSpec = {
  usage: 'CONTAINER',
  describe: "Inspect changes to files or directories on a container's filesystem",
  args: [1, 1],
  async run(args, cli) {
    const changes = await (await cli.engine()).containerChanges(args._args[0]!, { signal: cli.signal });
    for (const c of changes) cli.out(`${c.Kind === 1 ? 'A' : c.Kind === 2 ? 'D' : 'C'} ${c.Path}\n`);
  },
};

/** Where a tar goes: `-o FILE`, else stdout unless that is a terminal (docker refuses then). */
export async function writeArchive(cli: Cli, archive: Readable, output: string | undefined): Promise<void> {
  if (output) {
    await pipeline(archive, createWriteStream(output));
    return;
  }
  if (cli.io.stdout.isTTY) {
    archive.destroy();
    throw new UsageError('cowardly refusing to save to a terminal. Use the -o flag or redirect', '');
  }
  await pipeline(archive, cli.io.stdout, { end: false });
}

/** `engine export`. */
export const exportCommand: CommandSpec = {
  usage: '[OPTIONS] CONTAINER',
  describe: "Export a container's filesystem as a tar archive",
  args: [1, 1],
  options: { output: { type: 'string', alias: 'o', requiresArg: true, describe: 'Write to a file, instead of STDOUT' } },
  async run(args, cli) {
    const output = args['output'] as string | undefined;
    if (!output && cli.io.stdout.isTTY) throw new UsageError('cowardly refusing to save to a terminal. Use the -o flag or redirect', 'export');
    const tar = await (await cli.engine()).exportContainer(args._args[0]!, { signal: cli.signal });
    await writeArchive(cli, tar, output);
  },
};
