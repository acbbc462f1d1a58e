import type { Volume } from '@berth/engine';
import type { CommandSpec } from '../cli/command-spec.js';
import { formatList, type View } from '../format/list-format.js';
import { humanSize } from '../format/units.js';
import { printInspect } from './container/container-info.js';
import { filtersOf } from '../cli/filter-flags.js';
import { confirm, forEachArgument } from './each-argument.js';

const volumeView: View<Volume> = {
  Name: { header: 'VOLUME NAME', value: (v) => v.Name },
  Driver: { header: 'DRIVER', value: (v) => v.Driver },
  Scope: { header: 'SCOPE', value: (v) => v.Scope },
  Mountpoint: { header: 'MOUNTPOINT', value: (v) => v.Mountpoint },
  Labels: {
    header: 'LABELS',
    value: (v) =>
      Object.entries(v.Labels ?? {})
        .map(([k, x]) => `${k}=${x}`)
        .join(','),
  },
  Label: { header: 'LABEL', method: true, value: (v) => (name: string) => v.Labels?.[name] ?? '' },
  Links: { header: 'LINKS', value: (v) => (v.UsageData ? String(v.UsageData.RefCount) : 'N/A') },
  Size: { header: 'SIZE', value: (v) => (v.UsageData && v.UsageData.Size >= 0 ? humanSize(v.UsageData.Size) : 'N/A') },
  Group: { header: 'GROUP', value: () => 'N/A' },
  Availability: { header: 'AVAILABILITY', value: () => 'N/A' },
  Status: { header: 'STATUS', value: () => 'N/A' },
};

function keyValues(values: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of (values as string[] | undefined) ?? []) {
    const eq = v.indexOf('=');
    out[eq < 0 ? v : v.slice(0, eq)] = eq < 0 ? '' : v.slice(eq + 1);
  }
  return out;
}

/** `engine volume create`. */
export const volumeCreateCommand: CommandSpec = {
  usage: '[OPTIONS] [VOLUME]',
  describe: 'Create a volume',
  args: [0, 1],
  options: {
    driver: { type: 'string', alias: 'd', requiresArg: true, default: 'local', describe: 'Specify volume driver name' },
    label: { type: 'string', array: true, requiresArg: true, describe: 'Set metadata for a volume' },
    name: { type: 'string', requiresArg: true, describe: 'Specify volume name' },
    opt: { type: 'string', array: true, alias: 'o', requiresArg: true, describe: 'Set driver specific options' },
  },
  async run(args, cli) {
    const name = (args._args[0] ?? args['name']) as string | undefined;
    const volume = await (await cli.engine()).createVolume(
      { Driver: String(args['driver']), DriverOpts: keyValues(args['opt']), Labels: keyValues(args['label']), ...(name ? { Name: name } : {}) },
      { signal: cli.signal },
    );
    cli.out(`${volume.Name}\n`);
  },
};

/** `engine volume ls`. */
export const volumeLsCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'List volumes',
  args: [0, 0],
  options: {
    filter: { type: 'string', array: true, alias: 'f', requiresArg: true, describe: "Provide filter values (e.g. 'dangling=true')" },
    format: { type: 'string', requiresArg: true, describe: "Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template" },
    quiet: { type: 'boolean', alias: 'q', describe: 'Only display volume names' },
  },
  async run(args, cli) {
    const result = await (await cli.engine()).listVolumes({ signal: cli.signal, filters: filtersOf(args['filter']) });
    for (const w of result.Warnings ?? []) cli.err(`WARNING: ${w}\n`);
    const volumes = [...result.Volumes].sort((a, b) => a.Name.localeCompare(b.Name));
    const format = args['quiet'] === true ? '{{.Name}}' : (args['format'] as string | undefined);
    cli.out(formatList(volumes, volumeView, format, 'table {{.Driver}}\t{{.Name}}'));
  },
};

/** `engine volume inspect`. */
export const volumeInspectCommand: CommandSpec = {
  usage: '[OPTIONS] VOLUME [VOLUME...]',
  describe: 'Display detailed information on one or more volumes',
  args: [1, Infinity],
  options: { format: { type: 'string', alias: 'f', requiresArg: true, describe: "Format output using a custom template: 'json' or a Go template" } },
  async run(args, cli) {
    await printInspect(cli, args._args, ['volume'], args['format'] as string | undefined, false);
  },
};

/** `engine volume rm`. */
export const volumeRmCommand: CommandSpec = {
  usage: '[OPTIONS] VOLUME [VOLUME...]',
  describe: 'Remove one or more volumes',
  args: [1, Infinity],
  options: { force: { type: 'boolean', alias: 'f', describe: 'Force the removal of one or more volumes' } },
  async run(args, cli) {
    const engine = await cli.engine();
    await forEachArgument(cli, args._args, async (name) => {
      await engine.removeVolume(name, { signal: cli.signal, force: args['force'] === true });
      return name;
    });
  },
};

/** `engine volume prune`. */
export const volumePruneCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'Remove unused local volumes',
  args: [0, 0],
  options: {
    all: { type: 'boolean', alias: 'a', describe: 'Remove all unused volumes, not just anonymous ones' },
    filter: { type: 'string', array: true, requiresArg: true, describe: "Provide filter values (e.g. 'label=<label>')" },
    force: { type: 'boolean', alias: 'f', describe: 'Do not prompt for confirmation' },
  },
  async run(args, cli) {
    const all = args['all'] === true;
    const warning = all
      ? 'WARNING! This will remove all local volumes not used by at least one container.'
      : 'WARNING! This will remove anonymous local volumes not used by at least one container.';
    if (!(await confirm(cli, `${warning}\nAre you sure you want to continue?`, args['force'] === true))) return;
    const filters = { ...filtersOf(args['filter']), ...(all ? { all: ['true'] } : {}) };
    const result = await (await cli.engine()).pruneVolumes({ signal: cli.signal, filters });
    const deleted = result.VolumesDeleted ?? [];
    if (deleted.length) cli.out(`Deleted Volumes:\n${deleted.join('\n')}\n\n`);
    cli.out(`Total reclaimed space: ${humanSize(result.SpaceReclaimed)}\n`);
  },
};
