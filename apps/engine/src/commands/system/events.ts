import type { EventMessage } from '@berth/engine';
import { UsageError } from '../../cli/cli-errors.js';
import type { CommandSpec } from '../../cli/command-spec.js';
import { formatObject } from '../../format/list-format.js';
import { parseTimestamp } from '../../format/units.js';
import { filtersOf } from '../../cli/filter-flags.js';

/** Go's RFC3339NanoFixed in the local zone: `2006-01-02T15:04:05.000000000Z07:00`. */
export function rfc3339NanoFixed(timeNano: number): string {
  const ms = Math.floor(timeNano / 1e6);
  const d = new Date(ms);
  const offset = -d.getTimezoneOffset();
  const local = new Date(ms + offset * 60_000).toISOString().slice(0, 19);
  const nanos = String(Math.floor(timeNano % 1e9)).padStart(9, '0');
  const zone = offset === 0 ? 'Z' : `${offset > 0 ? '+' : '-'}${String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0')}:${String(Math.abs(offset) % 60).padStart(2, '0')}`;
  return `${local}.${nanos}${zone}`;
}

/** docker's default event line: time, type, action, actor, and the sorted attributes. */
export function eventLine(e: EventMessage): string {
  const time = e.timeNano ? rfc3339NanoFixed(e.timeNano) : e.time ? rfc3339NanoFixed(e.time * 1e9) : '';
  const attrs = Object.keys(e.Actor?.Attributes ?? {})
    .sort()
    .map((k) => `${k}=${e.Actor.Attributes[k]}`);
  return `${time ? `${time} ` : ''}${e.Type} ${e.Action} ${e.Actor?.ID ?? ''}${attrs.length ? ` (${attrs.join(', ')})` : ''}\n`;
}

/**
 * What a `--format` template sees: docker runs it on its events.Message, whose Go fields for the
 * JSON's `scope`, `time` and `timeNano` are `.Scope`, `.Time` and `.TimeNano`.
 */
export function eventTemplateData(e: EventMessage): EventMessage & { readonly Scope: string; readonly Time: number; readonly TimeNano: number } {
  return { ...e, Scope: e.scope, Time: e.time, TimeNano: e.timeNano };
}

/** `engine events`. */
export const eventsCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'Get real time events from the engine',
  args: [0, 0],
  options: {
    filter: { type: 'string', array: true, alias: 'f', requiresArg: true, describe: 'Filter output based on conditions provided' },
    format: { type: 'string', requiresArg: true, describe: "Format output using a custom template: 'json' or a Go template" },
    since: { type: 'string', requiresArg: true, describe: 'Show all events created since timestamp' },
    until: { type: 'string', requiresArg: true, describe: 'Stream events until this timestamp' },
  },
  async run(args, cli) {
    const time = (flag: string) => {
      if (args[flag] === undefined) return undefined;
      const t = parseTimestamp(String(args[flag]));
      if (t === undefined) throw new UsageError(`invalid value for "--${flag}": ${String(args[flag])}`, 'events');
      return t;
    };
    const since = time('since');
    const until = time('until');
    const format = args['format'] as string | undefined;
    const events = (await cli.engine()).events({
      signal: cli.signal,
      filters: filtersOf(args['filter']),
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
    });
    try {
      for await (const e of events) cli.out(format ? formatObject(format === 'json' ? e : eventTemplateData(e), format) : eventLine(e));
    } catch (err) {
      if (!cli.signal.aborted) throw err;
    }
  },
};
