import type { ContainerSummary, Port } from '@berth/engine';
import type { View } from './list-format.js';
import { humanDuration, humanSize } from './units.js';

/** Options that change how rows read (docker's --no-trunc). */
export interface ViewOptions {
  readonly truncate: boolean;
  readonly now?: number;
}

/** docker's Ellipsis: at most `max` characters, the last one `…` when cut. */
export function ellipsis(text: string, max: number): string {
  const chars = [...text];
  if (chars.length <= max) return text;
  return chars.slice(0, max - 1).join('') + '…';
}

/** `sha256:0123...` → `0123456789ab`. */
export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** Go's time.Time String(): `2006-01-02 15:04:05 -0700 MST`, in the local zone the CLI sees as UTC offsets. */
export function goTimeString(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
  const local = new Date(d.getTime() + offset * 60_000).toISOString();
  const name = offset === 0 ? 'UTC' : zone;
  return `${local.slice(0, 10)} ${local.slice(11, 19)} ${zone} ${name}`;
}

/**
 * docker's DisplayablePorts: ports sorted by container port; ports published on the same number
 * (and unpublished ones) folded into ranges per address, other mappings listed one by one after them.
 */
export function displayPorts(ports: readonly Port[]): string {
  // Go's string order (bytes), not the locale's: `0.0.0.0` sorts before `::`.
  const byBytes = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  const sorted = [...ports].sort(
    (a, b) => a.PrivatePort - b.PrivatePort || byBytes(a.IP ?? '', b.IP ?? '') || (a.PublicPort ?? 0) - (b.PublicPort ?? 0) || byBytes(a.Type, b.Type),
  );
  const groups = new Map<string, { first: number; last: number }>();
  const order: string[] = [];
  const result: string[] = [];
  const hostMappings: string[] = [];
  const form = (key: string, first: number, last: number) => {
    const slash = key.lastIndexOf('/');
    const ip = slash >= 0 ? key.slice(0, slash) : '';
    const type = slash >= 0 ? key.slice(slash + 1) : key;
    const range = first === last ? String(first) : `${first}-${last}`;
    return ip ? `${ip}:${range}->${range}/${type}` : `${range}/${type}`;
  };
  for (const p of sorted) {
    let key: string = p.Type;
    if (p.IP) {
      if (p.PublicPort !== p.PrivatePort) {
        const host = p.IP.includes(':') ? `[${p.IP}]` : p.IP;
        hostMappings.push(`${host}:${p.PublicPort ?? 0}->${p.PrivatePort}/${p.Type}`);
        continue;
      }
      key = `${p.IP}/${p.Type}`;
    }
    const group = groups.get(key);
    if (!group) {
      groups.set(key, { first: p.PrivatePort, last: p.PrivatePort });
      order.push(key);
    } else if (p.PrivatePort === group.last + 1) {
      group.last = p.PrivatePort;
    } else {
      result.push(form(key, group.first, group.last));
      groups.set(key, { first: p.PrivatePort, last: p.PrivatePort });
    }
  }
  for (const key of order) {
    const g = groups.get(key)!;
    result.push(form(key, g.first, g.last));
  }
  return [...result, ...hostMappings].join(', ');
}

/** The fields of `ps --format` (docker's ContainerContext). */
export function containerView(options: ViewOptions): View<ContainerSummary> {
  const now = options.now ?? Date.now();
  return {
    ID: { header: 'CONTAINER ID', value: (c) => (options.truncate ? shortId(c.Id) : c.Id) },
    Image: {
      header: 'IMAGE',
      value: (c) => (c.Image.startsWith('sha256:') ? (options.truncate ? shortId(c.Image) : c.Image) : c.Image) || '<no image>',
    },
    Command: { header: 'COMMAND', value: (c) => JSON.stringify(options.truncate ? ellipsis(c.Command, 20) : c.Command) },
    CreatedAt: { header: 'CREATED AT', value: (c) => goTimeString(c.Created) },
    RunningFor: { header: 'CREATED', value: (c) => `${humanDuration(now - c.Created * 1000)} ago` },
    Ports: { header: 'PORTS', value: (c) => displayPorts(c.Ports ?? []) },
    State: { header: 'STATE', value: (c) => c.State },
    Status: { header: 'STATUS', value: (c) => c.Status },
    Size: {
      header: 'SIZE',
      value: (c) => (c.SizeRw === undefined && c.SizeRootFs === undefined ? '0B' : `${humanSize(c.SizeRw ?? 0)} (virtual ${humanSize(c.SizeRootFs ?? 0)})`),
    },
    Names: { header: 'NAMES', value: (c) => c.Names.map((n) => n.replace(/^\//, '')).filter((n) => !n.includes('/')).join(',') },
    Labels: {
      header: 'LABELS',
      value: (c) =>
        Object.entries(c.Labels ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
    },
    Label: { header: 'LABEL', method: true, value: (c) => (name: string) => c.Labels?.[name] ?? '' },
    Mounts: {
      header: 'MOUNTS',
      value: (c) =>
        (c.Mounts ?? [])
          .map((m) => {
            const name = m.Name || m.Source;
            return options.truncate ? ellipsis(name, 15) : name;
          })
          .join(','),
    },
    LocalVolumes: { header: 'LOCAL VOLUMES', value: (c) => String((c.Mounts ?? []).filter((m) => m.Driver === 'local').length) },
    Networks: { header: 'NETWORKS', value: (c) => Object.keys(c.NetworkSettings?.Networks ?? {}).sort().join(',') },
  };
}
