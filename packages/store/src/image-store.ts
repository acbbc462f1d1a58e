import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorKind, errnoCode, hasCode, throwIfAborted } from '@berth/errors';
import { withFileLock, writeFileAtomic, writeJsonAtomic } from '@berth/fsutil';
import { noopLogger, type Logger } from '@berth/log';
import {
  MediaType,
  familiarName,
  familiarReference,
  hostPlatform,
  parseImageConfig,
  parseReference,
  shortId,
  type Descriptor,
  type Digest,
  type HistoryEntry,
  type ImageConfig,
  type ImageManifest,
  type ImageReference,
  type Platform,
} from '@berth/oci';
import { StoreError, StoreErrorCode } from './errors.js';
import { markReachable, type GcOptions, type GcResult, type SnapshotCollection } from './garbage-collection.js';
import { GcRoots } from './gc-roots.js';
import {
  BerthAnnotation,
  IndexFile,
  annotatedInfo,
  canonicalName,
  entryName,
  imageSize,
  isImageEntry,
  makeEntry,
  resolveTarget,
  type EntryInfo,
} from './image-index.js';
import { LeaseManager, type Lease } from './lease.js';
import { LocalContentStore } from './local-content-store.js';

/** Options of an ImageStore: the state root (`BERTH_ROOT`, which the app resolves). */
export interface ImageStoreOptions {
  readonly root: string;
  readonly logger?: Logger;
  /** The platform whose manifest is chosen from a multi-platform index (default: this host's). */
  readonly platform?: Platform;
}

/** An image as the store knows it: one config (its ID) and the references that name it. */
export interface ImageRecord {
  /** The config digest, which docker calls the image ID. */
  readonly id: Digest;
  /** What the image's first reference points at: a manifest, or an index for a multi-platform pull. */
  readonly target: Descriptor;
  /** The single-platform manifest; the target's digest unless the target is an index. */
  readonly manifestDigest: Digest;
  /** Every name, normalised (`docker.io/library/busybox:latest`, `...@sha256:...`), sorted. */
  readonly references: readonly ImageReference[];
  /** Tag references as docker prints them (`busybox:latest`). */
  readonly repoTags: readonly string[];
  /** Digest references as docker prints them (`busybox@sha256:...`). */
  readonly repoDigests: readonly string[];
  /** The config's creation time (RFC 3339), when it has one. */
  readonly created: string | undefined;
  /** When a name was last set on the image. */
  readonly lastTagTime: string | undefined;
  /** Bytes of the config and layer blobs as stored (compressed where the layers are). */
  readonly size: number;
  /** True when no reference names the image (`<none>:<none>`). */
  readonly dangling: boolean;
}

/** An image record with what `list` adds for docker's `images`. */
export interface ImageSummary extends ImageRecord {
  readonly labels: Readonly<Record<string, string>>;
  /** How many of the given containers use the image. */
  readonly containers: number;
}

/** Everything `inspect` knows about an image. */
export interface ImageDetails extends ImageRecord {
  readonly config: ImageConfig;
  readonly manifest: ImageManifest;
  readonly manifestDescriptor: Descriptor;
}

/** One row of `history`, newest first. */
export interface ImageHistoryItem {
  /** The image ID on the newest row; undefined (docker's `<missing>`) on the others. */
  readonly id: Digest | undefined;
  readonly created: string | undefined;
  readonly createdBy: string;
  readonly comment: string;
  /** The layer blob's size, 0 for steps that made no layer. */
  readonly size: number;
  readonly emptyLayer: boolean;
  readonly tags: readonly string[];
}

/** A container's claim on an image, which the engine passes in (the store knows no containers). */
export interface ImageUser {
  readonly containerId: string;
  readonly imageId: Digest;
  readonly running: boolean;
}

/** Filters of `list`, as docker's `images --filter`. */
export interface ImageFilters {
  readonly dangling?: boolean;
  /** Globs on the familiar name or name:tag (`busy*`, `me/app:1.*`). */
  readonly reference?: readonly string[];
  /** `key` or `key=value`; all must match. */
  readonly label?: readonly string[];
  /** Images created before / since the image this names. */
  readonly before?: string;
  readonly since?: string;
  /** Images created before this time. */
  readonly until?: Date;
}

export interface ListImagesOptions {
  readonly filters?: ImageFilters;
  readonly containers?: readonly ImageUser[];
  readonly signal?: AbortSignal;
}

/** Options of `add`: record an image whose blobs are in the content store. */
export interface AddImageOptions {
  /** The manifest or index the image is. */
  readonly target: Descriptor;
  /** Names to point at it (`busybox:latest`, `busybox@sha256:...`). Without names the image is kept untagged. */
  readonly names?: readonly string[];
  /** The platform to choose from an index (default: the store's). */
  readonly platform?: Platform;
  readonly signal?: AbortSignal;
}

export interface RemoveImageOptions {
  readonly force?: boolean;
  /** The containers that exist, so that images they use are not removed behind their back. */
  readonly containers?: readonly ImageUser[];
  /** Collect garbage after the removal with these options (default: blobs only); false to skip. */
  readonly gc?: Omit<GcOptions, 'signal'> | false;
  readonly signal?: AbortSignal;
}

/** One line of a removal: a name taken away, or an image deleted (docker's `Untagged:` / `Deleted:`). */
export type ImageDeleteRecord = { readonly untagged: string } | { readonly deleted: Digest };

export interface PruneImagesOptions {
  /** Remove every image no container uses, not only dangling ones. */
  readonly all?: boolean;
  readonly containers?: readonly ImageUser[];
  readonly filters?: { readonly until?: Date; readonly label?: readonly string[] };
  readonly gc?: Omit<GcOptions, 'signal'>;
  readonly signal?: AbortSignal;
}

export interface PruneImagesResult {
  readonly records: readonly ImageDeleteRecord[];
  readonly reclaimedBytes: number;
}

const ociLayout = JSON.stringify({ imageLayoutVersion: '1.0.0' }) + '\n';
const hexPrefix = /^(?:sha256:)?([0-9a-f]{1,64})$/;
const defaultPartialMaxAgeMs = 24 * 3600_000;

function notFound(input: string): StoreError {
  return new StoreError(`No such image: ${input}`, { code: StoreErrorCode.ImageNotFound, kind: ErrorKind.NotFound });
}

function conflict(message: string): StoreError {
  return new StoreError(message, { code: StoreErrorCode.ImageConflict, kind: ErrorKind.Conflict });
}

interface NamedEntry {
  readonly name: string;
  readonly ref: ImageReference;
  readonly entry: Descriptor;
}

/** The images of an index.json, grouped by ID, with the entries behind each. */
class ImageTable {
  readonly entries: Descriptor[];
  readonly infos: Map<Descriptor, EntryInfo>;

  constructor(entries: readonly Descriptor[], infos: Map<Descriptor, EntryInfo>) {
    this.entries = [...entries];
    this.infos = infos;
  }

  ids(): Digest[] {
    return [...new Set(this.entries.flatMap((e) => (this.infos.has(e) ? [this.infos.get(e)!.id] : [])))];
  }

  entriesOf(id: Digest): Descriptor[] {
    return this.entries.filter((e) => this.infos.get(e)?.id === id);
  }

  namesOf(id: Digest): NamedEntry[] {
    const out: NamedEntry[] = [];
    for (const entry of this.entriesOf(id)) {
      const name = entryName(entry);
      if (name) out.push({ name, ref: parseReference(name), entry });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  byName(name: string): Descriptor | undefined {
    return this.entries.find((e) => this.infos.has(e) && entryName(e) === name);
  }

  /** Removes the entries named `name`; an image left without any entry keeps an untagged one. */
  removeName(name: string): void {
    const gone = this.entries.filter((e) => entryName(e) === name);
    for (const entry of gone) {
      this.entries.splice(this.entries.indexOf(entry), 1);
      const info = this.infos.get(entry);
      if (info && this.entriesOf(info.id).length === 0) this.#push(makeEntry(entry, info, undefined, entry.annotations?.[BerthAnnotation.Tagged]), info);
    }
  }

  /** Points `name` at `target`, moving it off any other image. */
  setName(name: string, target: Descriptor, info: EntryInfo, now: string): void {
    this.removeName(name);
    for (const e of this.entriesOf(info.id)) {
      if (!entryName(e)) this.entries.splice(this.entries.indexOf(e), 1);
    }
    this.#push(makeEntry(target, info, name, now), info);
  }

  /** Keeps an image without names: adds an untagged entry unless it has entries already. */
  keep(target: Descriptor, info: EntryInfo): void {
    if (this.entriesOf(info.id).length === 0) this.#push(makeEntry(target, info, undefined, undefined), info);
  }

  deleteImage(id: Digest): void {
    for (const e of this.entriesOf(id)) this.entries.splice(this.entries.indexOf(e), 1);
  }

  #push(entry: Descriptor, info: EntryInfo): void {
    this.entries.push(entry);
    this.infos.set(entry, info);
  }

  record(id: Digest): ImageRecord {
    const entries = this.entriesOf(id);
    const named = this.namesOf(id);
    const primary = named[0]?.entry ?? entries[0]!;
    const info = this.infos.get(primary)!;
    const tags: string[] = [];
    const digests: string[] = [];
    for (const { ref } of named) (ref.digest ? digests : tags).push(familiarReference(ref));
    let lastTagTime: string | undefined;
    for (const e of entries) {
      const t = e.annotations?.[BerthAnnotation.Tagged];
      if (t && (!lastTagTime || t > lastTagTime)) lastTagTime = t;
    }
    return {
      id,
      target: stripAnnotations(primary),
      manifestDigest: info.manifestDigest,
      references: named.map((n) => n.ref),
      repoTags: tags,
      repoDigests: digests,
      created: info.created,
      lastTagTime,
      size: info.size,
      dangling: named.length === 0,
    };
  }
}

function stripAnnotations(entry: Descriptor): Descriptor {
  const annotations = Object.fromEntries(Object.entries(entry.annotations ?? {}).filter(([k]) => !k.startsWith('io.berth.')));
  return {
    mediaType: entry.mediaType,
    digest: entry.digest,
    size: entry.size,
    ...(entry.platform ? { platform: entry.platform } : {}),
    ...(Object.keys(annotations).length ? { annotations } : {}),
  };
}

// docker's isSingleReference: at most one tag, and every reference in that tag's repository.
function isSingleReference(names: readonly NamedEntry[]): boolean {
  if (names.length <= 1) return names.length === 1;
  const tags = names.filter((n) => !n.ref.digest);
  if (tags.length > 1) return false;
  const repos = new Set(names.filter((n) => n.ref.digest).map((n) => `${n.ref.domain}/${n.ref.path}`));
  const single = tags[0] ?? names[0]!;
  return repos.size === 1 && repos.has(`${single.ref.domain}/${single.ref.path}`);
}

// path.Match-style glob (`*` within a path segment, `?`, no brackets) as docker's reference filter uses.
function globMatch(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${re}$`).test(value);
}

function labelsMatch(labels: Readonly<Record<string, string>>, wanted: readonly string[]): boolean {
  return wanted.every((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) return w in labels;
    return labels[w.slice(0, eq)] === w.slice(eq + 1);
  });
}

/**
 * The images of a state root in OCI image-layout form. `index.json` holds one entry per
 * name (`org.opencontainers.image.ref.name` and `io.containerd.image.name` are the full
 * normalised reference, so skopeo and containerd tools see the tags), plus an untagged entry
 * for each dangling image; Berth's own facts about an image ride along as `io.berth.*`
 * annotations, so that one atomic rename of index.json commits every change.
 *
 * Locks, always taken in this order and never the other way round: `gc.lock` (garbage
 * collection and lease appends), then `index.lock` (any read-modify-write of index.json).
 * Readers take none: index.json is only ever replaced by rename.
 */
export class ImageStore {
  readonly root: string;
  readonly content: LocalContentStore;
  readonly leases: LeaseManager;
  /** Persistent roots outside index.json (the build cache's intermediate images), kept by `gc`. */
  readonly roots: GcRoots;
  readonly #logger: Logger;
  readonly #platform: Platform;
  readonly #index: IndexFile;
  readonly #infoCache = new Map<string, EntryInfo>();
  readonly #configCache = new Map<Digest, ImageConfig>();
  #ready: Promise<void> | undefined;

  constructor(options: ImageStoreOptions) {
    if (typeof options?.root !== 'string' || options.root === '') {
      throw new StoreError('ImageStore needs a root directory', { code: StoreErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument });
    }
    this.root = options.root;
    this.#logger = options.logger ?? noopLogger;
    this.#platform = options.platform ?? hostPlatform();
    this.content = new LocalContentStore({ root: this.root, logger: this.#logger });
    this.leases = new LeaseManager({ dir: join(this.root, 'leases'), gcLockPath: this.#gcLockPath, content: this.content });
    this.roots = new GcRoots({ dir: join(this.root, 'roots') });
    this.#index = new IndexFile(join(this.root, 'index.json'));
  }

  /** The platform this store picks from multi-platform indexes. */
  get platform(): Platform {
    return this.#platform;
  }

  get #gcLockPath(): string {
    return join(this.root, 'gc.lock');
  }

  get #indexLockPath(): string {
    return join(this.root, 'index.lock');
  }

  /** Creates the layout (`oci-layout`, an empty `index.json`, `blobs/sha256`) when missing. */
  init(): Promise<void> {
    this.#ready ??= (async () => {
      // Made once per root, then only checked: every command opens the store.
      if (existsSync(join(this.root, 'oci-layout')) && existsSync(this.#index.path) && existsSync(join(this.root, 'blobs', 'sha256'))) return;
      await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
      try {
        await readFile(join(this.root, 'oci-layout'));
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
        await writeFileAtomic(join(this.root, 'oci-layout'), ociLayout);
      }
      await withFileLock(this.#indexLockPath, async () => {
        try {
          await readFile(this.#index.path);
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') throw err;
          await writeJsonAtomic(this.#index.path, { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] });
        }
      });
    })();
    return this.#ready;
  }

  /** Starts a lease: blobs and snapshots it names survive garbage collection until it is released. */
  async createLease(options: { readonly signal?: AbortSignal } = {}): Promise<Lease> {
    await this.init();
    return this.leases.create(options);
  }

  /** Runs `fn` under a fresh lease and releases it afterwards, however `fn` ends. */
  async withLease<T>(fn: (lease: Lease) => Promise<T>, options: { readonly signal?: AbortSignal } = {}): Promise<T> {
    const lease = await this.createLease(options);
    try {
      return await fn(lease);
    } finally {
      await lease.release();
    }
  }

  async #info(entry: Descriptor, signal?: AbortSignal): Promise<EntryInfo | undefined> {
    const annotated = annotatedInfo(entry);
    if (annotated) return annotated;
    const cached = this.#infoCache.get(entry.digest);
    if (cached) return cached;
    try {
      const resolved = await resolveTarget(this.content, entry, { platform: this.#platform, ...(signal ? { signal } : {}) });
      const info: EntryInfo = {
        id: resolved.manifest.config.digest,
        manifestDigest: resolved.manifestDescriptor.digest,
        created: resolved.config.created,
        size: imageSize(resolved.manifest),
      };
      this.#infoCache.set(entry.digest, info);
      return info;
    } catch (err) {
      this.#logger.warn('skipping an index.json entry that does not resolve to an image', { digest: entry.digest, error: err });
      return undefined;
    }
  }

  async #table(options: { readonly fresh?: boolean; readonly signal?: AbortSignal } = {}): Promise<ImageTable> {
    await this.init();
    const entries = await this.#index.read({ fresh: options.fresh ?? false });
    const infos = new Map<Descriptor, EntryInfo>();
    for (const entry of entries) {
      if (!isImageEntry(entry)) continue;
      const info = await this.#info(entry, options.signal);
      if (info) infos.set(entry, info);
    }
    return new ImageTable(entries, infos);
  }

  // Read-modify-write of index.json under index.lock; `fn` changes the table in place.
  async #mutate<T>(fn: (table: ImageTable) => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    await this.init();
    return withFileLock(
      this.#indexLockPath,
      async () => {
        const table = await this.#table({ fresh: true, ...(signal ? { signal } : {}) });
        const before = JSON.stringify(table.entries);
        const result = await fn(table);
        // Entries of other tools get Berth's annotations on the way, so the next read needs no blobs.
        const entries = table.entries.map((e) => {
          const info = table.infos.get(e);
          return info && !annotatedInfo(e) ? makeEntry(e, info, entryName(e), undefined) : e;
        });
        if (JSON.stringify(entries) !== before) {
          await writeJsonAtomic(this.#index.path, { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: entries });
        }
        return result;
      },
      signal ? { signal } : {},
    );
  }

  #parseName(name: string, what: string): string {
    const ref = parseReference(name);
    if (ref.tag !== undefined && ref.digest !== undefined) {
      throw new StoreError(`${what} ${JSON.stringify(name)} has both a tag and a digest; give one`, { code: StoreErrorCode.InvalidTag, kind: ErrorKind.InvalidArgument });
    }
    return canonicalName(ref);
  }

  /**
   * Records an image whose manifest (or index), config and layers are in the content store,
   * under `names`. A name that pointed at another image moves; an image left without names
   * stays as a dangling image, as docker keeps it.
   */
  async add(options: AddImageOptions): Promise<ImageRecord> {
    const signal = options.signal;
    throwIfAborted(signal);
    const names = (options.names ?? []).map((n) => this.#parseName(n, 'image name'));
    await this.init();
    const resolved = await resolveTarget(this.content, options.target, {
      platform: options.platform ?? this.#platform,
      ...(signal ? { signal } : {}),
    });
    for (const layer of resolved.manifest.layers) {
      if (!(await this.content.stat(layer.digest))) {
        throw new StoreError(`image ${options.target.digest} is missing layer ${layer.digest}`, {
          code: StoreErrorCode.InvalidImage,
          kind: ErrorKind.FailedPrecondition,
        });
      }
    }
    const info: EntryInfo = {
      id: resolved.manifest.config.digest,
      manifestDigest: resolved.manifestDescriptor.digest,
      created: resolved.config.created,
      size: imageSize(resolved.manifest),
    };
    const now = new Date().toISOString();
    return this.#mutate((table) => {
      for (const name of names) table.setName(name, options.target, info, now);
      table.keep(options.target, info);
      return table.record(info.id);
    }, signal);
  }

  /** The image `nameOrId` names, or undefined. See `resolve`. */
  async find(nameOrId: string, options: { readonly signal?: AbortSignal } = {}): Promise<ImageRecord | undefined> {
    const table = await this.#table(options);
    const id = this.#lookup(table, nameOrId);
    return id ? table.record(id) : undefined;
  }

  /**
   * The image a reference names, as docker resolves it: a full ID (`sha256:...` or 64 hex), a
   * name with tag or digest (`busybox` means `busybox:latest`), else a unique ID prefix.
   */
  async resolve(nameOrId: string, options: { readonly signal?: AbortSignal } = {}): Promise<ImageRecord> {
    const record = await this.find(nameOrId, options);
    if (!record) throw notFound(nameOrId);
    return record;
  }

  #lookup(table: ImageTable, input: string): Digest | undefined {
    const ids = table.ids();
    const full = /^(?:sha256:)?([0-9a-f]{64})$/.exec(input);
    if (full) return ids.find((id) => id === `sha256:${full[1]}`);
    let ref: ImageReference | undefined;
    try {
      ref = parseReference(input);
    } catch (err) {
      if (!hexPrefix.test(input)) throw err;
    }
    if (ref) {
      const name = canonicalName(ref);
      const entry = table.byName(name);
      if (entry) return table.infos.get(entry)!.id;
      if (ref.digest) {
        const repo = `${ref.domain}/${ref.path}`;
        const match = ids.find(
          (id) =>
            table.namesOf(id).some((n) => `${n.ref.domain}/${n.ref.path}` === repo) &&
            table.entriesOf(id).some((e) => e.digest === ref.digest || table.infos.get(e)!.manifestDigest === ref.digest),
        );
        if (match) return match;
      }
    }
    const prefix = hexPrefix.exec(input);
    if (!prefix) return undefined;
    const matches = ids.filter((id) => id.startsWith(`sha256:${prefix[1]}`));
    if (matches.length > 1) {
      throw new StoreError(`multiple images found with ID prefix ${input}`, { code: StoreErrorCode.AmbiguousImageId, kind: ErrorKind.InvalidArgument });
    }
    return matches[0];
  }

  async #config(id: Digest, signal?: AbortSignal): Promise<ImageConfig> {
    const cached = this.#configCache.get(id);
    if (cached) return cached;
    const config = parseImageConfig(await this.content.readBytes(id, signal ? { signal } : {}));
    this.#configCache.set(id, config);
    return config;
  }

  /** Every image, newest first, as docker's `images` lists them. */
  async list(options: ListImagesOptions = {}): Promise<ImageSummary[]> {
    const table = await this.#table(options);
    const f = options.filters ?? {};
    const pivot = async (input: string | undefined) => {
      if (input === undefined) return undefined;
      const id = this.#lookup(table, input);
      if (!id) throw notFound(input);
      return table.record(id).created ?? '';
    };
    const before = await pivot(f.before);
    const since = await pivot(f.since);
    const out: ImageSummary[] = [];
    for (const id of table.ids()) {
      const record = table.record(id);
      if (f.dangling !== undefined && record.dangling !== f.dangling) continue;
      const created = record.created ?? '';
      if (before !== undefined && !(created < before)) continue;
      if (since !== undefined && !(created > since)) continue;
      if (f.until && !(created && new Date(created) < f.until)) continue;
      if (f.reference?.length) {
        const candidates = record.references.flatMap((r) => [familiarName(r), familiarReference(r)]);
        if (!f.reference.some((p) => candidates.some((c) => globMatch(p, c)))) continue;
      }
      let labels: Readonly<Record<string, string>> = {};
      try {
        labels = (await this.#config(id, options.signal)).config?.Labels ?? {};
      } catch (err) {
        if (!hasCode(err, StoreErrorCode.BlobNotFound)) throw err;
      }
      if (f.label?.length && !labelsMatch(labels, f.label)) continue;
      const containers = (options.containers ?? []).filter((c) => c.imageId === id).length;
      out.push({ ...record, labels, containers });
    }
    return out.sort((a, b) => ((b.created ?? '') < (a.created ?? '') ? -1 : (b.created ?? '') > (a.created ?? '') ? 1 : 0));
  }

  /** The record, config and manifest of an image. */
  async inspect(nameOrId: string, options: { readonly signal?: AbortSignal } = {}): Promise<ImageDetails> {
    const record = await this.resolve(nameOrId, options);
    const resolved = await resolveTarget(this.content, record.target, {
      platform: this.#platform,
      chosen: record.manifestDigest,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return { ...record, config: resolved.config, manifest: resolved.manifest, manifestDescriptor: resolved.manifestDescriptor };
  }

  /** The build steps of an image, newest first, as docker's `history` shows them. */
  async history(nameOrId: string, options: { readonly signal?: AbortSignal } = {}): Promise<ImageHistoryItem[]> {
    const details = await this.inspect(nameOrId, options);
    const layers = details.manifest.layers;
    const steps: readonly HistoryEntry[] = details.config.history?.length
      ? details.config.history
      : layers.map(() => ({ created_by: '' }));
    let layer = 0;
    const rows = steps.map((step): Omit<ImageHistoryItem, 'id' | 'tags'> => {
      const empty = step.empty_layer === true;
      const size = empty ? 0 : (layers[layer++]?.size ?? 0);
      return { created: step.created, createdBy: step.created_by ?? '', comment: step.comment ?? '', size, emptyLayer: empty };
    });
    return rows.reverse().map((row, i) => ({ ...row, id: i === 0 ? details.id : undefined, tags: i === 0 ? details.repoTags : [] }));
  }

  /** Adds the name `target` (`repo[:tag]`) to the image `source` names, as docker's `tag`. */
  async tag(source: string, target: string, options: { readonly signal?: AbortSignal } = {}): Promise<ImageRecord> {
    const ref = parseReference(target);
    if (ref.digest) {
      throw new StoreError(`refusing to create a tag with a digest reference: ${target}`, { code: StoreErrorCode.InvalidTag, kind: ErrorKind.InvalidArgument });
    }
    const name = canonicalName(ref);
    const now = new Date().toISOString();
    return this.#mutate((table) => {
      const id = this.#lookup(table, source);
      if (!id) throw notFound(source);
      const primary = table.record(id).target;
      const entry = table.entriesOf(id).find((e) => e.digest === primary.digest)!;
      table.setName(name, entry, table.infos.get(entry)!, now);
      return table.record(id);
    }, options.signal);
  }

  /**
   * Removes a name or an image with docker's `rmi` semantics. A name is untagged; the image
   * goes with its last name. An ID removes the image, which needs force when several
   * repositories name it or a stopped container uses it; a running container's image never goes.
   */
  async remove(nameOrId: string, options: RemoveImageOptions = {}): Promise<ImageDeleteRecord[]> {
    const force = options.force ?? false;
    const users = options.containers ?? [];
    const records = await this.#mutate((table) => {
      const id = this.#lookup(table, nameOrId);
      if (!id) throw notFound(nameOrId);
      const out: ImageDeleteRecord[] = [];
      const short = shortId(id);
      const running = users.find((c) => c.imageId === id && c.running);
      const stopped = users.find((c) => c.imageId === id && !c.running);
      let names = table.namesOf(id);
      const prefix = hexPrefix.exec(nameOrId);
      const byId = prefix !== null && id.startsWith(`sha256:${prefix[1]}`);
      let quiet = false;

      if (!byId) {
        const user = running ?? stopped;
        if (!force && isSingleReference(names) && user) {
          throw conflict(
            `conflict: unable to remove repository reference "${nameOrId}" (must force) - container ${user.containerId.slice(0, 12)} is using its referenced image ${short}`,
          );
        }
        const ref = parseReference(nameOrId);
        const name = canonicalName(ref);
        table.removeName(name);
        out.push({ untagged: familiarReference(parseReference(name)) });
        names = table.namesOf(id);
        if (!ref.digest) {
          const repo = `${ref.domain}/${ref.path}`;
          const sameRepo = (n: NamedEntry) => `${n.ref.domain}/${n.ref.path}` === repo;
          if (!names.some((n) => !n.ref.digest && sameRepo(n))) {
            for (const n of names.filter((n) => n.ref.digest && sameRepo(n))) {
              table.removeName(n.name);
              out.push({ untagged: familiarReference(n.ref) });
            }
            names = table.namesOf(id);
          }
        }
        if (names.length > 0) return out;
        quiet = true;
      } else if (isSingleReference(names)) {
        if (running) throw conflict(`conflict: unable to delete ${short} (cannot be forced) - image is being used by running container ${running.containerId.slice(0, 12)}`);
        if (!force && stopped) throw conflict(`conflict: unable to delete ${short} (must be forced) - image is being used by stopped container ${stopped.containerId.slice(0, 12)}`);
        for (const n of names) {
          table.removeName(n.name);
          out.push({ untagged: familiarReference(n.ref) });
        }
        names = [];
      }

      // docker's imageDeleteHelper: hard conflicts always, soft ones unless forced.
      let why: string | undefined;
      let used = false;
      if (running) {
        why = `conflict: unable to delete ${short} (cannot be forced) - image is being used by running container ${running.containerId.slice(0, 12)}`;
        used = true;
      } else if (!force && names.length > 0) {
        why = `conflict: unable to delete ${short} (must be forced) - image is referenced in multiple repositories`;
      } else if (!force && stopped) {
        why = `conflict: unable to delete ${short} (must be forced) - image is being used by stopped container ${stopped.containerId.slice(0, 12)}`;
        used = true;
      }
      if (why) {
        // After untagging its last name, a used image stays (dangling) without complaint.
        if (quiet && used) return out;
        throw conflict(why);
      }
      for (const n of table.namesOf(id)) out.push({ untagged: familiarReference(n.ref) });
      table.deleteImage(id);
      out.push({ deleted: id });
      return out;
    }, options.signal);
    if (options.gc !== false && records.some((r) => 'deleted' in r)) {
      await this.gc({ ...(options.gc ?? {}), ...(options.signal ? { signal: options.signal } : {}) });
    }
    return records;
  }

  /** docker's `image prune`: dangling images (or, with `all`, every image) no container uses. */
  async prune(options: PruneImagesOptions = {}): Promise<PruneImagesResult> {
    const used = new Set((options.containers ?? []).map((c) => c.imageId));
    const candidates = await this.list({
      filters: {
        ...(options.all ? {} : { dangling: true }),
        ...(options.filters?.until ? { until: options.filters.until } : {}),
        ...(options.filters?.label ? { label: options.filters.label } : {}),
      },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const victims = new Set(candidates.filter((c) => !used.has(c.id)).map((c) => c.id));
    const records = await this.#mutate((table) => {
      const out: ImageDeleteRecord[] = [];
      for (const id of victims) {
        // Named meanwhile by another process: no longer dangling.
        if (table.entriesOf(id).length === 0 || (!options.all && table.namesOf(id).length > 0)) continue;
        for (const n of table.namesOf(id)) out.push({ untagged: familiarReference(n.ref) });
        table.deleteImage(id);
        out.push({ deleted: id });
      }
      return out;
    }, options.signal);
    const result = await this.gc({ ...(options.gc ?? {}), ...(options.signal ? { signal: options.signal } : {}) });
    return { records, reclaimedBytes: result.reclaimedBytes };
  }

  /**
   * Garbage collection: marks what index.json, `roots`, live leases and writes in progress reach,
   * removes every other blob, discards stale partial downloads, and hands the live snapshot
   * keys (every image's chain IDs, leased and `keepSnapshots` keys) to the snapshot collector.
   */
  async gc(options: GcOptions = {}): Promise<GcResult> {
    await this.init();
    const signal = options.signal;
    let collection: SnapshotCollection | undefined;
    const result = await withFileLock(
      this.#gcLockPath,
      async (): Promise<GcResult> => {
        // Leases before roots: a writer sets its root before it releases its lease.
        const leased = await this.leases.active();
        const rooted = (await this.roots.list()).map((r) => r.descriptor);
        const entries = await this.#index.read({ fresh: true });
        const marked = await markReachable(this.content, { descriptors: [...entries, ...rooted], digests: leased.blobs }, signal);
        const removedBlobs: Digest[] = [];
        let reclaimedBytes = 0;
        for await (const blob of this.content.list()) {
          throwIfAborted(signal);
          if (marked.blobs.has(blob.digest)) continue;
          if (await this.content.delete(blob.digest)) {
            removedBlobs.push(blob.digest);
            reclaimedBytes += blob.size;
          }
        }
        const ingests = await this.content.cleanIngests({
          maxAgeMs: options.partialMaxAgeMs ?? defaultPartialMaxAgeMs,
          ...(signal ? { signal } : {}),
        });
        let removedSnapshots: readonly string[] = [];
        if (options.snapshots) {
          const live = new Set<string>([...marked.chainIds, ...leased.snapshots, ...(options.keepSnapshots ?? [])]);
          collection = await options.snapshots.collect(live, signal ? { signal } : {});
          removedSnapshots = collection.removed;
        }
        return { removedBlobs, reclaimedBytes, removedSnapshots, removedIngests: ingests.removed, expiredLeases: leased.expired };
      },
      signal ? { signal } : {},
    );
    await collection?.purge();
    if (result.removedBlobs.length || result.removedSnapshots.length) {
      this.#logger.info('garbage collected', { blobs: result.removedBlobs.length, bytes: result.reclaimedBytes, snapshots: result.removedSnapshots.length });
    }
    return result;
  }
}
