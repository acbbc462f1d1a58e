import { ErrorKind, isBerthError } from '@berth/errors';
import { DriverError } from '@berth/machine';

/** Codes of the gcp driver's errors. */
export const GcpErrorCode = {
  /** A Compute Engine API call failed; `grpcCode` holds the status it mapped to. */
  Api: 'ERR_GCP_API',
  /** An operation finished with errors (quota, capacity, a bad field); `operationErrors` holds GCE's codes. */
  Operation: 'ERR_GCP_OPERATION',
} as const;

/** gRPC status codes the REST transport maps HTTP statuses to. */
export const GrpcStatus = {
  InvalidArgument: 3,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Unavailable: 14,
  Unauthenticated: 16,
} as const;

/** An error of the gcp driver. */
export class GcpDriverError extends DriverError {
  readonly grpcCode: number | undefined;
  readonly operationErrors: readonly string[];

  constructor(message: string, options: ConstructorParameters<typeof DriverError>[1] & { readonly grpcCode?: number; readonly operationErrors?: readonly string[] }) {
    super(message, options);
    this.grpcCode = options.grpcCode;
    this.operationErrors = options.operationErrors ?? [];
  }
}

/** The gRPC status of what a Compute call threw, if it has one. */
export function grpcCodeOf(error: unknown): number | undefined {
  if (error instanceof GcpDriverError) return error.grpcCode;
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'number') return error.code;
  return undefined;
}

function kindOf(code: number | undefined): ErrorKind {
  switch (code) {
    case GrpcStatus.NotFound:
      return ErrorKind.NotFound;
    case GrpcStatus.AlreadyExists:
      return ErrorKind.AlreadyExists;
    case GrpcStatus.PermissionDenied:
    case GrpcStatus.Unauthenticated:
      return ErrorKind.PermissionDenied;
    case GrpcStatus.ResourceExhausted:
    case GrpcStatus.Unavailable:
      return ErrorKind.Unavailable;
    case GrpcStatus.InvalidArgument:
      return ErrorKind.InvalidArgument;
    case GrpcStatus.FailedPrecondition:
      return ErrorKind.FailedPrecondition;
    default:
      return ErrorKind.Internal;
  }
}

/** Wraps what a Compute call threw, naming the call; Berth errors pass through. */
export function wrapComputeError(call: string, error: unknown): Error {
  if (isBerthError(error)) return error;
  const code = grpcCodeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  return new GcpDriverError(`Compute ${call} failed: ${message}`, { code: GcpErrorCode.Api, kind: kindOf(code), cause: error, ...(code !== undefined ? { grpcCode: code } : {}) });
}
