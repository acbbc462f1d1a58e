import type { Filters } from '../types/common.js';
import type { Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse } from '../types/volume.js';
import { invalidParameter } from './docker-errors.js';
import type { EngineContext } from './engine-context.js';
import { anonymousVolumeLabel } from './volume-store.js';

const volumeFilterKeys = new Set(['dangling', 'driver', 'label', 'name', 'label!', 'all']);

function labelHas(labels: Readonly<Record<string, string>>, filter: string): boolean {
  const eq = filter.indexOf('=');
  return eq < 0 ? filter in labels : labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

function boolFilter(values: readonly string[] | undefined, key: string): boolean | undefined {
  const v = values?.[0];
  if (v === undefined) return undefined;
  if (['1', 'true'].includes(v.toLowerCase())) return true;
  if (['0', 'false'].includes(v.toLowerCase())) return false;
  throw invalidParameter(`invalid filter '${key}=${v}'`);
}

/** `engine volume ...`: the volume store plus what only the container records know (who uses what). */
export class VolumeService {
  readonly #ctx: EngineContext;

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
  }

  /** The IDs of containers whose mounts name the volume. */
  async users(name: string): Promise<string[]> {
    return (await this.#ctx.containers.list()).filter((c) => c.mounts.some((m) => m.type === 'volume' && m.name === name)).map((c) => c.id);
  }

  async #usage(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const c of await this.#ctx.containers.list()) {
      for (const m of c.mounts) if (m.type === 'volume' && m.name) counts.set(m.name, (counts.get(m.name) ?? 0) + 1);
    }
    return counts;
  }

  async create(body: VolumeCreateRequest): Promise<Volume> {
    const { volume, created } = await this.#ctx.volumes.create({
      ...(body.Name ? { name: body.Name } : {}),
      ...(body.Driver ? { driver: body.Driver } : {}),
      ...(body.DriverOpts ? { driverOpts: body.DriverOpts } : {}),
      ...(body.Labels ? { labels: body.Labels } : {}),
    });
    if (created) await this.#ctx.events.append({ Type: 'volume', Action: 'create', Actor: { ID: volume.Name, Attributes: { driver: 'local' } } });
    return volume;
  }

  async inspect(name: string): Promise<Volume> {
    return this.#ctx.volumes.inspect(name);
  }

  async list(filters: Filters = {}): Promise<VolumeListResponse> {
    for (const key of Object.keys(filters)) if (!volumeFilterKeys.has(key) || key === 'all') throw invalidParameter(`invalid filter '${key}'`);
    const dangling = boolFilter(filters['dangling'], 'dangling');
    const usage = dangling === undefined ? undefined : await this.#usage();
    const volumes = (await this.#ctx.volumes.list()).filter((v) => {
      const labels = v.Labels ?? {};
      if (dangling !== undefined && (usage!.get(v.Name) ?? 0) === 0 !== dangling) return false;
      if (filters['driver']?.length && !filters['driver'].includes(v.Driver)) return false;
      if (filters['name']?.length && !filters['name'].some((n) => v.Name.includes(n))) return false;
      if (!(filters['label'] ?? []).every((l) => labelHas(labels, l))) return false;
      if ((filters['label!'] ?? []).some((l) => labelHas(labels, l))) return false;
      return true;
    });
    return { Volumes: volumes, Warnings: null };
  }

  async remove(name: string, force = false): Promise<void> {
    try {
      await this.#ctx.volumes.remove(name, () => this.users(name));
    } catch (err) {
      // `volume rm -f` of a missing volume is no error, as in docker.
      if (force && (err as { code?: string }).code === 'ERR_VOLUME_NOT_FOUND') return;
      throw err;
    }
    await this.#ctx.events.append({ Type: 'volume', Action: 'destroy', Actor: { ID: name, Attributes: { driver: 'local' } } });
  }

  /** Removes unused volumes: anonymous ones, or all with `all=true` (API 1.42+), matching the label filters. */
  async prune(filters: Filters = {}): Promise<VolumePruneResponse> {
    for (const key of Object.keys(filters)) if (!['label', 'label!', 'all'].includes(key)) throw invalidParameter(`invalid filter '${key}'`);
    const all = boolFilter(filters['all'], 'all') ?? false;
    const usage = await this.#usage();
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const v of await this.#ctx.volumes.list()) {
      const labels = v.Labels ?? {};
      if ((usage.get(v.Name) ?? 0) > 0) continue;
      if (!all && !(anonymousVolumeLabel in labels)) continue;
      if (!(filters['label'] ?? []).every((l) => labelHas(labels, l))) continue;
      if ((filters['label!'] ?? []).some((l) => labelHas(labels, l))) continue;
      const size = await this.#ctx.volumes.size(v.Name);
      try {
        await this.remove(v.Name);
        deleted.push(v.Name);
        reclaimed += size;
      } catch (err) {
        this.#ctx.logger.debug('prune kept a volume', { volume: v.Name, error: err });
      }
    }
    return { VolumesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
  }

  /** Volumes with `UsageData` (size and reference count), for `system df`. */
  async withUsage(): Promise<Volume[]> {
    const usage = await this.#usage();
    const out: Volume[] = [];
    for (const v of await this.#ctx.volumes.list()) out.push({ ...v, UsageData: { Size: await this.#ctx.volumes.size(v.Name), RefCount: usage.get(v.Name) ?? 0 } });
    return out;
  }
}
