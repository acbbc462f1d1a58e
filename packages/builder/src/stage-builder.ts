import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorKind } from '@berth/errors';
import { MediaType, digestOf, formatPlatform, shortId, type ContainerConfig, type Descriptor, type Digest, type ImageConfig } from '@berth/oci';
import type { NamespaceMode, RunMount as RuntimeMount } from '@berth/runtime';
import type { BuildMessage } from './build-messages.js';
import type { PlannedStage } from './build-plan.js';
import type { BuildNetworkAttachment, BuildSession } from './build-image.js';
import { stepCacheKey } from './cache-key.js';
import { ImageRoot } from './copy-files.js';
import { hashCopySources } from './copy-sources.js';
import { applyCopy, copyHistoryText } from './copy-step.js';
import type { AddInstruction, CopyInstruction, Instruction, LabelInstruction, RunInstruction } from './dockerfile-ast.js';
import { BuildError, BuilderErrorCode, DockerfileError } from './errors.js';
import { applyMetadata, fileCreatedBy, metadataCreatedBy, nextConfig, scratchState, type ImageState, type StageFlags } from './image-state.js';
import { parseOnbuildTriggers } from './parse-dockerfile.js';
import { fetchRemoteSource, isRemoteSource, type RemoteSource } from './remote-source.js';
import { defaultEtcFiles, runBuildContainer, type EtcFiles } from './run-container.js';
import { prepareRunMounts } from './run-mounts.js';
import { StageExpander, type ExpandedStep } from './stage-expander.js';
import { StepRootfs, removeUnmounted, type MountStub } from './step-rootfs.js';

/** What a stage built: its image and the cache key of its last step. */
export interface StageResult {
  readonly state: ImageState;
  readonly key: string;
}

/** Options of a StageBuilder. */
export interface StageBuilderOptions {
  readonly session: BuildSession;
  readonly planned: PlannedStage;
  /** The number of the stage's FROM in the build's `Step n/total` count. */
  readonly firstStep: number;
  readonly totalSteps: number;
  /** `--label`s, sorted, run as LABEL steps at the end of the target stage. */
  readonly labels: readonly (readonly [string, string])[];
  readonly write: (message: BuildMessage) => void;
}

// What besides the instruction decides a step's result, found before the step runs.
interface StepInputs {
  readonly key: Digest;
  /** The digest of what a COPY/ADD reads (for its history text). */
  readonly sources?: string;
  /** Remote ADD sources downloaded to compute the key. */
  readonly remote?: Map<string, RemoteSource>;
  /** `COPY --link`: the key of its layer alone, which does not depend on the parent. */
  readonly linkKey?: Digest;
}

// The mount points every RUN container gets.
const runStubs: MountStub[] = [
  { path: '/proc', kind: 'dir' },
  { path: '/sys', kind: 'dir' },
  { path: '/dev', kind: 'dir' },
  { path: '/etc/hosts', kind: 'file' },
  { path: '/etc/hostname', kind: 'file' },
  { path: '/etc/resolv.conf', kind: 'file' },
];

// `--add-host host:ip` lines after the container's own.
function withExtraHosts(etc: EtcFiles, extra: readonly string[]): EtcFiles {
  if (extra.length === 0) return etc;
  const lines = extra.map((entry) => {
    const at = entry.indexOf(':');
    return `${entry.slice(at + 1)}\t${entry.slice(0, at)}\n`;
  });
  return { ...etc, hosts: etc.hosts + lines.join('') };
}

const sha256 = (text: string): Digest => `sha256:${createHash('sha256').update(text).digest('hex')}`;

// docker's history text of a RUN: the build args in its environment (`|2 A=1 B=2 `) before the command.
function runCreatedBy(step: ExpandedStep): string {
  const args = Object.entries(step.buildArgs)
    .map(([k, v]) => `${k}=${v}`)
    .sort();
  const command = step.argv!.join(' ');
  return args.length ? `|${args.length} ${args.join(' ')} ${command}` : command;
}

/**
 * Builds one stage: resolves its base (an image, scratch, or another stage of the build),
 * runs the base's ONBUILD triggers, then each instruction, looking every step up in the
 * cache first. Prints docker's classic-builder lines through `write`.
 */
export class StageBuilder {
  readonly #o: StageBuilderOptions;
  readonly #session: BuildSession;
  #state!: ImageState;
  #key = '';
  #expander!: StageExpander;
  readonly #flags: StageFlags = { cmdSet: false };
  #step: number;

  constructor(options: StageBuilderOptions) {
    this.#o = options;
    this.#session = options.session;
    this.#step = options.firstStep;
  }

  #write(message: BuildMessage): void {
    this.#o.write(message);
  }

  #line(text: string): void {
    this.#write({ stream: `${text}\n` });
  }

  async build(): Promise<StageResult> {
    const { planned } = this.#o;
    const s = this.#session;
    this.#line(`Step ${this.#step++}/${this.#o.totalSteps} : ${planned.stage.from.original}`);
    const base = planned.base;
    if (base.kind === 'stage') {
      const dep = await s.stage(base.index);
      this.#state = dep.state;
      this.#key = dep.key;
    } else if (base.kind === 'image') {
      this.#state = await s.image(base.ref, (m) => this.#write(m));
      this.#key = `image:${this.#state.id}`;
    } else {
      this.#state = scratchState(s.platform);
      this.#key = `scratch:${formatPlatform(s.platform)}`;
    }
    const df = s.dockerfile;
    this.#expander = new StageExpander({
      file: df.file,
      escapeToken: df.directives.escape,
      buildArgs: s.options.buildArgs ?? {},
      metaArgs: s.plan.metaArgs,
      ...(this.#state.config.config ? { base: this.#state.config.config } : {}),
    });

    const triggers = this.#state.config.config?.OnBuild ?? [];
    if (triggers.length) {
      const parsed = parseOnbuildTriggers(triggers, { file: `${planned.stage.base} ONBUILD` });
      this.#line(`# Executing ${parsed.length} build trigger${parsed.length === 1 ? '' : 's'}`);
      // The triggers are not passed on: the image built here does not run them again.
      this.#state = { ...this.#state, config: { ...this.#state.config, config: { ...this.#state.config.config, OnBuild: null } } };
      for (const trigger of parsed) await this.#runStep(trigger);
    } else {
      this.#line(` ---> ${this.#state.id ? shortId(this.#state.id) : ''}`);
    }

    for (const instruction of planned.stage.instructions) {
      this.#line(`Step ${this.#step++}/${this.#o.totalSteps} : ${instruction.original}`);
      await this.#runStep(instruction);
    }
    for (const [key, value] of this.#o.labels) {
      const label: LabelInstruction = { kind: 'LABEL', startLine: 0, endLine: 0, original: `LABEL ${key}=${value}`, flags: [], args: [key, value], pairs: [{ key, value }], legacy: false };
      this.#line(`Step ${this.#step++}/${this.#o.totalSteps} : ${label.original}`);
      // docker adds --label values as they are, without variable substitution.
      await this.#execute({ instruction: label, buildArgs: {}, workdir: this.#expander.workdir });
    }
    return { state: this.#state, key: this.#key };
  }

  async #runStep(instruction: Instruction): Promise<void> {
    this.#session.signal.throwIfAborted();
    const step = this.#expander.expand(instruction);
    await this.#execute(step);
  }

  async #execute(step: ExpandedStep): Promise<void> {
    const s = this.#session;
    const signal = s.signal;
    const instruction = step.instruction;
    const inputs = await this.#inputs(step);
    if (instruction.kind === 'CMD') this.#flags.cmdSet = true;
    if (!s.options.noCache) {
      const hit = await s.cache.lookup(inputs.key, this.#state.layers.length, signal);
      if (hit) {
        this.#state = hit;
        this.#key = inputs.key;
        this.#line(' ---> Using cache');
        this.#line(` ---> ${shortId(hit.id!)}`);
        return;
      }
    }
    let next: { readonly config: ContainerConfig; readonly author?: string; readonly createdBy: string; readonly layer?: { readonly descriptor: Descriptor; readonly diffId: Digest; readonly chainId: Digest } };
    const current = this.#state.config.config ?? {};
    switch (instruction.kind) {
      case 'RUN': {
        const layer = await this.#run(step, instruction);
        next = { config: current, createdBy: runCreatedBy(step), ...(layer ? { layer } : {}) };
        break;
      }
      case 'COPY':
      case 'ADD': {
        const { layer, text } = instruction.link ? await this.#linkedCopy(step, instruction, inputs) : await this.#copy(step, instruction, inputs, this.#state.chainId);
        next = { config: current, createdBy: fileCreatedBy(current, text), ...(layer ? { layer } : {}) };
        break;
      }
      case 'WORKDIR': {
        const change = this.#metadata(step);
        const layer = await this.#withRootfs('workdir', undefined, async (rootfs) => {
          new ImageRoot(rootfs.path).ensureDir(step.workdir, undefined);
        });
        next = { config: change.config, createdBy: fileCreatedBy(change.config, change.text), ...(layer ? { layer } : {}) };
        break;
      }
      default: {
        const change = this.#metadata(step);
        next = { config: change.config, ...(change.author ? { author: change.author } : {}), createdBy: metadataCreatedBy(change.config, change.text) };
      }
    }
    this.#state = await this.#commit(next);
    this.#key = inputs.key;
    await s.cache.record(inputs.key, this.#state, { step: next.createdBy, ...(next.layer ? { layerSize: next.layer.descriptor.size } : {}) }, signal);
    this.#line(` ---> ${shortId(this.#state.id!)}`);
  }

  #metadata(step: ExpandedStep): ReturnType<typeof applyMetadata> {
    try {
      return applyMetadata(this.#state.config.config, step, this.#flags);
    } catch (err) {
      if (err instanceof DockerfileError) throw err;
      const i = step.instruction;
      throw new DockerfileError({ file: this.#session.dockerfile.file, line: i.startLine, endLine: i.endLine, reason: err instanceof Error ? err.message : String(err), cause: err });
    }
  }

  // The step's cache key: its parent, the expanded instruction, the build args it reads, and
  // what it reads besides: copied content, `--from` stages and images, bound sources.
  async #inputs(step: ExpandedStep): Promise<StepInputs> {
    const s = this.#session;
    const instruction = step.instruction;
    const extra: Record<string, string> = {};
    const identify = async (from: string): Promise<string> => {
      const target = s.resolveFrom(from);
      if (target.kind === 'stage') return `stage:${(await s.stage(target.index)).key}`;
      return `image:${(await s.image(target.ref, (m) => this.#write(m))).id}`;
    };
    let sources: string | undefined;
    let remote: Map<string, RemoteSource> | undefined;
    if (instruction.kind === 'COPY' || instruction.kind === 'ADD') {
      if (instruction.kind === 'COPY' && instruction.from !== undefined) {
        extra['from'] = await identify(instruction.from);
        sources = sha256(`${extra['from']}\n${instruction.sources.join('\n')}`);
      } else {
        const parts: string[] = [];
        const local = instruction.sources.filter((src) => !(instruction.kind === 'ADD' && isRemoteSource(src)));
        if (local.length) parts.push((await hashCopySources(s.context, local, { cache: await s.hashCache, signal: s.signal })).digest);
        for (const url of instruction.sources.filter((src) => instruction.kind === 'ADD' && isRemoteSource(src))) {
          const checksum = instruction.kind === 'ADD' ? instruction.checksum : undefined;
          if (checksum !== undefined) {
            parts.push(`${url} ${checksum}`);
            continue;
          }
          // Without --checksum the content decides, as docker downloads on every build to see.
          remote ??= new Map();
          const fetched = await this.#download(url, undefined);
          remote.set(url, fetched);
          parts.push(`${url} ${fetched.digest}`);
        }
        sources = sha256(parts.join('\n'));
      }
    }
    if (instruction.kind === 'RUN') {
      for (const [i, mount] of instruction.mounts.entries()) {
        if (mount.type !== 'bind' && mount.type !== 'cache') continue;
        if (mount.from !== undefined) extra[`mount${i}`] = await identify(mount.from);
        else if (mount.type === 'bind') extra[`mount${i}`] = (await hashCopySources(s.context, [mount.source ?? '/'], { cache: await s.hashCache, signal: s.signal })).digest;
      }
    }
    const keyOf = (parent: string): Digest =>
      stepCacheKey({ parent, step, platform: formatPlatform(s.platform), ...(sources ? { sources } : {}), ...(Object.keys(extra).length ? { extra } : {}) });
    const linked = (instruction.kind === 'COPY' || instruction.kind === 'ADD') && instruction.link;
    return { key: keyOf(this.#key), ...(linked ? { linkKey: keyOf('link') } : {}), ...(sources ? { sources } : {}), ...(remote ? { remote } : {}) };
  }

  async #download(url: string, checksum: string | undefined): Promise<RemoteSource> {
    const s = this.#session;
    const dir = join(await s.scratch(), `download-${randomBytes(6).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    return fetchRemoteSource({ url, dir, ...(checksum ? { checksum } : {}), signal: s.signal, logger: s.logger });
  }

  // Runs `work` on a writable root of the step (with `stubs` as mount points), then turns the
  // changes into the step's layer. Whatever happens, no mount or active snapshot is left.
  async #withRootfs(name: string, stubs: readonly MountStub[] | undefined, work: (rootfs: StepRootfs, dir: string) => Promise<void>, parent = this.#state.chainId) {
    const s = this.#session;
    if (parent) await s.ensureSnapshot(this.#state);
    const dir = join(await s.scratch(), `${name}-${randomBytes(6).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    try {
      const rootfs = await StepRootfs.open({
        snapshotter: s.options.snapshotter,
        lease: await s.lease(),
        key: `build-${randomBytes(16).toString('hex')}`,
        parent,
        dir: join(dir, 'fs'),
        ...(stubs ? { stubs } : {}),
        signal: s.signal,
      });
      try {
        await work(rootfs, dir);
        return await rootfs.commit({ compression: s.compression, signal: s.signal });
      } catch (err) {
        await rootfs.discard();
        throw err;
      }
    } finally {
      await removeUnmounted(dir);
    }
  }

  async #run(step: ExpandedStep, instruction: RunInstruction) {
    const s = this.#session;
    const o = s.options;
    const signal = s.signal;
    if (instruction.security === 'insecure') {
      throw new BuildError('RUN --security=insecure is not allowed: Berth runs every RUN confined', { code: BuilderErrorCode.Unsupported, kind: ErrorKind.PermissionDenied });
    }
    const id = randomBytes(32).toString('hex');
    const short = id.slice(0, 12);
    this.#line(` ---> Running in ${short}`);
    const argv = step.argv!;
    const mode = instruction.network ?? o.network ?? 'default';
    await s.ensureSnapshot(this.#state);
    const dir = join(await s.scratch(), `run-${short}`);
    await mkdir(join(dir, 'scratch'), { recursive: true });
    const prepared = await prepareRunMounts(instruction.mounts, {
      workdir: step.workdir,
      cacheRoot: s.cacheRoot,
      contextRoot: () => s.contextDir(),
      rootOf: (from) => s.rootOf(from, (m) => this.#write(m)),
      scratch: join(dir, 'scratch'),
      signal,
    });
    let layer;
    try {
      const mounts: RuntimeMount[] = [...prepared.mounts];
      for (const [i, file] of (step.inlineFiles ?? []).entries()) {
        const path = join(dir, `inline-${i}`);
        await writeFile(path, file.content, { mode: file.mode });
        mounts.push({ type: 'bind', source: path, target: file.path, readOnly: true });
      }
      // /proc, /sys and /dev are the runtime's own mounts: nothing under them needs a stub.
      const stubs = [...runStubs, ...prepared.stubs.filter((st) => !/^\/(proc|sys|dev)(\/|$)/.test(st.path))];
      layer = await this.#withRootfs(`rootfs-${short}`, stubs, async (rootfs) => {
        let attachment: BuildNetworkAttachment | undefined;
        let network: NamespaceMode = mode === 'none' ? 'private' : 'host';
        if (mode === 'default' && o.buildNetwork) {
          attachment = await o.buildNetwork.attach(id, { signal });
          network = attachment.namespace;
        }
        let code: number;
        try {
          code = await runBuildContainer({
            runtime: o.runtime,
            id,
            rootfs: rootfs.path,
            bundle: dir,
            argv,
            env: step.runEnv ?? [],
            user: this.#expander.user,
            workdir: step.workdir,
            mounts,
            network,
            etc: withExtraHosts(attachment?.etc ?? (await defaultEtcFiles(short)), o.extraHosts ?? []),
            ...(o.runLimits ? { limits: o.runLimits } : {}),
            output: (text, stderr) => this.#write({ stream: stderr ? `\u001b[91m${text}\u001b[0m` : text }),
            signal,
          });
        } finally {
          await attachment?.release();
        }
        if (code !== 0) {
          throw new BuildError(`The command '${argv.join(' ')}' returned a non-zero code: ${code}`, { code: BuilderErrorCode.RunFailed, kind: ErrorKind.FailedPrecondition, exitCode: code });
        }
      });
    } finally {
      await prepared.release();
      await removeUnmounted(dir);
    }
    this.#line(`Removing intermediate container ${short}`);
    return layer;
  }

  // Copies onto `parent` (undefined: an empty root) and returns the layer and docker's history text.
  async #copy(step: ExpandedStep, instruction: CopyInstruction | AddInstruction, inputs: StepInputs, parent: Digest | undefined) {
    const s = this.#session;
    let single: Awaited<ReturnType<typeof applyCopy>>['single'];
    const remote = new Map(inputs.remote ?? []);
    if (instruction.kind === 'ADD') {
      for (const url of instruction.sources.filter(isRemoteSource)) if (!remote.has(url)) remote.set(url, await this.#download(url, instruction.checksum));
    }
    const fromRoot = instruction.kind === 'COPY' && instruction.from !== undefined ? await s.rootOf(instruction.from, (m) => this.#write(m)) : undefined;
    const layer = await this.#withRootfs(
      'copy',
      undefined,
      async (rootfs, dir) => {
        const result = await applyCopy({
          instruction,
          workdir: step.workdir,
          root: new ImageRoot(rootfs.path),
          context: s.context,
          ...(fromRoot !== undefined ? { fromRoot } : {}),
          remote,
          staging: join(dir, 'staging'),
          signal: s.signal,
        });
        single = result.single;
      },
      parent,
    );
    return { layer, text: copyHistoryText(instruction, inputs.sources ?? inputs.key, single) };
  }

  /**
   * `COPY --link`: the files go into a layer of their own, made on an empty root and cached by
   * a key without the parent, then laid on top of the parent. A change below the step keeps the
   * layer; the destination is not resolved against the parent (BuildKit's rules).
   */
  async #linkedCopy(step: ExpandedStep, instruction: CopyInstruction | AddInstruction, inputs: StepInputs) {
    const s = this.#session;
    const linkKey = inputs.linkKey!;
    let layer: { readonly descriptor: Descriptor; readonly diffId: Digest } | undefined;
    let text: string | undefined;
    const hit = s.options.noCache ? undefined : await s.cache.lookup(linkKey, 0, s.signal);
    if (hit && hit.layers.length === 1) {
      layer = { descriptor: hit.layers[0]!, diffId: hit.config.rootfs.diff_ids[0]! };
      text = hit.config.history?.[0]?.created_by;
    }
    if (!layer || text === undefined) {
      const made = await this.#copy(step, instruction, inputs, undefined);
      text = made.text;
      if (!made.layer) return { layer: undefined, text };
      layer = made.layer;
      const created = new Date().toISOString();
      const alone = await this.#store(
        { ...scratchState(s.platform).config, created, rootfs: { type: 'layers', diff_ids: [layer.diffId] }, history: [{ created, created_by: text }] },
        [layer.descriptor],
        layer.diffId,
      );
      await s.cache.record(linkKey, alone, { step: text, layerSize: layer.descriptor.size }, s.signal);
    }
    const parent = this.#state.chainId;
    return { layer: { ...layer, chainId: parent ? digestOf(`${parent} ${layer.diffId}`) : layer.diffId }, text };
  }

  // Stores the image of a step: its config (one more history entry, maybe a layer) and a manifest.
  async #commit(next: { readonly config: ContainerConfig; readonly author?: string; readonly createdBy: string; readonly layer?: { readonly descriptor: Descriptor; readonly diffId: Digest; readonly chainId: Digest } }): Promise<ImageState> {
    const config = nextConfig(this.#state.config, {
      config: next.config,
      ...(next.author ? { author: next.author } : {}),
      createdBy: next.createdBy,
      ...(next.layer ? { diffId: next.layer.diffId } : {}),
      created: new Date().toISOString(),
    });
    const layers = next.layer ? [...this.#state.layers, next.layer.descriptor] : this.#state.layers;
    return this.#store(config, layers, next.layer?.chainId ?? this.#state.chainId);
  }

  // Writes a config and a manifest of `layers` through the build's lease.
  async #store(config: ImageConfig, layers: readonly Descriptor[], chainId: Digest | undefined): Promise<ImageState> {
    const s = this.#session;
    const signal = s.signal;
    const lease = await s.lease();
    const configBlob = await lease.content.put(Buffer.from(JSON.stringify(config)), undefined, { signal });
    const oci = layers.map(ociLayer);
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: configBlob.digest, size: configBlob.size },
      layers: oci,
    };
    const manifestBlob = await lease.content.put(Buffer.from(JSON.stringify(manifest)), undefined, { signal });
    return { config, id: configBlob.digest, manifest: { mediaType: MediaType.OciManifest, digest: manifestBlob.digest, size: manifestBlob.size }, layers: oci, chainId };
  }
}

// Docker's layer media types in an OCI manifest become their OCI twins (the bytes are the same).
function ociLayer(layer: Descriptor): Descriptor {
  if (layer.mediaType === MediaType.DockerLayerGzip) return { ...layer, mediaType: MediaType.OciLayerGzip };
  if (layer.mediaType === MediaType.DockerLayer) return { ...layer, mediaType: MediaType.OciLayer };
  return layer;
}
