import type { Filters } from '../types/common.js';
import type { ContainerRecord } from './container-record.js';
import { invalidParameter } from './docker-errors.js';

const listFilterKeys = new Set([
  'ancestor', 'before', 'expose', 'exited', 'health', 'id', 'is-task', 'isolation', 'label', 'name', 'network', 'publish', 'since', 'status', 'volume',
]);
const statuses = new Set(['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead']);
const healths = new Set(['starting', 'healthy', 'unhealthy', 'none']);

/** What filtering needs besides the records: how image references and networks resolve. */
export interface ContainerFilterContext {
  /** The image IDs an `ancestor` value names (empty when it names no image). */
  readonly ancestorIds: (ref: string) => Promise<readonly string[]>;
  /** The network ID of a network name or ID, if one exists. */
  readonly networkId: (ref: string) => Promise<string | undefined>;
}

function labelMatch(labels: Readonly<Record<string, string>>, wanted: readonly string[]): boolean {
  return wanted.every((w) => {
    const eq = w.indexOf('=');
    return eq < 0 ? w in labels : labels[w.slice(0, eq)] === w.slice(eq + 1);
  });
}

// `80`, `80/tcp`, `8000-8080/udp` as docker's publish/expose filters take them.
function portRange(spec: string): { from: number; to: number; proto: string } {
  const [ports, proto = 'tcp'] = spec.split('/');
  const [a, b] = (ports ?? '').split('-');
  const from = Number(a);
  const to = b === undefined ? from : Number(b);
  if (!Number.isInteger(from) || !Number.isInteger(to) || from <= 0 || to < from) throw invalidParameter(`invalid port range: ${spec}`);
  return { from, to, proto };
}

function portMatches(keys: readonly string[], wanted: readonly string[]): boolean {
  return wanted.some((w) => {
    const r = portRange(w);
    return keys.some((k) => {
      const [p, proto = 'tcp'] = k.split('/');
      const n = Number(p);
      return proto === r.proto && n >= r.from && n <= r.to;
    });
  });
}

/**
 * docker's container list filters (`ps --filter`): each key ANDed, the values of one key ORed.
 * `records` are newest first; `before`/`since` name containers by ID or name.
 */
export async function filterContainers(
  records: readonly ContainerRecord[],
  filters: Filters,
  context: ContainerFilterContext,
): Promise<ContainerRecord[]> {
  for (const key of Object.keys(filters)) {
    if (!listFilterKeys.has(key)) throw invalidParameter(`invalid filter '${key}'`);
  }
  for (const s of filters['status'] ?? []) {
    if (!statuses.has(s)) throw invalidParameter(`invalid filter 'status=${s}'`);
  }
  for (const h of filters['health'] ?? []) {
    if (!healths.has(h)) throw invalidParameter(`Unrecognised filter value for health: ${h}`);
  }
  const exited = (filters['exited'] ?? []).map((e) => {
    const n = Number(e);
    if (!Number.isInteger(n)) throw invalidParameter(`invalid filter 'exited=${e}'`);
    return n;
  });
  const pivot = (what: 'before' | 'since') => {
    const ref = filters[what]?.[0];
    if (ref === undefined) return undefined;
    const found = records.find((r) => r.id === ref || r.name === ref.replace(/^\//, '')) ?? records.filter((r) => r.id.startsWith(ref));
    const record = Array.isArray(found) ? (found.length === 1 ? found[0] : undefined) : found;
    if (!record) throw invalidParameter(`No such container: ${ref}`);
    return record.created;
  };
  const before = pivot('before');
  const since = pivot('since');
  const ancestors = new Set<string>();
  for (const a of filters['ancestor'] ?? []) for (const id of await context.ancestorIds(a)) ancestors.add(id);
  const networks: string[] = [];
  for (const n of filters['network'] ?? []) networks.push((await context.networkId(n)) ?? n);

  return records.filter((r) => {
    const f = (key: string) => filters[key] ?? [];
    if (f('id').length && !f('id').some((id) => r.id.startsWith(id))) return false;
    if (f('name').length && !f('name').some((n) => new RegExp(n.replace(/^\//, '')).test(r.name))) return false;
    if (f('label').length && !labelMatch(r.config.Labels ?? {}, f('label'))) return false;
    if (f('status').length && !f('status').includes(r.state.status)) return false;
    if (exited.length && !(r.state.status === 'exited' && r.state.hasBeenStarted && exited.includes(r.state.exitCode))) return false;
    if (f('health').length && !f('health').includes(r.state.health?.Status ?? 'none')) return false;
    if (before !== undefined && !(r.created < before)) return false;
    if (since !== undefined && !(r.created > since)) return false;
    if (f('ancestor').length && !ancestors.has(r.image)) return false;
    if (f('volume').length && !f('volume').some((v) => r.mounts.some((m) => m.name === v || m.destination === v || m.source === v))) return false;
    if (networks.length) {
      const attached = Object.entries(r.networking.networks);
      if (!networks.some((n) => attached.some(([name, ep]) => name === n || ep.NetworkID === n))) return false;
    }
    if (f('publish').length && !portMatches(Object.keys(r.networking.ports), f('publish'))) return false;
    if (f('expose').length && !portMatches(Object.keys(r.config.ExposedPorts ?? {}), f('expose'))) return false;
    if (f('is-task').includes('true')) return false;
    return true;
  });
}
