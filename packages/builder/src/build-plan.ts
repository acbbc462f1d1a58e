import { parsePlatform } from '@berth/oci';
import { ErrorKind } from '@berth/errors';
import type { Dockerfile, Stage } from './dockerfile-ast.js';
import { platformArgs, proxyBuildArgs, resolveMetaArgs, type BuildPlatforms } from './build-args.js';
import { BuilderErrorCode, BuildPlanError, DockerfileError, ExpansionError } from './errors.js';
import { StageExpander } from './stage-expander.js';
import { expandWord } from './word-expansion.js';

/** Options of `planBuild`. */
export interface BuildPlanOptions {
  /** The stage to build (`--target`); default the last one. */
  readonly target?: string;
  readonly buildArgs?: Readonly<Record<string, string>>;
  readonly platforms?: BuildPlatforms;
}

/** What a stage starts from. */
export type StageBase = { readonly kind: 'scratch' } | { readonly kind: 'image'; readonly ref: string } | { readonly kind: 'stage'; readonly index: number };

/** A stage the build needs, with what it needs first. */
export interface PlannedStage {
  readonly index: number;
  readonly name?: string;
  readonly stage: Stage;
  readonly base: StageBase;
  /** `FROM --platform`, expanded. */
  readonly platform?: string;
  /** Indices of the stages this one reads: its base, `COPY --from` and `RUN --mount=from=`. */
  readonly dependsOn: readonly number[];
  /** Image references read by `COPY --from` and `RUN --mount=from=` (not stages). */
  readonly images: readonly string[];
}

/** The stages to build for a target, in an order the executor can follow. */
export interface BuildPlan {
  readonly target: number;
  /** Only the stages the target needs, dependencies before dependents. */
  readonly stages: readonly PlannedStage[];
  /** Stage indices grouped so that a group depends only on earlier groups: each group can build in parallel. */
  readonly levels: readonly (readonly number[])[];
  /** The global scope FROM lines were expanded with (platform args and ARGs before the first FROM). */
  readonly metaArgs: ReadonlyMap<string, string>;
  /** Build args nothing in the needed stages declares (docker warns about these). */
  readonly unusedBuildArgs: readonly string[];
}

type Reference = { kind: 'stage'; index: number } | { kind: 'image'; ref: string };

/**
 * Plans a build: resolves each stage's base (scratch, an image, or an earlier stage), the
 * stages and images it reads, keeps only what `target` needs, and groups the stages into
 * levels that can build in parallel. Throws BuildPlanError for an unknown target or a cycle,
 * DockerfileError for a bad substitution in FROM or `--from`.
 */
export function planBuild(dockerfile: Dockerfile, options: BuildPlanOptions = {}): BuildPlan {
  const file = dockerfile.file;
  const escapeToken = dockerfile.directives.escape;
  const buildArgs = options.buildArgs ?? {};
  const metaArgs = resolveMetaArgs(dockerfile.metaArgs, { file, escapeToken, buildArgs, ...(options.platforms ? { platforms: options.platforms } : {}) });
  const stages = dockerfile.stages;
  const byName = new Map(stages.filter((s) => s.name !== undefined).map((s) => [s.name!, s.index]));

  const expandFrom = (stage: Stage, text: string, what: string): string => {
    try {
      const value = expandWord(text, metaArgs, { escapeToken }).value;
      if (value === '') throw new Error(`${what} (${text}) should not be blank`);
      return value;
    } catch (err) {
      throw new DockerfileError({
        file,
        line: stage.startLine,
        reason: err instanceof Error ? err.message : String(err),
        ...(err instanceof ExpansionError ? { code: BuilderErrorCode.DockerfileExpansion } : {}),
        cause: err,
      });
    }
  };

  const resolveRef = (stage: Stage, value: string, line: number): Reference => {
    const named = byName.get(value.toLowerCase());
    if (named !== undefined) {
      if (named === stage.index) throw cycle(stages[named]!);
      return { kind: 'stage', index: named };
    }
    if (/^\d+$/.test(value)) {
      const index = Number(value);
      if (index >= stage.index) {
        throw new DockerfileError({ file, line, reason: `invalid from flag value ${value}: refers to current or future build stage` });
      }
      return { kind: 'stage', index };
    }
    return { kind: 'image', ref: value };
  };

  const planned: PlannedStage[] = stages.map((stage) => {
    const image = expandFrom(stage, stage.base, 'base name');
    let base: StageBase;
    const earlier = byName.get(image.toLowerCase());
    if (earlier !== undefined && earlier < stage.index) base = { kind: 'stage', index: earlier };
    else if (image === 'scratch') base = { kind: 'scratch' };
    else base = { kind: 'image', ref: image };

    let platform: string | undefined;
    if (stage.platform !== undefined) {
      platform = expandFrom(stage, stage.platform, 'platform');
      try {
        parsePlatform(platform);
      } catch (err) {
        throw new DockerfileError({ file, line: stage.startLine, reason: `failed to parse platform ${platform}`, cause: err });
      }
    }

    const deps = new Set<number>(base.kind === 'stage' ? [base.index] : []);
    const images = new Set<string>();
    const add = (ref: Reference) => (ref.kind === 'stage' ? deps.add(ref.index) : images.add(ref.ref));
    const expander = new StageExpander({ file, escapeToken, buildArgs, metaArgs });
    for (const instruction of stage.instructions) {
      const needsExpansion = instruction.kind === 'ARG' || instruction.kind === 'ENV' || (instruction.kind === 'COPY' && instruction.from !== undefined) || instruction.kind === 'RUN';
      if (!needsExpansion) continue;
      const expanded = expander.expand(instruction).instruction;
      if (expanded.kind === 'COPY' && expanded.from !== undefined) add(resolveRef(stage, expanded.from, instruction.startLine));
      if (expanded.kind === 'RUN') {
        for (const mount of expanded.mounts) {
          if ((mount.type === 'bind' || mount.type === 'cache') && mount.from !== undefined) add(resolveRef(stage, mount.from, instruction.startLine));
        }
      }
    }
    return {
      index: stage.index,
      ...(stage.name !== undefined ? { name: stage.name } : {}),
      stage,
      base,
      ...(platform !== undefined ? { platform } : {}),
      dependsOn: [...deps].sort((a, b) => a - b),
      images: [...images],
    };
  });

  let target = stages.length - 1;
  if (options.target !== undefined) {
    const found = byName.get(options.target.toLowerCase());
    if (found === undefined) {
      throw new BuildPlanError(`target stage ${JSON.stringify(options.target)} could not be found`, { code: BuilderErrorCode.TargetNotFound, kind: ErrorKind.NotFound });
    }
    target = found;
  }

  // Depth-first from the target: the order in which stages finish is a dependency order,
  // and a stage met again while still open closes a cycle.
  const state = new Map<number, 'open' | 'done'>();
  const order: number[] = [];
  const level = new Map<number, number>();
  const visit = (index: number): void => {
    const seen = state.get(index);
    if (seen === 'done') return;
    if (seen === 'open') throw cycle(stages[index]!);
    state.set(index, 'open');
    for (const dep of planned[index]!.dependsOn) visit(dep);
    state.set(index, 'done');
    order.push(index);
    level.set(index, Math.max(-1, ...planned[index]!.dependsOn.map((d) => level.get(d)!)) + 1);
  };
  visit(target);

  const levels: number[][] = [];
  for (const index of order) (levels[level.get(index)!] ??= []).push(index);
  for (const group of levels) group.sort((a, b) => a - b);

  const declared = new Set<string>(platformArgs().keys());
  for (const a of dockerfile.metaArgs) for (const d of a.definitions) declared.add(d.key);
  for (const index of order) {
    for (const instruction of stages[index]!.instructions) {
      if (instruction.kind === 'ARG') for (const d of instruction.definitions) declared.add(d.key);
    }
  }
  const unusedBuildArgs = Object.keys(buildArgs)
    .filter((k) => !declared.has(k) && !proxyBuildArgs.has(k))
    .sort();

  return { target, stages: order.map((i) => planned[i]!), levels, metaArgs, unusedBuildArgs };
}

function cycle(stage: Stage): BuildPlanError {
  return new BuildPlanError(`circular dependency detected on stage: ${stage.name ?? stage.index}`, {
    code: BuilderErrorCode.StageCycle,
    kind: ErrorKind.InvalidArgument,
  });
}
