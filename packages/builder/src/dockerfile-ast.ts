import type { Heredoc, ParserDirectives } from './dockerfile-syntax.js';

/** Where an instruction sits in its Dockerfile: 1-based, inclusive, heredoc bodies included. */
export interface SourceRange {
  readonly startLine: number;
  readonly endLine: number;
}

/**
 * A command as written: exec form (`["a", "b"]`, run as is) or shell form (one string,
 * run through the stage's SHELL). Shell-form RUN may carry heredocs.
 */
export interface CommandLine {
  readonly form: 'exec' | 'shell';
  /** Exec form: the argv. Shell form: one element, the command text. */
  readonly args: readonly string[];
  readonly heredocs: readonly Heredoc[];
}

/** An inline file of COPY/ADD, from `COPY <<name /dest`. */
export interface InlineSource {
  readonly name: string;
  readonly content: string;
  /** Whether variables in the body are substituted (delimiter not quoted). */
  readonly expand: boolean;
}

/** A `RUN --mount=type=bind,...`: part of another stage, image or the build context, read-only unless `rw`. */
export interface BindMount {
  readonly type: 'bind';
  readonly target: string;
  readonly source?: string;
  readonly from?: string;
  readonly readWrite: boolean;
}

/** A `RUN --mount=type=cache,...`: a directory kept between builds, keyed by `id` (default: the target). */
export interface CacheMount {
  readonly type: 'cache';
  readonly target: string;
  readonly id: string;
  readonly sharing: 'shared' | 'private' | 'locked';
  readonly readOnly: boolean;
  readonly from?: string;
  readonly source?: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** A `RUN --mount=type=tmpfs,...`. */
export interface TmpfsMount {
  readonly type: 'tmpfs';
  readonly target: string;
  /** Size limit in bytes, when given. */
  readonly size?: number;
}

/** A `RUN --mount=type=secret,...`: a secret file (or `env` variable) the build was given. */
export interface SecretMount {
  readonly type: 'secret';
  readonly id: string;
  readonly target?: string;
  readonly env?: string;
  readonly required: boolean;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** A `RUN --mount=type=ssh,...`: an SSH agent socket the build was given. */
export interface SshMount {
  readonly type: 'ssh';
  readonly id: string;
  readonly target?: string;
  readonly required: boolean;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export type RunMount = BindMount | CacheMount | TmpfsMount | SecretMount | SshMount;

/** The `RUN --network` modes. */
export const RunNetwork = { Default: 'default', None: 'none', Host: 'host' } as const;
export type RunNetwork = (typeof RunNetwork)[keyof typeof RunNetwork];

interface InstructionBase extends SourceRange {
  /** The instruction as written on its logical line (continuations joined), heredoc bodies excluded. */
  readonly original: string;
  /** The `--flags` as written, quotes removed (`--from=build`, `--link`). */
  readonly flags: readonly string[];
  /** The arguments as the line parser split them, unexpanded. */
  readonly args: readonly string[];
}

export interface FromInstruction extends InstructionBase {
  readonly kind: 'FROM';
  readonly image: string;
  /** The stage name of `AS name`, lower-cased. */
  readonly name?: string;
  readonly platform?: string;
}

export interface RunInstruction extends InstructionBase {
  readonly kind: 'RUN';
  readonly command: CommandLine;
  /** The `--mount` values as written; `mounts` is their parse before expansion. */
  readonly mountSpecs: readonly string[];
  readonly mounts: readonly RunMount[];
  readonly network?: RunNetwork;
  readonly security?: 'sandbox' | 'insecure';
}

export interface CmdInstruction extends InstructionBase {
  readonly kind: 'CMD';
  readonly command: CommandLine;
}

export interface EntrypointInstruction extends InstructionBase {
  readonly kind: 'ENTRYPOINT';
  readonly command: CommandLine;
}

interface CopyLike extends InstructionBase {
  readonly sources: readonly string[];
  readonly inline: readonly InlineSource[];
  readonly dest: string;
  readonly chown?: string;
  readonly chmod?: string;
  readonly link: boolean;
  readonly exclude: readonly string[];
  /** Whether the sources were written in JSON form (then paths may hold spaces). */
  readonly json: boolean;
}

export interface CopyInstruction extends CopyLike {
  readonly kind: 'COPY';
  /** `--from`: a stage name, a stage index or an image reference. */
  readonly from?: string;
  readonly parents: boolean;
}

export interface AddInstruction extends CopyLike {
  readonly kind: 'ADD';
  /** `--checksum` of a remote source (`sha256:...`). */
  readonly checksum?: string;
  readonly keepGitDir: boolean;
  /** `--unpack`: explicitly extract (true) or not (false) a local archive; unset means auto-detect. */
  readonly unpack?: boolean;
}

/** A key and its value, as ENV and LABEL take them. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
}

export interface EnvInstruction extends InstructionBase {
  readonly kind: 'ENV';
  readonly pairs: readonly KeyValue[];
  /** Written in the legacy `ENV key value` form. */
  readonly legacy: boolean;
}

export interface LabelInstruction extends InstructionBase {
  readonly kind: 'LABEL';
  readonly pairs: readonly KeyValue[];
  readonly legacy: boolean;
}

/** One declared build argument, with its default when it has one. */
export interface ArgDefinition {
  readonly key: string;
  readonly value?: string;
}

export interface ArgInstruction extends InstructionBase {
  readonly kind: 'ARG';
  readonly definitions: readonly ArgDefinition[];
}

export interface WorkdirInstruction extends InstructionBase {
  readonly kind: 'WORKDIR';
  readonly path: string;
}

export interface UserInstruction extends InstructionBase {
  readonly kind: 'USER';
  readonly user: string;
}

export interface ExposeInstruction extends InstructionBase {
  readonly kind: 'EXPOSE';
  readonly ports: readonly string[];
}

export interface VolumeInstruction extends InstructionBase {
  readonly kind: 'VOLUME';
  readonly paths: readonly string[];
}

export interface StopSignalInstruction extends InstructionBase {
  readonly kind: 'STOPSIGNAL';
  readonly signal: string;
}

/** HEALTHCHECK settings; durations in nanoseconds, as in the image config. */
export interface HealthcheckSettings {
  readonly command: CommandLine;
  readonly interval?: number;
  readonly timeout?: number;
  readonly startPeriod?: number;
  readonly startInterval?: number;
  readonly retries?: number;
}

export interface HealthcheckInstruction extends InstructionBase {
  readonly kind: 'HEALTHCHECK';
  /** Undefined for `HEALTHCHECK NONE`, which turns the base image's check off. */
  readonly check?: HealthcheckSettings;
}

export interface ShellInstruction extends InstructionBase {
  readonly kind: 'SHELL';
  readonly shell: readonly string[];
}

export interface OnbuildInstruction extends InstructionBase {
  readonly kind: 'ONBUILD';
  /** The trigger as stored in the image config (`OnBuild`), heredoc bodies appended. */
  readonly expression: string;
  readonly trigger: Instruction;
}

export interface MaintainerInstruction extends InstructionBase {
  readonly kind: 'MAINTAINER';
  readonly maintainer: string;
}

/** Every instruction of a stage (FROM starts the stage and is kept on it). */
export type Instruction =
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | CopyInstruction
  | AddInstruction
  | EnvInstruction
  | LabelInstruction
  | ArgInstruction
  | WorkdirInstruction
  | UserInstruction
  | ExposeInstruction
  | VolumeInstruction
  | StopSignalInstruction
  | HealthcheckInstruction
  | ShellInstruction
  | OnbuildInstruction
  | MaintainerInstruction;

export type InstructionKind = Instruction['kind'] | 'FROM';

/** One build stage: from its FROM to the next. */
export interface Stage extends SourceRange {
  readonly index: number;
  /** `AS name`, lower-cased. */
  readonly name?: string;
  /** The base as written: an image reference, `scratch`, an earlier stage's name, or containing `$ARG`s. */
  readonly base: string;
  readonly platform?: string;
  readonly from: FromInstruction;
  readonly instructions: readonly Instruction[];
}

/** A parsed Dockerfile. */
export interface Dockerfile {
  /** The name errors use for it (`Dockerfile`). */
  readonly file: string;
  readonly directives: ParserDirectives;
  /** ARGs before the first FROM: usable in FROM lines, and in stages that redeclare them. */
  readonly metaArgs: readonly ArgInstruction[];
  readonly stages: readonly Stage[];
  /** Non-fatal findings (empty continuation lines), each naming file and line. */
  readonly warnings: readonly string[];
}
