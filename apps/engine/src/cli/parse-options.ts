import yargsParser from 'yargs-parser';
import type { Options } from 'yargs';
import { UsageError } from './cli-errors.js';

// pflag's behaviour: `--no-trunc` is its own flag, positional numbers stay strings, each array
// flag takes one value per occurrence (`-e A -e B`), and `--long` names keep their dashes.
const configuration = {
  'boolean-negation': false,
  'parse-positional-numbers': false,
  'greedy-arrays': false,
  'strip-dashed': false,
  'camel-case-expansion': true,
  'halt-at-non-option': false,
  'short-option-groups': true,
  'duplicate-arguments-array': true,
  'flatten-duplicate-arrays': true,
} as const;

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function flagName(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}

/**
 * Parses a command's options with yargs' own parser (yargs-parser), then checks what yargs'
 * `.strictOptions()`, `requiresArg` and `choices` would: unknown flags, flags without their
 * value, values outside the choices. Building a whole yargs instance is left to `--help`, which
 * keeps every command's start short.
 */
export function parseOptions(args: readonly string[], options: Readonly<Record<string, Options>>, command: string): { values: Record<string, unknown>; positional: string[] } {
  const alias: Record<string, string[]> = {};
  const boolean: string[] = [];
  const string: string[] = [];
  const number: string[] = [];
  const array: string[] = [];
  const defaults: Record<string, unknown> = {};
  const known = new Set(['_', '--']);
  for (const [name, o] of Object.entries(options)) {
    const aliases = o.alias === undefined ? [] : Array.isArray(o.alias) ? (o.alias as string[]) : [o.alias as string];
    alias[name] = aliases;
    for (const n of [name, ...aliases]) {
      known.add(n);
      known.add(camel(n));
    }
    if (o.type === 'boolean') boolean.push(name);
    else if (o.type === 'number') number.push(name);
    else string.push(name);
    if (o.array) array.push(name);
    if (o.default !== undefined) defaults[name] = o.default;
  }
  const result = yargsParser.detailed([...args], { alias, boolean, string, number, array, default: defaults, configuration });
  if (result.error) throw new UsageError(result.error.message, command);
  const values = result.argv as Record<string, unknown> & { _: (string | number)[] };
  for (const key of Object.keys(values)) {
    if (!known.has(key)) throw new UsageError(key.length === 1 ? `unknown shorthand flag: '${key}' in -${key}` : `unknown flag: --${key}`, command);
  }
  for (const [name, o] of Object.entries(options)) {
    const v = values[name];
    if (o.requiresArg && (v === '' || (Array.isArray(v) && v.includes('')))) throw new UsageError(`flag needs an argument: ${flagName(name)}`, command);
    if (o.choices && v !== undefined) {
      const allowed = (o.choices as readonly unknown[]).map(String);
      for (const one of Array.isArray(v) ? v : [v]) {
        if (!allowed.includes(String(one))) throw new UsageError(`invalid argument "${String(one)}" for "${flagName(name)}" flag: must be one of ${allowed.join(', ')}`, command);
      }
    }
  }
  return { values, positional: values._.map(String) };
}
