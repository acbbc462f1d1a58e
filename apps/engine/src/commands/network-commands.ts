import type { Network, IpamConfig } from '@berth/engine';
import { UsageError } from '../cli/cli-errors.js';
import type { CommandSpec } from '../cli/command-spec.js';
import { goTimeString } from '../format/container-view.js';
import { formatList, type View } from '../format/list-format.js';
import { printInspect } from './container/container-info.js';
import { filtersOf } from '../cli/filter-flags.js';
import { confirm, forEachArgument } from './each-argument.js';

function networkView(truncate: boolean): View<Network> {
  return {
    ID: { header: 'NETWORK ID', value: (n) => (truncate ? n.Id.slice(0, 12) : n.Id) },
    Name: { header: 'NAME', value: (n) => n.Name },
    Driver: { header: 'DRIVER', value: (n) => n.Driver },
    Scope: { header: 'SCOPE', value: (n) => n.Scope },
    IPv4: { header: 'IPV4', value: (n) => String(n.EnableIPv4 !== false) },
    IPv6: { header: 'IPV6', value: (n) => String(n.EnableIPv6 === true) },
    Internal: { header: 'INTERNAL', value: (n) => String(n.Internal === true) },
    Labels: {
      header: 'LABELS',
      value: (n) =>
        Object.entries(n.Labels ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
    },
    Label: { header: 'LABEL', method: true, value: (n) => (name: string) => n.Labels?.[name] ?? '' },
    CreatedAt: { header: 'CREATED AT', value: (n) => goTimeString(Date.parse(n.Created) / 1000) },
  };
}

function keyValues(values: unknown, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of (values as string[] | undefined) ?? []) {
    const eq = v.indexOf('=');
    if (flag !== 'label' && eq <= 0) throw new UsageError(`invalid key/value pair format in --${flag}: ${v}`, 'network create');
    out[eq < 0 ? v : v.slice(0, eq)] = eq < 0 ? '' : v.slice(eq + 1);
  }
  return out;
}

/** `engine network create`. */
export const networkCreateCommand: CommandSpec = {
  usage: '[OPTIONS] NETWORK',
  describe: 'Create a network',
  args: [1, 1],
  options: {
    attachable: { type: 'boolean', describe: 'Enable manual container attachment' },
    'aux-address': { type: 'string', array: true, requiresArg: true, describe: 'Auxiliary IPv4 or IPv6 addresses used by Network driver' },
    driver: { type: 'string', alias: 'd', requiresArg: true, default: 'bridge', describe: 'Driver to manage the Network' },
    gateway: { type: 'string', array: true, requiresArg: true, describe: 'IPv4 or IPv6 Gateway for the master subnet' },
    internal: { type: 'boolean', describe: 'Restrict external access to the network' },
    'ip-range': { type: 'string', array: true, requiresArg: true, describe: 'Allocate container ip from a sub-range' },
    'ipam-driver': { type: 'string', requiresArg: true, default: 'default', describe: 'IP Address Management Driver' },
    ipv6: { type: 'boolean', describe: 'Enable or disable IPv6 networking' },
    label: { type: 'string', array: true, requiresArg: true, describe: 'Set metadata on a network' },
    opt: { type: 'string', array: true, alias: 'o', requiresArg: true, describe: 'Set driver specific options' },
    subnet: { type: 'string', array: true, requiresArg: true, describe: 'Subnet in CIDR format that represents a network segment' },
  },
  async run(args, cli) {
    const subnets = (args['subnet'] as string[] | undefined) ?? [];
    const gateways = (args['gateway'] as string[] | undefined) ?? [];
    const ranges = (args['ip-range'] as string[] | undefined) ?? [];
    if (gateways.length > subnets.length || ranges.length > subnets.length) throw new UsageError('every --gateway and --ip-range needs a --subnet', 'network create');
    const config: IpamConfig[] = subnets.map((Subnet, i) => ({ Subnet, ...(gateways[i] ? { Gateway: gateways[i] } : {}), ...(ranges[i] ? { IPRange: ranges[i] } : {}) }));
    const created = await (await cli.engine()).createNetwork(
      {
        Name: args._args[0]!,
        Driver: String(args['driver']),
        Internal: args['internal'] === true,
        Attachable: args['attachable'] === true,
        EnableIPv6: args['ipv6'] === true,
        IPAM: { Driver: String(args['ipam-driver']), Config: config, Options: {} },
        Options: keyValues(args['opt'], 'opt'),
        Labels: keyValues(args['label'], 'label'),
        CheckDuplicate: true,
      },
      { signal: cli.signal },
    );
    if (created.Warning) cli.err(`WARNING: ${created.Warning}\n`);
    cli.out(`${created.Id}\n`);
  },
};

/** `engine network ls`. */
export const networkLsCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'List networks',
  args: [0, 0],
  options: {
    filter: { type: 'string', array: true, alias: 'f', requiresArg: true, describe: "Provide filter values (e.g. 'driver=bridge')" },
    format: { type: 'string', requiresArg: true, describe: "Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template" },
    'no-trunc': { type: 'boolean', describe: 'Do not truncate the output' },
    quiet: { type: 'boolean', alias: 'q', describe: 'Only display network IDs' },
  },
  async run(args, cli) {
    const networks = await (await cli.engine()).listNetworks({ signal: cli.signal, filters: filtersOf(args['filter']) });
    networks.sort((a, b) => a.Name.localeCompare(b.Name));
    const format = args['quiet'] === true ? '{{.ID}}' : (args['format'] as string | undefined);
    cli.out(formatList(networks, networkView(args['no-trunc'] !== true), format, 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}'));
  },
};

/** `engine network inspect`. */
export const networkInspectCommand: CommandSpec = {
  usage: '[OPTIONS] NETWORK [NETWORK...]',
  describe: 'Display detailed information on one or more networks',
  args: [1, Infinity],
  options: {
    format: { type: 'string', alias: 'f', requiresArg: true, describe: "Format output using a custom template: 'json' or a Go template" },
    verbose: { type: 'boolean', alias: 'v', describe: 'Verbose output for diagnostics' },
  },
  async run(args, cli) {
    await printInspect(cli, args._args, ['network'], args['format'] as string | undefined, false);
  },
};

/** `engine network rm`. */
export const networkRmCommand: CommandSpec = {
  usage: 'NETWORK [NETWORK...]',
  describe: 'Remove one or more networks',
  args: [1, Infinity],
  options: { force: { type: 'boolean', alias: 'f', describe: 'Do not error if the network does not exist' } },
  async run(args, cli) {
    const engine = await cli.engine();
    await forEachArgument(cli, args._args, async (name) => {
      try {
        await engine.removeNetwork(name, { signal: cli.signal });
      } catch (err) {
        if (!(args['force'] === true && (err as { kind?: string }).kind === 'NotFound')) throw err;
      }
      return name;
    });
  },
};

/** `engine network connect`. */
export const networkConnectCommand: CommandSpec = {
  usage: '[OPTIONS] NETWORK CONTAINER',
  describe: 'Connect a container to a network',
  args: [2, 2],
  options: {
    alias: { type: 'string', array: true, requiresArg: true, describe: 'Add network-scoped alias for the container' },
    'driver-opt': { type: 'string', array: true, requiresArg: true, describe: 'driver options for the network' },
    ip: { type: 'string', requiresArg: true, describe: 'IPv4 address (e.g., "172.30.100.104")' },
    ip6: { type: 'string', requiresArg: true, describe: 'IPv6 address (e.g., "2001:db8::33")' },
    link: { type: 'string', array: true, requiresArg: true, describe: 'Add link to another container' },
  },
  async run(args, cli) {
    const [network, container] = args._args as [string, string];
    const ip = args['ip'] as string | undefined;
    const ip6 = args['ip6'] as string | undefined;
    await (await cli.engine()).connectNetwork(
      network,
      {
        Container: container,
        EndpointConfig: {
          ...(args['alias'] ? { Aliases: args['alias'] as string[] } : {}),
          ...(args['link'] ? { Links: args['link'] as string[] } : {}),
          ...(ip || ip6 ? { IPAMConfig: { ...(ip ? { IPv4Address: ip } : {}), ...(ip6 ? { IPv6Address: ip6 } : {}) } } : {}),
          ...(args['driver-opt'] ? { DriverOpts: keyValues(args['driver-opt'], 'driver-opt') } : {}),
        },
      },
      { signal: cli.signal },
    );
  },
};

/** `engine network disconnect`. */
export const networkDisconnectCommand: CommandSpec = {
  usage: '[OPTIONS] NETWORK CONTAINER',
  describe: 'Disconnect a container from a network',
  args: [2, 2],
  options: { force: { type: 'boolean', alias: 'f', describe: 'Force the container to disconnect from a network' } },
  async run(args, cli) {
    const [network, container] = args._args as [string, string];
    await (await cli.engine()).disconnectNetwork(network, { Container: container, Force: args['force'] === true }, { signal: cli.signal });
  },
};

/** `engine network prune`. */
export const networkPruneCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'Remove all unused networks',
  args: [0, 0],
  options: {
    filter: { type: 'string', array: true, requiresArg: true, describe: 'Provide filter values (e.g. "until=<timestamp>")' },
    force: { type: 'boolean', alias: 'f', describe: 'Do not prompt for confirmation' },
  },
  async run(args, cli) {
    if (!(await confirm(cli, 'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?', args['force'] === true))) return;
    const result = await (await cli.engine()).pruneNetworks({ signal: cli.signal, filters: filtersOf(args['filter']) });
    const deleted = result.NetworksDeleted ?? [];
    if (deleted.length) cli.out(`Deleted Networks:\n${deleted.join('\n')}\n`);
  },
};
