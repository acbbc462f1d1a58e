import { invalidOption, type FlagDefinition, type FlagValue, type FlagValues } from './driver.js';

function fromEnv(flag: FlagDefinition, text: string): FlagValue {
  switch (flag.type) {
    case 'string':
      return text;
    case 'number': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) throw invalidOption(`${flag.envVar}=${text} is not a number (for --${flag.name})`);
      return n;
    }
    case 'boolean': {
      const v = text.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
      throw invalidOption(`${flag.envVar}=${text} is not true or false (for --${flag.name})`);
    }
    case 'string[]':
      return text.split(',').map((s) => s.trim()).filter(Boolean);
  }
}

function fromArgv(flag: FlagDefinition, value: unknown): FlagValue {
  switch (flag.type) {
    case 'string':
      if (Array.isArray(value)) return fromArgv(flag, value[value.length - 1]);
      if (typeof value === 'string' || typeof value === 'number') return String(value);
      break;
    case 'number':
      if (Array.isArray(value)) return fromArgv(flag, value[value.length - 1]);
      if (typeof value === 'number' && Number.isFinite(value)) return value;
      if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
      break;
    case 'boolean':
      if (typeof value === 'boolean') return value;
      break;
    case 'string[]':
      if (Array.isArray(value)) return value.map(String);
      if (typeof value === 'string' || typeof value === 'number') return [String(value)];
      break;
  }
  throw invalidOption(`--${flag.name} ${JSON.stringify(value)} is not ${flag.type === 'string[]' ? 'a list of strings' : `a ${flag.type}`}`);
}

/**
 * The driver's flag values from what the command line gave (keyed by flag name or alias),
 * then the flags' env vars, then their defaults (command line > env > default). Throws naming
 * the flag when a value has the wrong type, a choice is unknown, or a required flag is missing.
 */
export function resolveFlagValues(
  definitions: readonly FlagDefinition[],
  given: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>> = {},
): FlagValues {
  const values: Record<string, FlagValue> = {};
  for (const flag of definitions) {
    const name = [flag.name, ...(flag.aliases ?? [])].find((n) => given[n] !== undefined);
    let value: FlagValue | undefined;
    if (name !== undefined) value = fromArgv(flag, given[name]);
    else if (flag.envVar && env[flag.envVar] !== undefined) value = fromEnv(flag, env[flag.envVar]!);
    else value = flag.default;
    if (value === undefined || (flag.required && (value === '' || (Array.isArray(value) && value.length === 0)))) {
      if (flag.required) throw invalidOption(`--${flag.name} is required${flag.envVar ? ` (or set ${flag.envVar})` : ''}`);
      continue;
    }
    if (flag.type === 'string' && flag.choices && !flag.choices.includes(value as string)) {
      throw invalidOption(`--${flag.name} ${JSON.stringify(value)} is not one of ${flag.choices.join(', ')}`);
    }
    values[flag.name] = value;
  }
  return values;
}

/**
 * `flags`, each one also accepted with `aliasPrefix` in place of `prefix`: docker-machine's
 * spelling for a driver it named otherwise (`--amazonec2-region` for `--aws-region`), so that
 * existing scripts keep working. Help lists the aliases as deprecated.
 */
export function withPrefixAliases(prefix: string, aliasPrefix: string, flags: readonly FlagDefinition[]): FlagDefinition[] {
  return flags.map((flag) => ({ ...flag, aliases: [...(flag.aliases ?? []), `${aliasPrefix}${flag.name.slice(prefix.length)}`] }));
}
