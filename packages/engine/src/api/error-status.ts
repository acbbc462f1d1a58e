import { ErrorKind, isBerthError, describeError } from '@berth/errors';
import { EngineError, EngineErrorCode } from '../engine.js';

/**
 * Docker's error statuses: the one place where an error kind becomes an HTTP status (the server)
 * and a status becomes a kind again (the remote client).
 */
const statusOfKind: Readonly<Record<ErrorKind, number>> = {
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  InvalidArgument: 400,
  FailedPrecondition: 412,
  PermissionDenied: 403,
  Unavailable: 503,
  NotImplemented: 501,
  Canceled: 499,
  Timeout: 504,
  Internal: 500,
};

/** The HTTP status docker answers for an error of this kind. */
export function httpStatusOf(kind: ErrorKind): number {
  return statusOfKind[kind];
}

/** The kind a status stands for, as docker's client classifies it (404, 409, other 4xx, 5xx). */
export function kindOfHttpStatus(status: number): ErrorKind {
  switch (status) {
    case 404:
      return ErrorKind.NotFound;
    case 409:
      return ErrorKind.Conflict;
    case 401:
    case 403:
      return ErrorKind.PermissionDenied;
    case 412:
      return ErrorKind.FailedPrecondition;
    case 499:
      return ErrorKind.Canceled;
    case 501:
      return ErrorKind.NotImplemented;
    case 503:
      return ErrorKind.Unavailable;
    case 504:
      return ErrorKind.Timeout;
    default:
      return status >= 400 && status < 500 ? ErrorKind.InvalidArgument : ErrorKind.Internal;
  }
}

/**
 * Docker's error body `{"message"}`, plus Berth's `berth` member (code, kind, exit code) that
 * docker clients ignore and the remote client uses to rebuild the same error.
 */
export interface ErrorBody {
  readonly message: string;
  readonly berth?: { readonly code: string; readonly kind: ErrorKind; readonly exitCode?: number };
}

/** The status and body of an error thrown by an Engine call. */
export function errorResponse(err: unknown): { readonly status: number; readonly body: ErrorBody } {
  if (isBerthError(err)) {
    const berth = err.exitCode === undefined ? { code: err.code, kind: err.kind } : { code: err.code, kind: err.kind, exitCode: err.exitCode };
    return { status: httpStatusOf(err.kind), body: { message: describeError(err), berth } };
  }
  return { status: 500, body: { message: describeError(err) } };
}

const kinds = new Set<string>(Object.values(ErrorKind));

/** Rebuilds an engine error from a status and a (possibly non-JSON) error body. */
export function errorFromResponse(status: number, text: string): EngineError {
  let message = text.trim();
  let berth: ErrorBody['berth'];
  try {
    const parsed = JSON.parse(text) as Partial<ErrorBody>;
    if (typeof parsed.message === 'string') message = parsed.message;
    if (parsed.berth && typeof parsed.berth.code === 'string' && kinds.has(parsed.berth.kind)) berth = parsed.berth;
  } catch {
    // Not JSON: a proxy's page or another server's plain text; the text is the message.
  }
  if (!message) message = `the engine answered HTTP ${status}`;
  if (berth) return new EngineError(message, { code: berth.code, kind: berth.kind, ...(berth.exitCode === undefined ? {} : { exitCode: berth.exitCode }) });
  const kind = kindOfHttpStatus(status);
  return new EngineError(message, { code: kind === 'NotImplemented' ? EngineErrorCode.NotImplemented : EngineErrorCode.Remote, kind });
}
