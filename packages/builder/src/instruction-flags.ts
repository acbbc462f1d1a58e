/** What one instruction accepts as `--flags`: each name and whether it is boolean or may repeat. */
export type FlagSpec = Readonly<Record<string, 'string' | 'bool' | 'strings'>>;

/** The parsed flags of one instruction: last value of string flags, every value of repeating ones. */
export interface ParsedFlags {
  string(name: string): string | undefined;
  bool(name: string): boolean;
  /** Whether a boolean flag was given at all (`--unpack=false` counts). */
  has(name: string): boolean;
  strings(name: string): string[];
}

/**
 * Parses `--name=value` / `--name` words against `spec`, with docker's messages: unknown
 * flags, flags given twice, booleans that are not true/false, and strings without a value.
 * Throws a plain Error whose message the caller places at a line.
 */
export function parseFlags(flags: readonly string[], spec: FlagSpec): ParsedFlags {
  const values = new Map<string, string[]>();
  for (const raw of flags) {
    if (!raw.startsWith('--')) throw new Error(`arguments must start with '--': ${raw}`);
    const body = raw.slice(2);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? undefined : body.slice(eq + 1);
    const type = spec[name];
    if (type === undefined) throw new Error(`unknown flag: ${name}`);
    const seen = values.get(name);
    if (seen && type !== 'strings') throw new Error(`duplicate flag specified: ${name}`);
    if (type === 'bool') {
      const v = (value ?? 'true').toLowerCase();
      if (v !== 'true' && v !== 'false') throw new Error(`expecting boolean value for flag ${name}, not: ${value}`);
      values.set(name, [v]);
    } else {
      if (value === undefined) throw new Error(`missing a value on flag: ${name}`);
      values.set(name, [...(seen ?? []), value]);
    }
  }
  return {
    string: (name) => values.get(name)?.at(-1),
    bool: (name) => values.get(name)?.[0] === 'true',
    has: (name) => values.has(name),
    strings: (name) => values.get(name) ?? [],
  };
}
