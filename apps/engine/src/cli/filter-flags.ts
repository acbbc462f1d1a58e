import { UsageError } from './cli-errors.js';

/** Parses `--filter key=value` flags into docker's filter map. */
export function filtersOf(values: unknown): Record<string, string[]> {
  const filters: Record<string, string[]> = {};
  for (const v of (values as string[] | undefined) ?? []) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`bad format of filter (expected name=value): ${v}`, '');
    (filters[v.slice(0, eq).toLowerCase()] ??= []).push(v.slice(eq + 1));
  }
  return filters;
}
