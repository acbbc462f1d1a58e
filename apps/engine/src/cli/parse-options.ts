import type { Options } from 'yargs';
import { UsageError } from './cli-errors.js';

interface Flag {
  readonly name: string;
  readonly type: 'boolean' | 'number' | 'string';
  readonly array: boolean;
}

function flagName(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}

// strconv.ParseBool's spellings, which pflag takes for `--flag=value`.
const boolValues: Readonly<Record<string, boolean>> = { '1': true, t: true, T: true, true: true, TRUE: true, True: true, '0': false, f: false, F: false, false: false, FALSE: false, False: false };

/**
 * Parses a command's options as docker's CLI (spf13/pflag) does: `--name value`, `--name=value`,
 * `-n value`, `-nvalue`, `-n=value`, grouped booleans (`-it`, `-itd`, `-ite KEY=v`), a boolean
 * takes a value only after `=`, an array flag collects one value per occurrence (`-e A -e B`),
 * `--` ends the options, and positional arguments may come anywhere. Then checks what the
 * options declare: `requiresArg` (no empty value) and `choices`. yargs' parser, used before,
 * cost more to load and run than the rest of a short command's start, and read `-eA=1` as a
 * flag named A.
 */
export function parseOptions(args: readonly string[], options: Readonly<Record<string, Options>>, command: string): { values: Record<string, unknown>; positional: string[] } {
  const long = new Map<string, Flag>();
  const short = new Map<string, Flag>();
  for (const [name, o] of Object.entries(options)) {
    const flag: Flag = { name, type: o.type === 'boolean' ? 'boolean' : o.type === 'number' ? 'number' : 'string', array: o.array === true };
    const aliases = o.alias === undefined ? [] : Array.isArray(o.alias) ? (o.alias as string[]) : [o.alias as string];
    for (const n of [name, ...aliases]) (n.length === 1 ? short : long).set(n, flag);
  }
  const values: Record<string, unknown> = {};
  const positional: string[] = [];
  const needsArgument = (shown: string) => new UsageError(`flag needs an argument: ${shown}`, command);
  const set = (flag: Flag, raw: string | true, shown: string) => {
    let value: unknown = raw;
    if (flag.type === 'boolean' && raw !== true) {
      value = boolValues[raw];
      if (value === undefined) throw new UsageError(`invalid argument "${raw}" for "${shown}" flag: strconv.ParseBool: parsing "${raw}": invalid syntax`, command);
    } else if (flag.type === 'number') {
      value = Number(raw);
      if (raw === '' || !Number.isFinite(value)) throw new UsageError(`invalid argument "${String(raw)}" for "${shown}" flag: invalid syntax`, command);
    }
    if (flag.array) ((values[flag.name] ??= []) as unknown[]).push(value);
    else values[flag.name] = value;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const flag = long.get(name);
      if (!flag) throw new UsageError(`unknown flag: --${name}`, command);
      if (eq >= 0) set(flag, arg.slice(eq + 1), `--${name}`);
      else if (flag.type === 'boolean') set(flag, true, `--${name}`);
      else if (i + 1 < args.length) set(flag, args[++i]!, `--${name}`);
      else throw needsArgument(`--${name}`);
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    for (let rest = arg.slice(1); rest; ) {
      const c = rest[0]!;
      const flag = short.get(c);
      if (!flag) throw new UsageError(`unknown shorthand flag: '${c}' in ${arg}`, command);
      if (rest[1] === '=') {
        set(flag, rest.slice(2), `-${c}`);
        break;
      }
      if (flag.type === 'boolean') {
        set(flag, true, `-${c}`);
        rest = rest.slice(1);
        continue;
      }
      if (rest.length > 1) set(flag, rest.slice(1), `-${c}`);
      else if (i + 1 < args.length) set(flag, args[++i]!, `-${c}`);
      else throw needsArgument(`'${c}' in -${c}`);
      break;
    }
  }
  for (const [name, o] of Object.entries(options)) {
    if (values[name] === undefined && o.default !== undefined) values[name] = o.default;
    const v = values[name];
    if (o.requiresArg && (v === '' || (Array.isArray(v) && v.includes('')))) throw needsArgument(flagName(name));
    if (o.choices && v !== undefined) {
      const allowed = (o.choices as readonly unknown[]).map(String);
      for (const one of Array.isArray(v) ? v : [v]) {
        if (!allowed.includes(String(one))) throw new UsageError(`invalid argument "${String(one)}" for "${flagName(name)}" flag: must be one of ${allowed.join(', ')}`, command);
      }
    }
  }
  return { values, positional };
}
