/**
 * The closed set of error kinds, after containerd's errdefs. Callers branch on a kind (or a
 * code), never on message text; the API server maps each kind to one HTTP status.
 */
export const ErrorKind = {
  NotFound: 'NotFound',
  AlreadyExists: 'AlreadyExists',
  InvalidArgument: 'InvalidArgument',
  FailedPrecondition: 'FailedPrecondition',
  Conflict: 'Conflict',
  PermissionDenied: 'PermissionDenied',
  Unavailable: 'Unavailable',
  NotImplemented: 'NotImplemented',
  Canceled: 'Canceled',
  Timeout: 'Timeout',
  Internal: 'Internal',
} as const;
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

/** Options of every Berth error. `code` is stable (`ERR_UPPER_SNAKE`), `cause` is the wrapped error. */
export interface BerthErrorOptions {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly cause?: unknown;
  /** A process exit status the CLI should use instead of its default (docker's 125/126/127). */
  readonly exitCode?: number;
}

// A registry-wide symbol, so that `isBerthError` holds across duplicate copies of this package.
const brand = Symbol.for('berth.error');

/** The base class of every error a Berth package throws. Packages subclass it (`RegistryError`, ...). */
export class BerthError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly exitCode: number | undefined;

  constructor(message: string, options: BerthErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.kind = options.kind;
    this.exitCode = options.exitCode;
    Object.defineProperty(this, brand, { value: true });
  }

  // Another copy of this package makes errors of another class; the brand still recognises them.
  // Subclasses keep the ordinary prototype check, so a RegistryError is not a StoreError.
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this === BerthError) return isBerthError(value);
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** True for any Berth error, from whichever copy of this package made it. */
export function isBerthError(value: unknown): value is BerthError {
  return typeof value === 'object' && value !== null && brand in value;
}

/** True when `value` is a Berth error of the given kind. */
export function hasKind(value: unknown, kind: ErrorKind): value is BerthError {
  return isBerthError(value) && value.kind === kind;
}

/** True when `value` is a Berth error with the given code. */
export function hasCode(value: unknown, code: string): value is BerthError {
  return isBerthError(value) && value.code === code;
}

/** The errno code (`ENOENT`, `EEXIST`, ...) of a Node system error, if it is one. */
export function errnoCode(value: unknown): string | undefined {
  if (typeof value === 'object' && value !== null && 'code' in value && typeof value.code === 'string') {
    return value.code;
  }
  return undefined;
}

/**
 * The error an aborted operation throws: a Berth error of kind Canceled that keeps the
 * signal's reason as its cause.
 */
export function abortError(signal: AbortSignal): BerthError {
  return new BerthError('operation canceled', { code: 'ERR_CANCELED', kind: ErrorKind.Canceled, cause: signal.reason });
}

/** Throws `abortError(signal)` when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/**
 * The message of an error and of each error in its cause chain, joined with ": ", skipping a
 * cause whose text the wrapper already repeats.
 */
export function describeError(value: unknown): string {
  const parts: string[] = [];
  let current: unknown = value;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    const message = current instanceof Error ? current.message : String(current);
    if (message && !parts.some((p) => p.includes(message))) parts.push(message);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ');
}
