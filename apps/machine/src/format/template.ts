/**
 * A small subset of Go's text/template, enough for docker-machine's `--format` strings:
 * `{{.Field}}` and `{{.A.B}}` paths, `{{json .}}` / `{{json .Field}}`, `{{upper .F}}`,
 * `{{lower .F}}`, and the `table` prefix (a header row, columns aligned). `\t` and `\n` written
 * as two characters are unescaped, as docker-machine does.
 */

import { ErrorKind } from '@berth/errors';
import { MachineError } from '@berth/machine';

/** A parsed `--format` value. */
export interface Format {
  readonly table: boolean;
  readonly template: string;
}

/** Splits the `table` directive off a format string and unescapes `\t` and `\n`. */
export function parseFormat(format: string): Format {
  const unescaped = format.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const table = /^table(\s|$)/.test(unescaped);
  return { table, template: table ? unescaped.replace(/^table\s*/, '') : unescaped };
}

function lookup(data: unknown, path: string): unknown {
  if (path === '.') return data;
  let value: unknown = data;
  for (const key of path.replace(/^\./, '').split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function text(value: unknown): string {
  if (value === undefined || value === null) return '<no value>';
  if (typeof value === 'object') return Array.isArray(value) ? `[${value.map(text).join(' ')}]` : `map[${Object.entries(value).map(([k, v]) => `${k}:${text(v)}`).join(' ')}]`;
  return String(value);
}

const functions: Record<string, (value: unknown) => string> = {
  json: (value) => JSON.stringify(value ?? null),
  upper: (value) => text(value).toUpperCase(),
  lower: (value) => text(value).toLowerCase(),
};

/** Renders `template` over `data`; throws naming the action it cannot evaluate. */
export function renderTemplate(template: string, data: unknown): string {
  return template.replace(/\{\{\s*(.*?)\s*\}\}/g, (_, action: string) => {
    const words = action.split(/\s+/);
    if (words.length === 1 && words[0]!.startsWith('.')) return text(lookup(data, words[0]!));
    const fn = functions[words[0]!];
    if (fn && words.length === 2 && words[1]!.startsWith('.')) return fn(lookup(data, words[1]!));
    throw new MachineError(`template: cannot evaluate {{${action}}} (supported: {{.Field}}, {{json .}}, {{upper .F}}, {{lower .F}})`, {
      code: 'ERR_FORMAT',
      kind: ErrorKind.InvalidArgument,
    });
  });
}

/** The fields a template names (`{{.Name}}` gives `Name`), in order: the columns of a table. */
export function templateFields(template: string): string[] {
  return [...template.matchAll(/\{\{\s*(?:\w+\s+)?\.([\w.]*)\s*\}\}/g)].map((m) => m[1] || '.');
}

/**
 * Aligns tab-separated rows into columns, as Go's tabwriter with docker-machine's settings:
 * each column as wide as its widest cell plus three spaces; the last column unpadded.
 */
export function alignColumns(rows: readonly string[]): string {
  const cells = rows.map((row) => row.split('\t'));
  const widths: number[] = [];
  for (const row of cells) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join('').trimEnd()).join('\n') + (rows.length ? '\n' : '');
}
