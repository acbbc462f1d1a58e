import { BerthError, ErrorKind } from '@berth/errors';

/** The stable codes of the builder's errors. */
export const BuilderErrorCode = {
  /** The Dockerfile does not parse: unknown instruction, bad flag, wrong argument count, ... */
  DockerfileSyntax: 'ERR_DOCKERFILE_SYNTAX',
  /** A variable substitution failed: `${v:?message}`, a bad `${...}` form. */
  DockerfileExpansion: 'ERR_DOCKERFILE_EXPANSION',
  /** `--target` names no stage. */
  TargetNotFound: 'ERR_BUILD_TARGET_NOT_FOUND',
  /** `COPY --from` or `RUN --mount=from=` form a cycle between stages, or point at the stage itself. */
  StageCycle: 'ERR_BUILD_STAGE_CYCLE',
  /** A COPY/ADD source matched nothing in the (filtered) build context. */
  SourceNotFound: 'ERR_BUILD_SOURCE_NOT_FOUND',
  /** The build context is unusable: not a directory, a bad tar, a missing Dockerfile. */
  InvalidContext: 'ERR_BUILD_CONTEXT_INVALID',
  /** A remote ADD source did not match its `--checksum`. */
  ChecksumMismatch: 'ERR_BUILD_CHECKSUM_MISMATCH',
  /** A remote ADD source could not be fetched. */
  RemoteSource: 'ERR_BUILD_REMOTE_SOURCE',
  /** The options of a build are unusable (a missing handle, a relative path, a bad output). */
  InvalidOptions: 'ERR_BUILD_INVALID_OPTIONS',
  /** A RUN exited with a non-zero status (the error's `exitCode` is that status). */
  RunFailed: 'ERR_BUILD_RUN_FAILED',
  /** A base image (FROM, `COPY --from`, a mount's `from`) is not in the store and could not be pulled. */
  BaseImage: 'ERR_BUILD_BASE_IMAGE',
  /** What the Dockerfile asks cannot be done here: another platform, a git source, a secret not given. */
  Unsupported: 'ERR_BUILD_UNSUPPORTED',
  /** A COPY/ADD could not be applied to the image (a file where a directory must be, an unknown --chown user). */
  CopyFailed: 'ERR_BUILD_COPY_FAILED',
} as const;
export type BuilderErrorCode = (typeof BuilderErrorCode)[keyof typeof BuilderErrorCode];

/** Options of a DockerfileError: where in which file, and what is wrong there. */
export interface DockerfileErrorOptions {
  readonly file: string;
  /** 1-based line where the offending instruction starts (0 when the file as a whole is at fault). */
  readonly line: number;
  readonly endLine?: number;
  /** What is wrong, without the location: `unknown instruction: FORM (did you mean FROM?)`. */
  readonly reason: string;
  readonly code?: BuilderErrorCode;
  readonly kind?: ErrorKind;
  readonly cause?: unknown;
}

/**
 * A Dockerfile that cannot be parsed or expanded. The message reads like docker's,
 * `Dockerfile:3: unknown instruction: FORM (did you mean FROM?)`; `file`, `line` and `reason`
 * are kept apart for callers that render them their own way.
 */
export class DockerfileError extends BerthError {
  readonly file: string;
  readonly line: number;
  readonly endLine: number;
  readonly reason: string;

  constructor(options: DockerfileErrorOptions) {
    const where = options.line > 0 ? `${options.file}:${options.line}` : options.file;
    super(`${where}: ${options.reason}`, {
      code: options.code ?? BuilderErrorCode.DockerfileSyntax,
      kind: options.kind ?? ErrorKind.InvalidArgument,
      cause: options.cause,
    });
    this.file = options.file;
    this.line = options.line;
    this.endLine = options.endLine ?? options.line;
    this.reason = options.reason;
  }
}

/** A variable substitution that failed, before it is placed at a file and line. */
export class ExpansionError extends BerthError {
  constructor(message: string) {
    super(message, { code: BuilderErrorCode.DockerfileExpansion, kind: ErrorKind.InvalidArgument });
  }
}

/** Errors about the build context, COPY/ADD sources and remote sources. */
export class BuildContextError extends BerthError {}

/** Errors about planning the stages of a build (`--target`, stage references). */
export class BuildPlanError extends BerthError {}

/**
 * Errors of executing a build: a failing RUN (with docker's message, `The command '/bin/sh -c
 * exit 3' returned a non-zero code: 3`, and `exitCode` 3, which the docker CLI exits with),
 * base images, COPY/ADD application, options.
 */
export class BuildError extends BerthError {}
