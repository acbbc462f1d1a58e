import { GoTemplate, strictFields } from './go-template.js';
import { alignColumns } from './tab-writer.js';

/** One field of a list view: its table header and how a row gives its value. */
export interface ViewField<Row> {
  readonly header: string;
  readonly value: (row: Row) => unknown;
  /** A field that takes an argument in templates, such as `{{.Label "key"}}`; left out of `json`. */
  readonly method?: true;
}

/** The fields `--format` can name for one kind of row, as docker's formatter contexts define them. */
export type View<Row> = Readonly<Record<string, ViewField<Row>>>;

/** docker's `\t` and `\n` written literally in a shell argument are the characters. */
export function unescapeFormat(format: string): string {
  return format.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
}

function rowObject<Row>(view: View<Row>, row: Row): object {
  const object: Record<string | symbol, unknown> = { [strictFields]: true };
  for (const [name, field] of Object.entries(view)) {
    Object.defineProperty(object, name, { enumerable: !field.method, get: () => field.value(row) });
  }
  return object;
}

function headerObject<Row>(view: View<Row>): object {
  const object: Record<string | symbol, unknown> = { [strictFields]: true };
  for (const [name, field] of Object.entries(view)) object[name] = field.method ? () => field.header : field.header;
  return object;
}

/** A row as `--format json` prints it: every plain field, keys sorted (Go marshals maps sorted). */
export function rowJson<Row>(view: View<Row>, row: Row): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(view).sort()) {
    const field = view[name]!;
    if (!field.method) out[name] = field.value(row);
  }
  return out;
}

/**
 * Renders rows as docker does for `--format`: absent or `table` gives the default table, `json` one
 * JSON object per line, `table TEMPLATE` a table with headers, anything else the template per row.
 */
export function formatList<Row>(rows: readonly Row[], view: View<Row>, format: string | undefined, defaultTable: string): string {
  const f = format === undefined || format === '' || format === 'table' ? defaultTable : format;
  if (f === 'json') return rows.map((row) => JSON.stringify(rowJson(view, row)) + '\n').join('');
  if (f.startsWith('table')) {
    const template = new GoTemplate(unescapeFormat(f.slice('table'.length).replace(/^ /, '')));
    const lines = [template.execute(headerObject(view)), ...rows.map((row) => template.execute(rowObject(view, row)))];
    return alignColumns(lines.join('\n')) + '\n';
  }
  const template = new GoTemplate(unescapeFormat(f));
  return rows.map((row) => template.execute(rowObject(view, row)) + '\n').join('');
}

/** Formats one JSON document with a template (`inspect -f`), or as docker's indented JSON array entry. */
export function formatObject(value: unknown, format: string): string {
  if (format === 'json') return JSON.stringify(value) + '\n';
  return new GoTemplate(unescapeFormat(format)).execute(value) + '\n';
}
