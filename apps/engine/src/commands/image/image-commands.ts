import { parseReference } from '@berth/oci';
import type { CommandSpec } from '../../cli/command-spec.js';
import { historyView, imageRows, imageView } from '../../format/image-view.js';
import { formatList } from '../../format/list-format.js';
import { humanSize } from '../../format/units.js';
import { printInspect } from '../container/container-info.js';
import { filtersOf } from '../../cli/filter-flags.js';
import { confirm, forEachArgument } from '../each-argument.js';

const formatOption = { type: 'string', requiresArg: true, describe: "Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template" } as const;

/** `engine images`. */
export const imagesCommand: CommandSpec = {
  usage: '[OPTIONS] [REPOSITORY[:TAG]]',
  describe: 'List images',
  args: [0, 1],
  options: {
    all: { type: 'boolean', alias: 'a', describe: 'Show all images (default hides intermediate images)' },
    digests: { type: 'boolean', describe: 'Show digests' },
    filter: { type: 'string', array: true, alias: 'f', requiresArg: true, describe: 'Filter output based on conditions provided' },
    format: formatOption,
    'no-trunc': { type: 'boolean', describe: "Don't truncate output" },
    quiet: { type: 'boolean', alias: 'q', describe: 'Only show image IDs' },
  },
  async run(args, cli) {
    const filters = filtersOf(args['filter']);
    if (args._args[0]) filters['reference'] = [...(filters['reference'] ?? []), args._args[0]];
    const images = await (await cli.engine()).listImages({ signal: cli.signal, all: args['all'] === true, filters, digests: args['digests'] === true });
    images.sort((a, b) => b.Created - a.Created);
    const view = imageView({ truncate: args['no-trunc'] !== true });
    const table = args['digests'] === true
      ? 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}'
      : 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
    const format = args['quiet'] === true ? '{{.ID}}' : (args['format'] as string | undefined);
    cli.out(formatList(imageRows(images), view, format, table));
  },
};

/** `engine tag`. */
export const tagCommand: CommandSpec = {
  usage: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]',
  describe: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
  args: [2, 2],
  async run(args, cli) {
    const [source, target] = args._args as [string, string];
    const ref = parseReference(target);
    if (ref.digest) throw new Error(`refusing to create a tag with a digest reference: ${target}`);
    await (await cli.engine()).tagImage(source, { repo: `${ref.domain}/${ref.path}`, tag: ref.tag ?? 'latest' }, { signal: cli.signal });
  },
};

/** `engine rmi`. */
export const rmiCommand: CommandSpec = {
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  describe: 'Remove one or more images',
  args: [1, Infinity],
  options: {
    force: { type: 'boolean', alias: 'f', describe: 'Force removal of the image' },
    'no-prune': { type: 'boolean', describe: 'Do not delete untagged parents' },
  },
  async run(args, cli) {
    const engine = await cli.engine();
    await forEachArgument(cli, args._args, async (name) => {
      const items = await engine.removeImage(name, { signal: cli.signal, force: args['force'] === true, noprune: args['no-prune'] === true });
      for (const item of items) {
        if (item.Untagged) cli.out(`Untagged: ${item.Untagged}\n`);
        if (item.Deleted) cli.out(`Deleted: ${item.Deleted}\n`);
      }
    });
  },
};

/** `engine history`. */
export const historyCommand: CommandSpec = {
  usage: '[OPTIONS] IMAGE',
  describe: 'Show the history of an image',
  args: [1, 1],
  options: {
    format: formatOption,
    human: { type: 'boolean', alias: 'H', default: true, describe: 'Print sizes and dates in human readable format' },
    'no-trunc': { type: 'boolean', describe: "Don't truncate output" },
    quiet: { type: 'boolean', alias: 'q', describe: 'Only show image IDs' },
    platform: { type: 'string', requiresArg: true, describe: 'Show history for the given platform' },
  },
  async run(args, cli) {
    const history = await (await cli.engine()).imageHistory(args._args[0]!, { signal: cli.signal, ...(typeof args['platform'] === 'string' ? { platform: args['platform'] } : {}) });
    const view = historyView({ truncate: args['no-trunc'] !== true, human: args['human'] !== false });
    const format = args['quiet'] === true ? '{{.ID}}' : (args['format'] as string | undefined);
    cli.out(formatList(history, view, format, 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}'));
  },
};

/** `engine image inspect`. */
export const imageInspectCommand: CommandSpec = {
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  describe: 'Display detailed information on one or more images',
  args: [1, Infinity],
  options: { format: { type: 'string', alias: 'f', requiresArg: true, describe: "Format output using a custom template: 'json' or a Go template" } },
  async run(args, cli) {
    await printInspect(cli, args._args, ['image'], args['format'] as string | undefined, false);
  },
};

/** `engine image prune`. */
export const imagePruneCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'Remove unused images',
  args: [0, 0],
  options: {
    all: { type: 'boolean', alias: 'a', describe: 'Remove all unused images, not just dangling ones' },
    filter: { type: 'string', array: true, requiresArg: true, describe: 'Provide filter values (e.g. "until=<timestamp>")' },
    force: { type: 'boolean', alias: 'f', describe: 'Do not prompt for confirmation' },
  },
  async run(args, cli) {
    const all = args['all'] === true;
    const warning = all
      ? 'WARNING! This will remove all images without at least one container associated to them.'
      : 'WARNING! This will remove all dangling images.';
    if (!(await confirm(cli, `${warning}\nAre you sure you want to continue?`, args['force'] === true))) return;
    const filters = { ...filtersOf(args['filter']), dangling: [all ? 'false' : 'true'] };
    const result = await (await cli.engine()).pruneImages({ signal: cli.signal, filters });
    const deleted = result.ImagesDeleted ?? [];
    if (deleted.length) {
      cli.out('Deleted Images:\n');
      for (const d of deleted) cli.out(d.Untagged ? `untagged: ${d.Untagged}\n` : `deleted: ${d.Deleted}\n`);
      cli.out('\n');
    }
    cli.out(`Total reclaimed space: ${humanSize(result.SpaceReclaimed)}\n`);
  },
};
