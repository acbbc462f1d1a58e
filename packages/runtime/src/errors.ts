import { BerthError, ErrorKind } from '@berth/errors';

/** The stable codes of `RuntimeError`. */
export const RuntimeErrorCode = {
  /** No container with that id in the runtime's root. */
  NotFound: 'ERR_CONTAINER_NOT_FOUND',
  /** A container with that id exists already. */
  Exists: 'ERR_CONTAINER_EXISTS',
  /** config.json (or a process spec, or a build option) is malformed or asks for what cannot be done. */
  InvalidSpec: 'ERR_INVALID_SPEC',
  /** The operation does not fit the container's state (start a running one, delete a running one). */
  State: 'ERR_CONTAINER_STATE',
  /** The container's program does not exist (docker's exit status 127). */
  ExecNotFound: 'ERR_EXEC_NOT_FOUND',
  /** The container's program cannot be run (docker's exit status 126). */
  ExecDenied: 'ERR_EXEC_DENIED',
  /** berth-runtime (or the package's addon) is not built. */
  ShimMissing: 'ERR_SHIM_MISSING',
  /** The runtime in use has no such feature (runc and crun have no log or attach socket). */
  NotSupported: 'ERR_NOT_SUPPORTED',
  /** A user or group of the run options is not in the rootfs's /etc/passwd or /etc/group. */
  UserNotFound: 'ERR_USER_NOT_FOUND',
  /** The runtime failed for another reason; the message carries its words. */
  Runtime: 'ERR_RUNTIME',
} as const;
export type RuntimeErrorCode = (typeof RuntimeErrorCode)[keyof typeof RuntimeErrorCode];

/** What builds the package's native parts, named by a ShimMissing error. */
export const buildCommand = 'npx nx run @berth/runtime:build';

const kinds: Record<RuntimeErrorCode, ErrorKind> = {
  ERR_CONTAINER_NOT_FOUND: ErrorKind.NotFound,
  ERR_CONTAINER_EXISTS: ErrorKind.AlreadyExists,
  ERR_INVALID_SPEC: ErrorKind.InvalidArgument,
  ERR_CONTAINER_STATE: ErrorKind.FailedPrecondition,
  ERR_EXEC_NOT_FOUND: ErrorKind.NotFound,
  ERR_EXEC_DENIED: ErrorKind.PermissionDenied,
  ERR_SHIM_MISSING: ErrorKind.Unavailable,
  ERR_NOT_SUPPORTED: ErrorKind.NotImplemented,
  ERR_USER_NOT_FOUND: ErrorKind.InvalidArgument,
  ERR_RUNTIME: ErrorKind.Internal,
};

const exitCodes: Partial<Record<RuntimeErrorCode, number>> = {
  ERR_EXEC_NOT_FOUND: 127,
  ERR_EXEC_DENIED: 126,
};

/** An error of the runtime or of its driver; `code` says which, `kind` how callers should treat it. */
export class RuntimeError extends BerthError {
  override readonly code: RuntimeErrorCode;

  constructor(message: string, code: RuntimeErrorCode, options: { readonly cause?: unknown } = {}) {
    const exitCode = exitCodes[code];
    super(message, {
      code,
      kind: kinds[code],
      ...(options.cause === undefined ? {} : { cause: options.cause }),
      ...(exitCode === undefined ? {} : { exitCode }),
    });
    this.code = code;
  }
}

/** The RuntimeErrorCode of a code berth-runtime printed, or ERR_RUNTIME for one it does not know. */
export function runtimeErrorCode(shimCode: string | undefined): RuntimeErrorCode {
  switch (shimCode) {
    case 'ERR_CONTAINER_NOT_FOUND':
    case 'ERR_CONTAINER_EXISTS':
    case 'ERR_INVALID_SPEC':
    case 'ERR_CONTAINER_STATE':
    case 'ERR_EXEC_NOT_FOUND':
    case 'ERR_EXEC_DENIED':
    case 'ERR_USER_NOT_FOUND':
      return shimCode;
    case 'ERR_USAGE':
    case 'ERR_UNSUPPORTED':
      return RuntimeErrorCode.InvalidSpec;
    default:
      return RuntimeErrorCode.Runtime;
  }
}
