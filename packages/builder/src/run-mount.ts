import type { RunMount } from './dockerfile-ast.js';

// The fields of a mount spec, split like a CSV record: commas separate, double quotes group.
function splitCsv(spec: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < spec.length; i++) {
    const ch = spec[i]!;
    if (quoted) {
      if (ch === '"' && spec[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else field += ch;
  }
  if (quoted) throw new Error(`unterminated quote in mount spec ${JSON.stringify(spec)}`);
  fields.push(field);
  return fields.map((f) => f.trim()).filter((f) => f !== '');
}

function parseBool(key: string, value: string): boolean {
  const v = value.toLowerCase();
  if (['1', 't', 'true'].includes(v)) return true;
  if (['0', 'f', 'false'].includes(v)) return false;
  throw new Error(`invalid value for ${key}: ${value}`);
}

function parseUint(key: string, value: string, radix: 8 | 10): number {
  const pattern = radix === 8 ? /^0?[0-7]+$/ : /^\d+$/;
  const n = parseInt(value, radix);
  if (!pattern.test(value) || n > 0xffffffff) throw new Error(`invalid value for ${key}: ${value}`);
  return n;
}

const sizeUnits: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** A size in bytes as docker's `RAMInBytes` reads it: `1024`, `64m`, `1.5GiB` (units are powers of 1024). */
export function parseByteSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?$/i.exec(value.trim());
  if (!match) throw new Error(`invalid size: ${JSON.stringify(value)}`);
  return Math.floor(Number(match[1]) * sizeUnits[match[2]!.toLowerCase()]!);
}

const mountTypes = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'] as const;
type MountType = (typeof mountTypes)[number];

/**
 * Parses one `RUN --mount=` value (`type=cache,target=/root/.cache,sharing=locked`) with
 * BuildKit's keys, aliases and defaults. `expand` substitutes variables in each value (the
 * expansion step passes the stage's variables). Throws a plain Error naming the bad field.
 */
export function parseRunMount(spec: string, expand: (value: string) => string = (v) => v): RunMount {
  const fields = splitCsv(spec);
  let type: MountType = 'bind';
  for (const field of fields) {
    const [key, value] = splitField(field);
    if (key === 'type') {
      if (!(mountTypes as readonly string[]).includes(value ?? '')) throw new Error(`unsupported mount type ${JSON.stringify(value ?? '')}`);
      type = value as MountType;
    }
  }

  let target: string | undefined;
  let source: string | undefined;
  let from: string | undefined;
  let id: string | undefined;
  let env: string | undefined;
  let sharing: 'shared' | 'private' | 'locked' | undefined;
  let readOnly: boolean | undefined;
  let required = false;
  let size: number | undefined;
  let mode: number | undefined;
  let uid: number | undefined;
  let gid: number | undefined;
  const fileInfo = type === 'secret' || type === 'ssh' || type === 'cache';

  for (const field of fields) {
    const [key, raw] = splitField(field);
    if (key === 'type') continue;
    if (raw === undefined) {
      if (key === 'readonly' || key === 'ro') readOnly = true;
      else if (key === 'readwrite' || key === 'rw') readOnly = false;
      else if (key === 'required' && (type === 'secret' || type === 'ssh')) required = true;
      else if (key === 'required') throw new Error(`unexpected key '${key}' for mount type '${type}'`);
      else throw new Error(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    const value = expand(raw);
    switch (key) {
      case 'from':
        from = value;
        break;
      case 'source':
      case 'src':
        source = value;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        target = value;
        break;
      case 'readonly':
      case 'ro':
        readOnly = parseBool(key, value);
        break;
      case 'readwrite':
      case 'rw':
        readOnly = !parseBool(key, value);
        break;
      case 'required':
        if (type !== 'secret' && type !== 'ssh') throw new Error(`unexpected key '${key}' for mount type '${type}'`);
        required = parseBool(key, value);
        break;
      case 'size':
        if (type !== 'tmpfs') throw new Error(`unexpected key 'size' for mount type '${type}'`);
        size = parseByteSize(value);
        break;
      case 'id':
        id = value;
        break;
      case 'env':
        if (type !== 'secret') throw new Error(`unexpected key 'env' for mount type '${type}'`);
        env = value;
        break;
      case 'sharing':
        if (value !== 'shared' && value !== 'private' && value !== 'locked') throw new Error(`unsupported sharing value ${JSON.stringify(value)}`);
        sharing = value;
        break;
      case 'mode':
        mode = parseUint(key, value, 8);
        break;
      case 'uid':
        uid = parseUint(key, value, 10);
        break;
      case 'gid':
        gid = parseUint(key, value, 10);
        break;
      default:
        throw new Error(`unexpected key '${key}' in '${field}'`);
    }
    if (!fileInfo && (key === 'mode' || key === 'uid' || key === 'gid')) throw new Error(`unexpected key '${key}' for mount type '${type}'`);
  }

  if (sharing !== undefined && type !== 'cache') throw new Error(`invalid cache sharing set for ${type} mount`);
  const needsTarget = type === 'bind' || type === 'cache' || type === 'tmpfs';
  if (needsTarget && !target) throw new Error(`mount type ${type} requires a target`);
  const opt = <K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } => (v === undefined ? {} : ({ [k]: v } as { [P in K]?: V }));

  switch (type) {
    case 'bind':
      if (id !== undefined) throw new Error(`unexpected key 'id' for mount type 'bind'`);
      return { type, target: target!, readWrite: readOnly === false, ...opt('source', source), ...opt('from', from) };
    case 'cache':
      return {
        type,
        target: target!,
        id: id ?? target!,
        sharing: sharing ?? 'shared',
        readOnly: readOnly ?? false,
        mode: mode ?? 0o755,
        uid: uid ?? 0,
        gid: gid ?? 0,
        ...opt('source', source),
        ...opt('from', from),
      };
    case 'tmpfs':
      if (from !== undefined || source !== undefined) throw new Error(`unexpected key '${from !== undefined ? 'from' : 'source'}' for mount type 'tmpfs'`);
      return { type, target: target!, ...opt('size', size) };
    case 'secret': {
      if (from !== undefined) throw new Error('secret mount should not have a from');
      if (source !== undefined && id !== undefined) throw new Error("both source and id can't be set");
      const secretId = id ?? source ?? (target ? target.split('/').filter(Boolean).at(-1) : env);
      if (!secretId) throw new Error('secret mount requires an id, a source, a target or an env');
      return { type, id: secretId, required, mode: mode ?? 0o400, uid: uid ?? 0, gid: gid ?? 0, ...opt('target', target), ...opt('env', env) };
    }
    case 'ssh':
      if (from !== undefined) throw new Error('ssh mount should not have a from');
      return { type, id: id ?? 'default', required, mode: mode ?? 0o600, uid: uid ?? 0, gid: gid ?? 0, ...opt('target', target) };
  }
}

function splitField(field: string): [string, string | undefined] {
  const eq = field.indexOf('=');
  return eq < 0 ? [field.toLowerCase(), undefined] : [field.slice(0, eq).toLowerCase(), field.slice(eq + 1)];
}
