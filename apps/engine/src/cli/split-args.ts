import type { Options } from 'yargs';

/** The flags (`--name`, `-e`) of options that take a value. */
export function valueFlags(options: Readonly<Record<string, Options>>): Set<string> {
  const flags = new Set<string>();
  for (const [name, o] of Object.entries(options)) {
    if (o.type === 'boolean' || o.count) continue;
    const aliases = o.alias === undefined ? [] : Array.isArray(o.alias) ? o.alias : [o.alias as string];
    for (const n of [name, ...aliases]) flags.add(n.length === 1 ? `-${n}` : `--${n}`);
  }
  return flags;
}

/**
 * Splits `[OPTIONS] IMAGE [COMMAND] [ARG...]` at the first positional argument (pflag's
 * SetInterspersed(false)): options after it belong to the container's command.
 */
export function splitAtFirstPositional(args: readonly string[], takesValue: ReadonlySet<string>): { options: string[]; positional: string[] } {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return { options: args.slice(0, i), positional: args.slice(i + 1) };
    if (!arg.startsWith('-') || arg === '-') return { options: args.slice(0, i), positional: args.slice(i) };
    if (arg.startsWith('--')) {
      if (!arg.includes('=') && takesValue.has(arg)) i++;
      continue;
    }
    // A group of short flags: the first one that takes a value takes the rest of the group, or the next argument.
    for (let j = 1; j < arg.length; j++) {
      if (takesValue.has(`-${arg[j]}`)) {
        if (j === arg.length - 1) i++;
        break;
      }
    }
  }
  return { options: [...args], positional: [] };
}
