import { posix } from 'node:path';
import type { HostConfig, KeySet, Mount } from '../types/container.js';
import type { MountRecord } from './container-record.js';
import { invalidParameter } from './docker-errors.js';

/** A mount before volumes are made: a volume mount without a name asks for an anonymous volume. */
export type MountRequest = Omit<MountRecord, 'source'> & { readonly source: string };

const propagations = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']);
const bindModes = new Set(['ro', 'rw', 'z', 'Z', 'nocopy', ...propagations]);

function absolute(path: string, spec: string, type: string): string {
  if (!path.startsWith('/')) {
    throw invalidParameter(`invalid volume specification: '${spec}': invalid mount config for type "${type}": invalid mount path: '${path}' mount path must be absolute`);
  }
  const clean = posix.normalize(path);
  return clean.length > 1 ? clean.replace(/\/$/, '') : clean;
}

/** One `-v`/Binds entry: `/host:/ctr[:opts]` (bind) or `name:/ctr[:opts]` (named volume). */
export function parseBind(spec: string): MountRequest {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || parts.some((p, i) => p === '' && i < 2)) {
    throw invalidParameter(`invalid volume specification: '${spec}'`);
  }
  const [source, target, modeText = ''] = parts as [string, string, string?];
  const modes = modeText ? modeText.split(',') : [];
  for (const m of modes) if (!bindModes.has(m)) throw invalidParameter(`invalid mode: ${modeText}`);
  if (modes.includes('ro') && modes.includes('rw')) throw invalidParameter(`invalid mode: ${modeText}`);
  const destination = absolute(target, spec, source.startsWith('/') ? 'bind' : 'volume');
  if (destination === '/') throw invalidParameter(`invalid specification: destination can't be '/'`);
  const rw = !modes.includes('ro');
  const propagation = modes.find((m) => propagations.has(m));
  if (source.startsWith('/')) {
    if (modes.includes('nocopy')) throw invalidParameter(`invalid mode: ${modeText}`);
    return { type: 'bind', source: posix.normalize(source), destination, mode: modeText, rw, propagation: propagation ?? 'rprivate', createSource: true };
  }
  if (propagation) throw invalidParameter(`invalid mode: ${modeText}`);
  return { type: 'volume', name: source, source: '', destination, mode: modeText || 'z', rw, propagation: '', noCopy: modes.includes('nocopy') };
}

function tmpfsSizeOption(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `size=${bytes / (1024 * 1024)}m` : bytes % 1024 === 0 ? `size=${bytes / 1024}k` : `size=${bytes}`;
}

/** One `--mount` (HostConfig.Mounts) entry. */
export function parseMount(m: Mount): MountRequest {
  const type = m.Type ?? 'volume';
  const where = `invalid mount config for type "${type}"`;
  if (!m.Target) throw invalidParameter(`${where}: field Target must not be empty`);
  if (!m.Target.startsWith('/')) throw invalidParameter(`${where}: invalid mount path: '${m.Target}' mount path must be absolute`);
  const destination = posix.normalize(m.Target).replace(/(.)\/$/, '$1');
  const rw = !m.ReadOnly;
  switch (type) {
    case 'bind': {
      if (!m.Source) throw invalidParameter(`${where}: field Source must not be empty`);
      if (!m.Source.startsWith('/')) throw invalidParameter(`${where}: invalid mount path: '${m.Source}' mount path must be absolute`);
      if (m.VolumeOptions || m.TmpfsOptions) throw invalidParameter(`${where}: field ${m.VolumeOptions ? 'VolumeOptions' : 'TmpfsOptions'} must not be specified`);
      const propagation = m.BindOptions?.Propagation ?? 'rprivate';
      return {
        type: 'bind',
        source: posix.normalize(m.Source),
        destination,
        mode: '',
        rw,
        propagation,
        ...(m.BindOptions?.NonRecursive ? { nonRecursive: true } : {}),
        ...(m.BindOptions?.CreateMountpoint ? { createSource: true } : {}),
      };
    }
    case 'volume': {
      if (m.BindOptions || m.TmpfsOptions) throw invalidParameter(`${where}: field ${m.BindOptions ? 'BindOptions' : 'TmpfsOptions'} must not be specified`);
      if (m.Source && m.Source.startsWith('/')) throw invalidParameter(`${where}: invalid volume name: '${m.Source}'`);
      const subpath = m.VolumeOptions?.Subpath;
      if (subpath !== undefined && (subpath.startsWith('/') || posix.normalize(subpath).startsWith('..'))) {
        throw invalidParameter(`${where}: subpath must be a relative path within the volume`);
      }
      return {
        type: 'volume',
        ...(m.Source ? { name: m.Source } : {}),
        source: '',
        destination,
        mode: 'z',
        rw,
        propagation: '',
        ...(m.Source ? {} : { anonymous: true }),
        ...(m.VolumeOptions?.NoCopy ? { noCopy: true } : {}),
        ...(subpath ? { subpath: posix.normalize(subpath) } : {}),
      };
    }
    case 'tmpfs': {
      if (m.Source) throw invalidParameter(`${where}: field Source must not be specified`);
      if (m.BindOptions || m.VolumeOptions) throw invalidParameter(`${where}: field ${m.BindOptions ? 'BindOptions' : 'VolumeOptions'} must not be specified`);
      const options = ['nosuid', 'nodev', 'noexec'];
      if (m.TmpfsOptions?.SizeBytes) options.push(tmpfsSizeOption(m.TmpfsOptions.SizeBytes));
      if (m.TmpfsOptions?.Mode) options.push(`mode=${m.TmpfsOptions.Mode.toString(8)}`);
      for (const opt of m.TmpfsOptions?.Options ?? []) options.push(opt.join('='));
      if (!rw) options.push('ro');
      return { type: 'tmpfs', source: '', destination, mode: '', rw, propagation: '', tmpfsOptions: options };
    }
    default:
      throw invalidParameter(`mount type unknown: '${type}'`);
  }
}

/** One `--tmpfs` entry (`/run` → `size=64m,exec`); docker's defaults come first so the user's win. */
export function parseTmpfs(destination: string, options: string): MountRequest {
  if (!destination.startsWith('/')) throw invalidParameter(`invalid mount path: '${destination}' mount path must be absolute`);
  const opts = ['noexec', 'nosuid', 'nodev', ...options.split(',').filter(Boolean)];
  const rw = !opts.includes('ro');
  return { type: 'tmpfs', source: '', destination: posix.normalize(destination), mode: options, rw, propagation: '', tmpfsOptions: opts, hidden: true };
}

/**
 * Every mount of a create body: Binds, Mounts, Tmpfs, then an anonymous volume for each image
 * or body `Volumes` path that nothing else covers. Two mounts on one destination are refused
 * as docker does (`Duplicate mount point`).
 */
export function mountRequests(host: HostConfig, volumes: KeySet | null | undefined): MountRequest[] {
  const out: MountRequest[] = [];
  const add = (m: MountRequest) => {
    if (out.some((o) => o.destination === m.destination)) throw invalidParameter(`Duplicate mount point: ${m.destination}`);
    out.push(m);
  };
  for (const b of host.Binds ?? []) add(parseBind(b));
  for (const m of host.Mounts ?? []) add(parseMount(m));
  for (const [dest, opts] of Object.entries(host.Tmpfs ?? {})) add(parseTmpfs(dest, opts));
  for (const dest of Object.keys(volumes ?? {})) {
    const destination = posix.normalize(dest).replace(/(.)\/$/, '$1');
    if (!destination.startsWith('/')) throw invalidParameter(`invalid mount path: '${dest}' mount path must be absolute`);
    if (out.some((o) => o.destination === destination)) continue;
    out.push({ type: 'volume', source: '', destination, mode: '', rw: true, propagation: '', anonymous: true });
  }
  return out;
}
