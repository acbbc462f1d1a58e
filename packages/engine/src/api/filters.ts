import { EngineErrorCode, engineError } from '../engine.js';
import type { Filters } from '../types/common.js';

/**
 * Parses the `filters` query parameter in both of docker's JSON forms: the map of arrays
 * (`{"label":["a=b"]}`, swagger and dockerode) and the map of booleans the v28 CLI sends
 * (`{"label":{"a=b":true}}`).
 */
export function parseFilters(text: string | null): Filters {
  if (!text) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw engineError(`invalid filter: ${text} is not JSON`, EngineErrorCode.InvalidParameter, 'InvalidArgument', { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw engineError(`invalid filter: ${text} is not an object`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
  }
  const filters: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
      filters[key] = value;
    } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      filters[key] = Object.entries(value)
        .filter(([, on]) => on === true)
        .map(([k]) => k);
    } else {
      throw engineError(`invalid filter ${JSON.stringify(key)}: want a list of strings or a map of booleans`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
    }
  }
  return filters;
}

/** The `filters` parameter in the form the v28 CLI sends, or undefined when there are none. */
export function formatFilters(filters: Filters | undefined): string | undefined {
  if (!filters) return undefined;
  const entries = Object.entries(filters).filter(([, values]) => values.length > 0);
  if (entries.length === 0) return undefined;
  return JSON.stringify(Object.fromEntries(entries.map(([key, values]) => [key, Object.fromEntries(values.map((v) => [v, true]))])));
}
