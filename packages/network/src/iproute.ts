import { stat } from 'node:fs/promises';
import { execCommand } from './exec-command.js';

/** A network interface as `ip -j link` reports it. */
export interface LinkInfo {
  readonly name: string;
  /** The interface alias (IFLA_IFALIAS); Berth marks what it creates with `berth:<tag>`. */
  readonly alias: string;
  readonly master: string;
  readonly mtu: number;
  readonly up: boolean;
}

/** A route of the main IPv4 table. */
export interface RouteInfo {
  /** `default` or a CIDR (`192.0.2.0/24`); a host route has no prefix length. */
  readonly destination: string;
  readonly device: string;
}

/**
 * Runs `ip -batch -` with one command per line, in the host's network namespace or, through
 * nsenter, in the one at `netnsPath`. One exec for many changes is what keeps a connect fast;
 * ip stops at the first failing line and names it.
 */
export async function ipBatch(lines: readonly string[], options: { netnsPath?: string; signal?: AbortSignal } = {}): Promise<void> {
  if (lines.length === 0) return;
  const input = lines.join('\n') + '\n';
  if (options.netnsPath) {
    await execCommand('nsenter', [`--net=${options.netnsPath}`, '--', 'ip', '-batch', '-'], { input, signal: options.signal });
  } else {
    await execCommand('ip', ['-batch', '-'], { input, signal: options.signal });
  }
}

interface RawLink {
  ifname: string;
  ifalias?: string;
  master?: string;
  mtu?: number;
  flags?: string[];
}

/** Every interface of the host's network namespace (or of the one at `netnsPath`). */
export async function listLinks(options: { netnsPath?: string; signal?: AbortSignal } = {}): Promise<LinkInfo[]> {
  const args = ['-j', 'link', 'show'];
  const text = options.netnsPath
    ? await execCommand('nsenter', [`--net=${options.netnsPath}`, '--', 'ip', ...args], { signal: options.signal })
    : await execCommand('ip', args, { signal: options.signal });
  const raw = JSON.parse(text || '[]') as RawLink[];
  return raw.map((l) => ({
    name: l.ifname,
    alias: l.ifalias ?? '',
    master: l.master ?? '',
    mtu: l.mtu ?? 0,
    up: (l.flags ?? []).includes('UP'),
  }));
}

interface RawRoute {
  dst: string;
  dev?: string;
}

/** The routes of the main IPv4 table, to keep new subnets off the host's networks. */
export async function listRoutes(options: { signal?: AbortSignal } = {}): Promise<RouteInfo[]> {
  const text = await execCommand('ip', ['-j', '-4', 'route', 'show'], { signal: options.signal });
  return (JSON.parse(text || '[]') as RawRoute[]).map((r) => ({ destination: r.dst, device: r.dev ?? '' }));
}

/** True when an interface of that name exists in the host's namespace (no exec: sysfs). */
export async function linkExists(name: string): Promise<boolean> {
  try {
    await stat(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Deletes host interfaces, tolerating ones that vanish meanwhile: the kernel removes a veth by
 * itself, a moment after its peer's namespace is gone, so "exists" can turn false mid-batch.
 */
export async function deleteLinks(names: readonly string[], options: { signal?: AbortSignal } = {}): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const present: string[] = [];
    for (const name of names) if (await linkExists(name)) present.push(name);
    if (present.length === 0) return;
    try {
      await ipBatch(
        present.map((name) => `link del dev ${name}`),
        options,
      );
      return;
    } catch (err) {
      if (attempt >= 2) throw err;
    }
  }
}
