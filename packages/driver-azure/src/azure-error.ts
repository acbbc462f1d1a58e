import { ErrorKind, isBerthError } from '@berth/errors';
import { DriverError } from '@berth/machine';

/** Codes of the azure driver's errors. */
export const AzureErrorCode = {
  /** An ARM call or long-running operation failed; `armCode` holds ARM's code (`AllocationFailed`). */
  Api: 'ERR_AZURE_API',
  /** The credential could not get a token. */
  Auth: 'ERR_AZURE_AUTH',
} as const;

/** An error of the azure driver. */
export class AzureDriverError extends DriverError {
  readonly armCode: string | undefined;
  readonly statusCode: number | undefined;

  constructor(message: string, options: ConstructorParameters<typeof DriverError>[1] & { readonly armCode?: string; readonly statusCode?: number }) {
    super(message, options);
    this.armCode = options.armCode;
    this.statusCode = options.statusCode;
  }
}

function field(error: unknown, name: string): unknown {
  return typeof error === 'object' && error !== null && name in error ? (error as Record<string, unknown>)[name] : undefined;
}

/** ARM's error code of what an SDK call threw (`ResourceNotFound`), if any. */
export function armCodeOf(error: unknown): string | undefined {
  if (error instanceof AzureDriverError) return error.armCode;
  const code = field(error, 'code');
  return typeof code === 'string' ? code : undefined;
}

/** The HTTP status of what an SDK call threw, if any. */
export function statusOf(error: unknown): number | undefined {
  if (error instanceof AzureDriverError) return error.statusCode;
  const status = field(error, 'statusCode');
  return typeof status === 'number' ? status : undefined;
}

/** The error kind of an ARM error code and HTTP status. */
export function armErrorKind(code: string | undefined, status: number | undefined): ErrorKind {
  if (status === 404 || code === 'ResourceNotFound' || code === 'ResourceGroupNotFound' || code === 'NotFound') return ErrorKind.NotFound;
  if (status === 401 || status === 403 || code === 'AuthorizationFailed' || code === 'InvalidAuthenticationToken') return ErrorKind.PermissionDenied;
  if (status === 409 || (code ?? '').includes('InUse')) return ErrorKind.Conflict;
  if (status === 429 || (status !== undefined && status >= 500) || code === 'AllocationFailed' || code === 'OperationNotAllowed' || code === 'SkuNotAvailable') return ErrorKind.Unavailable;
  if (status !== undefined && status >= 400) return ErrorKind.InvalidArgument;
  return ErrorKind.Internal;
}

/** Wraps what an ARM call threw, naming the call; Berth errors pass through. */
export function wrapArmError(call: string, error: unknown): Error {
  if (isBerthError(error)) return error;
  const name = field(error, 'name');
  if (name === 'CredentialUnavailableError' || name === 'AuthenticationError' || name === 'AuthenticationRequiredError' || name === 'AggregateAuthenticationError') {
    return new AzureDriverError(`Azure sign-in failed during ${call}: ${error instanceof Error ? error.message : String(error)}`, { code: AzureErrorCode.Auth, kind: ErrorKind.PermissionDenied, cause: error });
  }
  const code = armCodeOf(error);
  const status = statusOf(error);
  const message = error instanceof Error ? error.message : String(error);
  return new AzureDriverError(`Azure ${call} failed: ${message}${code && !message.includes(code) ? ` (${code})` : ''}`, {
    code: AzureErrorCode.Api,
    kind: armErrorKind(code, status),
    cause: error,
    ...(code ? { armCode: code } : {}),
    ...(status !== undefined ? { statusCode: status } : {}),
  });
}
