import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rmdir } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { ErrorKind, abortError, errnoCode, hasKind, isBerthError, throwIfAborted } from '@berth/errors';
import { writeFileAtomic } from '@berth/fsutil';
import { noopLogger, type Logger } from '@berth/log';
import {
  chainIds,
  familiarReference,
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  parseReference,
  shortId,
  type Descriptor,
  type Digest,
  type ImageConfig,
  type Platform,
} from '@berth/oci';
import type { RegistryClient } from '@berth/registry';
import type { NamespaceMode, Runtime } from '@berth/runtime';
import { mountAll, unmount, type Snapshotter } from '@berth/snapshot';
import type { ImageStore, Lease } from '@berth/store';
import { BuildCache } from './build-cache.js';
import { readBuildContext, type BuildContext } from './build-context.js';
import { OrderedOutput, startOperation, type BuildMessage, type Operation } from './build-messages.js';
import { planBuild, type BuildPlan } from './build-plan.js';
import { materializeContext, spoolContext } from './context-spool.js';
import { ContentHashCache } from './copy-sources.js';
import type { Dockerfile } from './dockerfile-ast.js';
import { BuildError, BuilderErrorCode, BuildContextError } from './errors.js';
import { exportImageState, type BuildOutput } from './build-output.js';
import type { ImageState } from './image-state.js';
import { parseDockerfile } from './parse-dockerfile.js';
import type { EtcFiles, RunLimits } from './run-container.js';
import { StageBuilder, type StageResult } from './stage-builder.js';
import { removeUnmounted } from './step-rootfs.js';

/** A RUN container's place on the build's `default` network, as a `BuildNetwork` gives it. */
export interface BuildNetworkAttachment {
  /** The network namespace to join (a path), or `host`. */
  readonly namespace: NamespaceMode;
  /** /etc/hosts and /etc/resolv.conf for the container (default: localhost and the host's resolv.conf). */
  readonly etc?: EtcFiles;
  /** Called once the container ended. */
  release(): Promise<void>;
}

/**
 * How RUN containers on the `default` network get one: the engine plugs its bridge in here.
 * Without it `default` shares the host's network, as BuildKit does where it has no CNI.
 */
export interface BuildNetwork {
  attach(containerId: string, options: { readonly signal?: AbortSignal }): Promise<BuildNetworkAttachment>;
}

/** Where the build context comes from: a directory, or a context tar as `POST /build` receives it. */
export type BuildContextSource = { readonly dir: string } | { readonly tar: Readable };

/** Options of `buildImage`: docker build's flags plus the handles the engine owns. */
export interface BuildImageOptions {
  readonly context: BuildContextSource;
  /**
   * The Dockerfile: its path inside the context (default `Dockerfile`; an absolute path for a
   * directory context may lie outside it), or its text (`-f -`).
   */
  readonly dockerfile?: string | { readonly text: string; readonly name?: string };
  /** `-t`: names to tag the result with. */
  readonly tags?: readonly string[];
  /** `--build-arg`. */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** `--target`: the stage to build (default the last). */
  readonly target?: string;
  /** `--label`: added to the result as LABEL steps, as docker's classic builder does. */
  readonly labels?: Readonly<Record<string, string>>;
  /** `--no-cache`: build every step again (the results still refresh the cache). */
  readonly noCache?: boolean;
  /** `--pull`: pull every base image even when the store has it. */
  readonly pull?: boolean;
  /** `-q`: only the image ID (the step output is kept back, and shown only with an error). */
  readonly quiet?: boolean;
  /** `--platform`: must be this host's (cross-platform builds need emulation Berth does not have). */
  readonly platform?: string;
  /** `--network`: the network of RUN steps that do not set `--network` (default `default`). */
  readonly network?: 'default' | 'none' | 'host';
  /** `--output type=local,dest=DIR` and `type=tar,dest=FILE` (or a stream): the result's file system. */
  readonly outputs?: readonly BuildOutput[];
  /** `--iidfile`: the image ID is written there. */
  readonly iidFile?: string;
  /** Compression of the layers the build makes (default gzip, as docker pushes them). */
  readonly compression?: 'gzip' | 'zstd' | 'none';
  readonly images: ImageStore;
  readonly snapshotter: Snapshotter;
  readonly runtime: Runtime;
  /**
   * Pulls base images the store lacks (or all with `pull`); without it a missing base image
   * fails the build. A function is called only when a pull is needed, so a cached build never
   * loads the registry client.
   */
  readonly registry?: RegistryClient | (() => Promise<RegistryClient>);
  /** The `default` network of RUN containers (see BuildNetwork). */
  readonly buildNetwork?: BuildNetwork;
  /** `--add-host` entries (`host:ip`) for the RUN containers' /etc/hosts. */
  readonly extraHosts?: readonly string[];
  /** `--memory`, `--cpu-shares`, `--shm-size`, ... of the RUN containers. */
  readonly runLimits?: RunLimits;
  /** Scratch space that dies with the host (`<runRoot>/builder`): mounts, bundles, the unpacked context. */
  readonly workDir: string;
  /** RUN cache mounts and the context hash cache (default `<store root>/builder`). */
  readonly cacheRoot?: string;
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
}

/** What a build made. */
export interface BuildResult {
  /** The image ID (`sha256:` digest of the config). */
  readonly imageId: Digest;
  /** The image's manifest in the store. */
  readonly manifest: Descriptor;
  readonly config: ImageConfig;
  /** The names it was tagged with, normalised (`busybox:latest`). */
  readonly tags: readonly string[];
}

/** A running build: iterate it for docker's JSON messages, await `result` for the image. */
export type BuildOperation = Operation<BuildResult, BuildMessage>;

function invalid(message: string, cause?: unknown): BuildError {
  return new BuildError(message, { code: BuilderErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument, ...(cause ? { cause } : {}) });
}

/**
 * Builds an image from a Dockerfile, as docker's classic builder does it (its output, its
 * history strings, one image per step), with BuildKit's extensions: only the stages the
 * target needs, independent stages in parallel, `RUN --mount`, heredocs, `COPY --link`,
 * `--chmod`, `--exclude`, `--parents`. RUN steps run through the runtime in containers of the
 * step's overlay snapshot; layers are the snapshot's diff. Every step is cached by a key of
 * its parent, instruction, build args and copied content, as GC roots of the image store
 * (see `pruneBuildCache`). The result is tagged only when the whole build succeeded; a
 * failed or aborted build leaves no container, mount or active snapshot behind.
 */
export function buildImage(options: BuildImageOptions): BuildOperation {
  if (!options?.images || !options.snapshotter || !options.runtime) throw invalid('buildImage needs images, snapshotter and runtime');
  if (typeof options.workDir !== 'string' || !isAbsolute(options.workDir)) throw invalid(`workDir must be an absolute path, got ${JSON.stringify(options.workDir)}`);
  if (!options.context || (!('dir' in options.context) && !('tar' in options.context))) throw invalid('context must be { dir } or { tar }');
  for (const tag of options.tags ?? []) {
    try {
      parseReference(tag);
    } catch (err) {
      throw invalid(`invalid tag ${JSON.stringify(tag)}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  }
  for (const host of options.extraHosts ?? []) {
    if (!/^[^:\s]+:\S+$/.test(host)) throw invalid(`invalid --add-host ${JSON.stringify(host)}: want host:ip`);
  }
  for (const output of options.outputs ?? []) {
    if (output.type !== 'local' && output.type !== 'tar') throw invalid(`unsupported output type ${JSON.stringify((output as { type: string }).type)}: want local or tar`);
  }
  return startOperation<BuildResult, BuildMessage>((emit) => new BuildSession(options, emit).run());
}

/** What the stages of one build share. */
export class BuildSession {
  readonly options: BuildImageOptions;
  readonly logger: Logger;
  readonly platform: Platform;
  readonly cacheRoot: string;
  readonly compression: 'gzip' | 'zstd' | 'none';
  readonly cache: BuildCache;
  readonly hashCache: Promise<ContentHashCache>;
  readonly #emit: (message: BuildMessage) => void;
  readonly #abort = new AbortController();
  readonly #images = new Map<string, Promise<ImageState>>();
  readonly #snapshots = new Map<string, Promise<void>>();
  readonly #views = new Map<string, Promise<string>>();
  readonly #viewPaths: string[] = [];
  readonly #stages = new Map<number, Promise<StageResult>>();
  #scratch: Promise<string> | undefined;
  #lease: Promise<Lease> | undefined;
  #context: BuildContext | undefined;
  #plan: BuildPlan | undefined;
  #dockerfile: Dockerfile | undefined;
  #quietHeld: BuildMessage[] = [];
  #firstFailure: { readonly error: unknown } | undefined;
  #contextDir: string | undefined;

  constructor(options: BuildImageOptions, emit: (message: BuildMessage) => void) {
    this.options = options;
    this.logger = (options.logger ?? noopLogger).child({ component: 'builder' });
    this.#emit = emit;
    this.cacheRoot = options.cacheRoot ?? join(options.images.root, 'builder');
    this.compression = options.compression ?? 'gzip';
    this.cache = new BuildCache({ images: options.images });
    this.platform = hostPlatform();
    this.hashCache = 'dir' in options.context ? ContentHashCache.load(this.#hashCachePath(options.context.dir)) : Promise.resolve(new ContentHashCache());
    this.hashCache.catch(() => {});
    if (options.signal) {
      if (options.signal.aborted) this.#abort.abort(options.signal.reason);
      else options.signal.addEventListener('abort', () => this.#abort.abort(options.signal!.reason), { once: true });
    }
  }

  /** Aborted when the caller aborts or a stage fails. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /**
   * The build's lease on what it writes, taken on first use: a build that finds every step in
   * the cache writes nothing and takes none.
   */
  lease(): Promise<Lease> {
    this.#lease ??= this.options.images.createLease({ signal: this.signal });
    return this.#lease;
  }

  get context(): BuildContext {
    return this.#context!;
  }

  get plan(): BuildPlan {
    return this.#plan!;
  }

  get dockerfile(): Dockerfile {
    return this.#dockerfile!;
  }

  /** The build's scratch directory under `workDir`, made on first use. */
  scratch(): Promise<string> {
    this.#scratch ??= (async () => {
      await mkdir(this.options.workDir, { recursive: true });
      return mkdtemp(join(this.options.workDir, 'build-'));
    })();
    return this.#scratch;
  }

  #hashCachePath(dir: string): string {
    return join(this.cacheRoot, 'context-hashes', `${createHash('sha256').update(resolve(dir)).digest('hex')}.json`);
  }

  /** Sends a message (held back with `quiet`, except what a quiet build shows). */
  emit(message: BuildMessage): void {
    if (this.options.quiet) this.#quietHeld.push(message);
    else this.#emit(message);
  }

  async run(): Promise<BuildResult> {
    try {
      return await this.#build();
    } catch (err) {
      // With -q, the output is shown after all when the build fails, as docker does.
      for (const m of this.#quietHeld.splice(0)) this.#emit(m);
      if (this.options.signal?.aborted && !(isBerthError(err) && hasKind(err, 'Canceled'))) throw abortError(this.options.signal);
      throw err;
    } finally {
      this.#abort.abort();
      await this.#close();
    }
  }

  async #close(): Promise<void> {
    for (const path of this.#viewPaths.splice(0)) {
      await unmount(path).catch((err: unknown) => this.logger.warn('cannot unmount a build view', { path, error: err }));
      await rmdir(path).catch(() => {});
    }
    const lease = await this.#lease?.catch(() => undefined);
    await lease?.release().catch(() => {});
    // Everything below was unmounted; what failed to unmount is left rather than deleted through.
    const scratch = await this.#scratch?.catch(() => undefined);
    if (scratch) await removeUnmounted(scratch);
  }

  async #build(): Promise<BuildResult> {
    const o = this.options;
    if (o.platform !== undefined) this.#checkPlatform(o.platform, '--platform');

    const { context, text, name } = await this.#loadContext();
    this.#context = context;
    const dockerfile = parseDockerfile(text, { file: name });
    this.#dockerfile = dockerfile;
    for (const w of dockerfile.warnings) this.emit({ stream: `[WARNING]: ${w}\n` });
    const plan = planBuild(dockerfile, {
      ...(o.target !== undefined ? { target: o.target } : {}),
      buildArgs: o.buildArgs ?? {},
      platforms: { build: this.platform, target: this.platform },
    });
    this.#plan = plan;
    for (const stage of plan.stages) if (stage.platform !== undefined) this.#checkPlatform(stage.platform, `FROM --platform of stage ${stage.name ?? stage.index}`);

    const labels = Object.keys(o.labels ?? {}).sort();
    const sizes = plan.stages.map((s) => 1 + s.stage.instructions.length + (s.index === plan.target ? labels.length : 0));
    const total = sizes.reduce((a, b) => a + b, 0);
    const output = new OrderedOutput<BuildMessage>(plan.stages.length, (m) => this.emit(m));
    let first = 1;
    const runs: Promise<StageResult>[] = [];
    for (const [position, planned] of plan.stages.entries()) {
      const builder = new StageBuilder({
        session: this,
        planned,
        firstStep: first,
        totalSteps: total,
        labels: planned.index === plan.target ? labels.map((k) => [k, o.labels![k]!] as const) : [],
        write: (m) => output.write(position, m),
      });
      first += sizes[position]!;
      const result = builder.build().finally(() => output.finish(position));
      result.catch((error: unknown) => {
        this.#firstFailure ??= { error };
        this.#abort.abort();
      });
      this.#stages.set(planned.index, result);
      runs.push(result);
    }
    await Promise.allSettled(runs);
    // The stage that failed first is the cause; the others stopped because of it.
    if (this.#firstFailure) throw this.#firstFailure.error;

    const target = await this.#stages.get(plan.target)!;
    throwIfAborted(o.signal);
    const tags = await this.#finish(target.state);
    const hashCache = await this.hashCache;
    if ('dir' in o.context) await hashCache.save(this.#hashCachePath(o.context.dir)).catch(() => {});
    return { imageId: target.state.id!, manifest: target.state.manifest!, config: target.state.config, tags };
  }

  async #finish(state: ImageState): Promise<string[]> {
    const o = this.options;
    const signal = this.signal;
    if (!state.id || !state.manifest) {
      // `FROM scratch` and nothing else: docker refuses it too.
      throw new BuildError('no image was generated: the target stage only names its base', { code: BuilderErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument });
    }
    if (this.plan.unusedBuildArgs.length) this.emit({ stream: `[Warning] One or more build-args [${this.plan.unusedBuildArgs.join(' ')}] were not consumed\n` });
    for (const output of o.outputs ?? []) {
      await exportImageState(state, output, { session: this, signal });
    }
    const tags = (o.tags ?? []).map((t) => familiarReference(parseReference(t)));
    // Tag only what does not already name this image: a fully cached build rewrites nothing.
    const pending: string[] = [];
    for (const tag of tags) if ((await o.images.find(tag, { signal }))?.id !== state.id) pending.push(tag);
    if (pending.length || tags.length === 0) await o.images.add({ target: state.manifest, names: pending, platform: this.platform, signal });
    if (o.iidFile) await writeFileAtomic(o.iidFile, state.id);
    this.#emit({ aux: { ID: state.id } });
    if (o.quiet) {
      this.#quietHeld = [];
      this.#emit({ stream: `${state.id}\n` });
    } else {
      this.emit({ stream: `Successfully built ${shortId(state.id)}\n` });
      for (const tag of tags) this.emit({ stream: `Successfully tagged ${tag}\n` });
    }
    return tags;
  }

  #checkPlatform(text: string, what: string): void {
    let wanted: Platform;
    try {
      wanted = normalizePlatform(parsePlatform(text));
    } catch (err) {
      throw invalid(`${what}: invalid platform ${JSON.stringify(text)}`, err);
    }
    const host = normalizePlatform(this.platform);
    if (wanted.os !== host.os || wanted.architecture !== host.architecture || (wanted.variant ?? '') !== (host.variant ?? '')) {
      throw new BuildError(`${what}: cannot build for ${formatPlatform(wanted)} on this ${formatPlatform(host)} host (no emulation)`, {
        code: BuilderErrorCode.Unsupported,
        kind: ErrorKind.NotImplemented,
      });
    }
  }

  // The context and the Dockerfile: a directory is walked where it is; a tar is spooled, not unpacked.
  async #loadContext(): Promise<{ context: BuildContext; text: string; name: string }> {
    const o = this.options;
    const df = o.dockerfile;
    const signal = this.signal;
    if ('tar' in o.context) {
      const spooled = await spoolContext({ stream: o.context.tar, dir: join(await this.scratch(), 'context'), ...(typeof df === 'string' ? { dockerfile: df } : {}), signal });
      if (typeof df === 'object') return { context: spooled.context, text: df.text, name: df.name ?? 'Dockerfile' };
      return { context: spooled.context, text: spooled.dockerfile.text, name: spooled.dockerfile.name };
    }
    const dir = o.context.dir;
    const context = readBuildContext({ dir, signal });
    context.catch(() => {});
    if (typeof df === 'object') return { context: await context, text: df.text, name: df.name ?? 'Dockerfile' };
    // Without a name, `Dockerfile`, else `dockerfile`, as the docker CLI looks for it.
    const named = df ?? (!existsSync(join(dir, 'Dockerfile')) && existsSync(join(dir, 'dockerfile')) ? 'dockerfile' : 'Dockerfile');
    const path = isAbsolute(named) ? named : join(dir, named);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new BuildContextError(`cannot read the Dockerfile ${path}: ${errnoCode(err) === 'ENOENT' ? 'no such file' : String(err)}`, {
        code: BuilderErrorCode.InvalidContext,
        kind: ErrorKind.NotFound,
        cause: err,
      });
    }
    return { context: await context, text, name: named };
  }

  /** The context as a directory, for a RUN that binds it: a spooled context is written out once. */
  contextDir(): string {
    this.#contextDir ??= materializeContext(this.context);
    return this.#contextDir;
  }

  /** The result of a stage of this build, once it is built. */
  stage(index: number): Promise<StageResult> {
    const found = this.#stages.get(index);
    if (!found) throw new BuildError(`stage ${index} is not part of this build`, { code: BuilderErrorCode.InvalidOptions, kind: ErrorKind.Internal });
    return found;
  }

  /** What a `--from` value names: a stage of this build (by name or index) or an image. */
  resolveFrom(value: string): { readonly kind: 'stage'; readonly index: number } | { readonly kind: 'image'; readonly ref: string } {
    const lower = value.toLowerCase();
    const named = this.dockerfile.stages.find((s) => s.name === lower);
    if (named) return { kind: 'stage', index: named.index };
    if (/^\d+$/.test(value)) return { kind: 'stage', index: Number(value) };
    return { kind: 'image', ref: value };
  }

  /**
   * An image from the store, pulled first when absent (or always with `pull`); pull progress
   * goes to `write`. Each reference is resolved once per build.
   */
  image(ref: string, write: (m: BuildMessage) => void): Promise<ImageState> {
    let found = this.#images.get(ref);
    if (!found) {
      found = this.#resolveImage(ref, write);
      this.#images.set(ref, found);
    }
    return found;
  }

  async #resolveImage(refText: string, write: (m: BuildMessage) => void): Promise<ImageState> {
    const o = this.options;
    const signal = this.signal;
    const stateOf = async (nameOrId: string): Promise<ImageState> => {
      const details = await o.images.inspect(nameOrId, { signal });
      const { platform: _platform, ...manifest } = details.manifestDescriptor;
      const host = normalizePlatform(this.platform);
      if (details.config.os !== host.os || details.config.architecture !== host.architecture) {
        write({ stream: `WARNING: The requested image's platform (${details.config.os}/${details.config.architecture}) does not match the detected host platform (${formatPlatform(host)}) and no specific platform was requested\n` });
      }
      return { config: details.config, id: details.id, manifest, layers: details.manifest.layers, chainId: chainIds(details.config.rootfs.diff_ids).at(-1) };
    };
    if (/^(sha256:)?[0-9a-f]{64}$/.test(refText)) return stateOf(refText);
    let ref;
    try {
      ref = parseReference(refText);
    } catch (err) {
      throw new BuildError(`invalid reference format: ${refText}`, { code: BuilderErrorCode.BaseImage, kind: ErrorKind.InvalidArgument, cause: err });
    }
    const name = familiarReference(ref);
    if (!o.pull && (await o.images.find(name, { signal }))) return stateOf(name);
    if (!o.registry) {
      throw new BuildError(`image ${name} is not in the store, and this build cannot pull`, { code: BuilderErrorCode.BaseImage, kind: ErrorKind.NotFound });
    }
    try {
      const registry = typeof o.registry === 'function' ? await o.registry() : o.registry;
      const pull = registry.pull(ref, { content: (await this.lease()).content, platform: this.platform, signal });
      for await (const event of pull) {
        write({
          status: event.status,
          ...(event.id !== undefined ? { id: event.id } : {}),
          progressDetail: event.current !== undefined ? { current: event.current, ...(event.total !== undefined ? { total: event.total } : {}) } : {},
        });
      }
      const result = await pull.result;
      await o.images.add({ target: result.descriptor, names: [name], platform: this.platform, signal });
    } catch (err) {
      if (signal.aborted) throw err;
      // A pull that fails leaves a stored image usable, as docker falls back to it with --pull.
      if (o.pull && (await o.images.find(name, { signal }))) {
        write({ stream: `WARNING: pulling ${name} failed, using the stored image: ${err instanceof Error ? err.message : String(err)}\n` });
        return stateOf(name);
      }
      throw new BuildError(`failed to resolve base image ${name}: ${err instanceof Error ? err.message : String(err)}`, {
        code: BuilderErrorCode.BaseImage,
        kind: hasKind(err, 'NotFound') ? ErrorKind.NotFound : ErrorKind.Unavailable,
        cause: err,
      });
    }
    return stateOf(name);
  }

  /** Makes sure the snapshot of `state`'s top layer exists, unpacking what is missing. */
  ensureSnapshot(state: ImageState): Promise<void> {
    const chain = state.chainId;
    if (!chain) return Promise.resolve();
    let pending = this.#snapshots.get(chain);
    if (!pending) {
      pending = (async () => {
        const snapshotter = this.options.snapshotter;
        const lease = await this.lease();
        await lease.add({ snapshots: [chain] }, { signal: this.signal });
        if (await snapshotter.stat(chain)) return;
        await snapshotter.unpack({ content: lease.content, layers: state.layers, diffIds: state.config.rootfs.diff_ids, signal: this.signal });
      })();
      pending.catch(() => this.#snapshots.delete(chain));
      this.#snapshots.set(chain, pending);
    }
    return pending;
  }

  /** A read-only view of `state`'s root file system, mounted until the build ends. */
  view(state: ImageState): Promise<string> {
    const key = state.chainId ?? 'empty';
    let found = this.#views.get(key);
    if (!found) {
      found = (async () => {
        const path = join(await this.scratch(), `view-${randomBytes(6).toString('hex')}`);
        await mkdir(path);
        if (!state.chainId) return path;
        await this.ensureSnapshot(state);
        await mountAll(await this.options.snapshotter.view(state.chainId), path, this.signal);
        this.#viewPaths.push(path);
        return path;
      })();
      this.#views.set(key, found);
    }
    return found;
  }

  /** The root of what a `--from` names (a stage of this build or an image), as a read-only view. */
  async rootOf(from: string, write: (m: BuildMessage) => void): Promise<string> {
    const target = this.resolveFrom(from);
    const state = target.kind === 'stage' ? (await this.stage(target.index)).state : await this.image(target.ref, write);
    return this.view(state);
  }
}
