import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { formatReference, parseReference } from '@berth/oci';
import { UsageError } from '../../cli/cli-errors.js';
import type { CommandSpec } from '../../cli/command-spec.js';
import { DockerConfig, registryKeyOf } from '../../cli/docker-config.js';
import { writeArchive } from '../container/container-fs.js';
import { pullImage, showProgress } from './pull-image.js';

/** `engine pull`. */
export const pullCommand: CommandSpec = {
  usage: '[OPTIONS] NAME[:TAG|@DIGEST]',
  describe: 'Download an image from a registry',
  args: [1, 1],
  options: {
    'all-tags': { type: 'boolean', alias: 'a', describe: 'Download all tagged images in the repository' },
    platform: { type: 'string', requiresArg: true, describe: 'Set platform if server is multi-platform capable' },
    quiet: { type: 'boolean', alias: 'q', describe: 'Suppress verbose output' },
  },
  async run(args, cli) {
    const name = args._args[0]!;
    const allTags = args['all-tags'] === true;
    const ref = parseReference(name, { defaultTag: !allTags });
    if (allTags && (ref.tag || ref.digest)) throw new UsageError('tag can\'t be used with --all-tags/-a', 'pull');
    if (!allTags && !ref.tag && !ref.digest) cli.out('Using default tag: latest\n');
    await pullImage(cli, await cli.engine(), name, {
      to: 'stdout',
      quiet: args['quiet'] === true,
      allTags,
      ...(typeof args['platform'] === 'string' ? { platform: args['platform'] } : {}),
    });
    cli.out(`${formatReference(allTags ? { domain: ref.domain, path: ref.path } : ref)}\n`);
  },
};

/** `engine push`. */
export const pushCommand: CommandSpec = {
  usage: '[OPTIONS] NAME[:TAG]',
  describe: 'Upload an image to a registry',
  args: [1, 1],
  options: {
    'all-tags': { type: 'boolean', alias: 'a', describe: 'Push all tags of an image to the repository' },
    quiet: { type: 'boolean', alias: 'q', describe: 'Suppress verbose output' },
    platform: { type: 'string', requiresArg: true, describe: 'Push a platform-specific manifest as a single-platform image' },
  },
  async run(args, cli) {
    const name = args._args[0]!;
    const allTags = args['all-tags'] === true;
    const ref = parseReference(name, { defaultTag: !allTags });
    if (allTags && ref.tag) throw new UsageError('tag can\'t be used with --all-tags/-a', 'push');
    if (!allTags && !parseReference(name, { defaultTag: false }).tag && !ref.digest) cli.out('Using default tag: latest\n');
    const auth = await new DockerConfig(cli.settings.dockerConfigDir).credentials(registryKeyOf(name));
    await showProgress(
      cli,
      (await cli.engine()).pushImage(`${ref.domain}/${ref.path}`, {
        signal: cli.signal,
        ...(ref.tag && !allTags ? { tag: ref.tag } : {}),
        ...(auth ? { auth } : {}),
        ...(typeof args['platform'] === 'string' ? { platform: args['platform'] } : {}),
      }),
      { to: 'stdout', quiet: args['quiet'] === true },
    );
    if (args['quiet'] === true) cli.out(`${formatReference(allTags ? { domain: ref.domain, path: ref.path } : ref)}\n`);
  },
};

/** `engine save`. */
export const saveCommand: CommandSpec = {
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  describe: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
  args: [1, Infinity],
  options: {
    output: { type: 'string', alias: 'o', requiresArg: true, describe: 'Write to a file, instead of STDOUT' },
    platform: { type: 'string', requiresArg: true, describe: 'Save only the given platform variant' },
  },
  async run(args, cli) {
    const output = args['output'] as string | undefined;
    if (!output && cli.io.stdout.isTTY) throw new UsageError('cowardly refusing to save to a terminal. Use the -o flag or redirect', 'save');
    const tar = await (await cli.engine()).saveImages(args._args, { signal: cli.signal, ...(typeof args['platform'] === 'string' ? { platform: args['platform'] } : {}) });
    await writeArchive(cli, tar, output);
  },
};

async function inputArchive(cli: { io: { stdin: NodeJS.ReadStream } }, path: string | undefined, command: string): Promise<Readable> {
  if (path) {
    await stat(path).catch((err: Error) => {
      throw new UsageError(`open ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : err.message}`, command);
    });
    return createReadStream(path);
  }
  if (cli.io.stdin.isTTY) throw new UsageError('requested load from stdin, but stdin is empty', command);
  return cli.io.stdin;
}

/** `engine load`. */
export const loadCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'Load an image from a tar archive or STDIN',
  args: [0, 0],
  options: {
    input: { type: 'string', alias: 'i', requiresArg: true, describe: 'Read from tar archive file, instead of STDIN' },
    quiet: { type: 'boolean', alias: 'q', describe: 'Suppress the load output' },
    platform: { type: 'string', requiresArg: true, describe: 'Load only the given platform variant' },
  },
  async run(args, cli) {
    const archive = await inputArchive(cli, args['input'] as string | undefined, 'load');
    const quiet = args['quiet'] === true || cli.io.stdout.isTTY !== true;
    await showProgress(cli, (await cli.engine()).loadImages(archive, { signal: cli.signal, quiet, ...(typeof args['platform'] === 'string' ? { platform: args['platform'] } : {}) }), {
      to: 'stdout',
    });
  },
};

/** `engine import`. */
export const importCommand: CommandSpec = {
  usage: '[OPTIONS] file|URL|- [REPOSITORY[:TAG]]',
  describe: 'Import the contents from a tarball to create a filesystem image',
  args: [1, 2],
  options: {
    change: { type: 'string', array: true, alias: 'c', requiresArg: true, describe: 'Apply Dockerfile instruction to the created image' },
    message: { type: 'string', alias: 'm', requiresArg: true, describe: 'Set commit message for imported image' },
    platform: { type: 'string', requiresArg: true, describe: 'Set platform if server is multi-platform capable' },
  },
  async run(args, cli) {
    const [source, reference] = args._args;
    let input: Readable | string;
    if (source === '-') input = cli.io.stdin;
    else if (/^https?:\/\//.test(source!)) input = source!;
    else input = await inputArchive(cli, source, 'import');
    let repo: string | undefined;
    let tag: string | undefined;
    if (reference) {
      const ref = parseReference(reference);
      repo = `${ref.domain}/${ref.path}`;
      tag = ref.tag;
    }
    let id = '';
    for await (const m of (await cli.engine()).importImage({
      signal: cli.signal,
      source: input,
      changes: (args['change'] as string[] | undefined) ?? [],
      ...(repo ? { repo } : {}),
      ...(tag ? { tag } : {}),
      ...(typeof args['message'] === 'string' ? { message: args['message'] } : {}),
      ...(typeof args['platform'] === 'string' ? { platform: args['platform'] } : {}),
    })) {
      if (m.status) id = m.status;
    }
    cli.out(`${id}\n`);
  },
};
