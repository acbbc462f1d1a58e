import type { Argv } from 'yargs';
import { ErrorKind } from '@berth/errors';
import { MachineError, MachineState, type HostSummary } from '@berth/machine';
import type { App } from '../app.js';
import { alignColumns, parseFormat, renderTemplate, templateFields } from '../format/template.js';

const defaultFormat = 'table {{.Name}}\t{{.Active}}\t{{.DriverName}}\t{{.State}}\t{{.URL}}\t{{.CPU}}\t{{.Memory}}\t{{.DockerVersion}}\t{{.Error}}';

const headers: Record<string, string> = {
  Name: 'NAME',
  Active: 'ACTIVE',
  ActiveHost: 'ACTIVE_HOST',
  DriverName: 'DRIVER',
  State: 'STATE',
  URL: 'URL',
  CPU: 'CPU',
  Memory: 'MEMORY',
  DockerVersion: 'DOCKER',
  Error: 'ERRORS',
  ResponseTime: 'RESPONSE',
  EngineLabels: 'LABELS',
};

/** One `ls` row: docker-machine's template fields plus CPU and Memory. */
export interface LsRow {
  readonly Name: string;
  readonly Active: string;
  readonly ActiveHost: boolean;
  readonly DriverName: string;
  readonly State: string;
  readonly URL: string;
  readonly CPU: string;
  readonly Memory: string;
  readonly DockerVersion: string;
  readonly Error: string;
  readonly ResponseTime: string;
  readonly EngineLabels: readonly string[];
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 10 || unit === 0 ? Math.round(value) : value.toFixed(1)}${units[unit]}`;
}

/** The row of a host summary; ACTIVE is `*` for the running host whose URL is $DOCKER_HOST. */
export function lsRow(summary: HostSummary, dockerHost: string | undefined, elapsedMs: number): LsRow {
  const active = summary.state === MachineState.Running && !!summary.url && summary.url === dockerHost;
  return {
    Name: summary.name,
    Active: active ? '*' : '-',
    ActiveHost: active,
    DriverName: summary.driverName,
    State: summary.state,
    URL: summary.url,
    CPU: summary.cpu ? `${summary.cpu.used.toFixed(2)}/${summary.cpu.total}` : '-',
    Memory: summary.memory ? `${bytes(summary.memory.used)}/${bytes(summary.memory.total)}` : '-',
    DockerVersion: summary.engineVersion || (summary.state === MachineState.Running ? 'Unknown' : ''),
    Error: summary.error,
    ResponseTime: `${Math.round(elapsedMs)}ms`,
    EngineLabels: summary.labels,
  };
}

/** `--filter` values, by key: the same key ORs, different keys AND (docker-machine). */
export function parseFilters(values: readonly string[]): Map<string, string[]> {
  const filters = new Map<string, string[]>();
  for (const value of values) {
    const at = value.indexOf('=');
    const key = at < 0 ? '' : value.slice(0, at).toLowerCase();
    if (!['driver', 'state', 'name', 'label'].includes(key)) {
      throw new MachineError(`unknown filter ${JSON.stringify(value)} (use driver=, state=, name= or label=)`, { code: 'ERR_FILTER', kind: ErrorKind.InvalidArgument });
    }
    filters.set(key, [...(filters.get(key) ?? []), value.slice(at + 1)]);
  }
  return filters;
}

function matches(row: LsRow, filters: Map<string, string[]>): boolean {
  for (const [key, values] of filters) {
    const ok = values.some((v) => {
      switch (key) {
        case 'driver':
          return row.DriverName.toLowerCase() === v.toLowerCase();
        case 'state':
          return row.State.toLowerCase() === v.toLowerCase();
        case 'name':
          return new RegExp(v).test(row.Name);
        default:
          return row.EngineLabels.includes(v);
      }
    });
    if (!ok) return false;
  }
  return true;
}

/** `machine ls`: every host with its state, URL, CPU and memory use and engine version, queried at once. */
export function lsCommand(app: () => App) {
  return {
    command: 'ls',
    describe: 'List hosts',
    builder: (y: Argv) =>
      y
        .option('quiet', { alias: 'q', type: 'boolean', describe: 'only names' })
        .option('filter', { type: 'array', string: true, describe: 'driver=, state=, name= (regexp) or label=k=v; repeat to OR a key, combine keys to AND' })
        .option('timeout', { alias: 't', type: 'number', default: 10, describe: 'seconds to wait for each host' })
        .option('format', { alias: 'f', type: 'string', describe: 'Go template (a "table" prefix adds a header), e.g. "{{.Name}} {{.State}}"' }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      const filters = parseFilters((argv.filter as string[] | undefined) ?? []);
      const timeoutMs = Math.max(0.1, Number(argv.timeout)) * 1000;
      const names = await a.store.list();
      const quiet = argv.quiet === true;
      // Only the name filter and -q can do without asking every host.
      const needsHosts = !quiet || [...filters.keys()].some((k) => k !== 'name');
      const rows = await Promise.all(
        names.map(async (name) => {
          const started = performance.now();
          const summary: HostSummary = needsHosts
            ? await a.manager.summary(name, { timeoutMs, resources: !quiet })
            : { name, driverName: '', state: MachineState.None, url: '', engineVersion: '', error: '', labels: [] };
          return lsRow(summary, a.io.env.DOCKER_HOST, performance.now() - started);
        }),
      );
      const shown = rows.filter((r) => matches(r, filters));
      if (quiet) {
        for (const r of shown) a.out(r.Name);
        return;
      }
      const format = parseFormat((argv.format as string | undefined) ?? defaultFormat);
      const lines = shown.map((r) => renderTemplate(format.template, r));
      if (format.table) {
        const labels = Object.fromEntries(templateFields(format.template).map((f) => [f, headers[f] ?? f.toUpperCase()]));
        a.io.stdout.write(alignColumns([renderTemplate(format.template, labels), ...lines]));
      } else {
        for (const line of lines) a.out(line);
      }
    },
  };
}
