import { ErrorKind, isBerthError } from '@berth/errors';
import { DriverError } from '@berth/machine';

/** Codes of the aws driver's errors. */
export const AwsErrorCode = {
  /** An EC2 API call failed; `awsCode` holds EC2's own error code. */
  Api: 'ERR_AWS_API',
  /** No AMI matched the default Ubuntu lookup in the region. */
  NoImage: 'ERR_AWS_NO_IMAGE',
  /** The VPC or subnet to launch into could not be found. */
  NoNetwork: 'ERR_AWS_NO_NETWORK',
} as const;

/** An error of the aws driver; for failed API calls `awsCode` is EC2's code (`InvalidAMIID.NotFound`). */
export class AwsDriverError extends DriverError {
  readonly awsCode: string | undefined;

  constructor(message: string, options: ConstructorParameters<typeof DriverError>[1] & { readonly awsCode?: string }) {
    super(message, options);
    this.awsCode = options.awsCode;
  }
}

/** EC2's error code of an SDK error (`InvalidInstanceID.NotFound`), or undefined. */
export function ec2ErrorCode(error: unknown): string | undefined {
  if (error instanceof AwsDriverError) return error.awsCode;
  if (typeof error === 'object' && error !== null && '$metadata' in error && 'name' in error && typeof error.name === 'string') return error.name;
  return undefined;
}

function kindOf(code: string, status: number | undefined): ErrorKind {
  if (code.endsWith('.NotFound') || code.endsWith('NotFound')) return ErrorKind.NotFound;
  if (code.endsWith('.Duplicate')) return ErrorKind.AlreadyExists;
  if (code === 'DependencyViolation' || code === 'IncorrectInstanceState') return ErrorKind.Conflict;
  if (code === 'AuthFailure' || code === 'UnauthorizedOperation' || status === 401 || status === 403) return ErrorKind.PermissionDenied;
  if (code === 'RequestLimitExceeded' || code === 'InsufficientInstanceCapacity' || (status !== undefined && status >= 500)) return ErrorKind.Unavailable;
  if (status !== undefined && status >= 400) return ErrorKind.InvalidArgument;
  return ErrorKind.Internal;
}

/** Wraps what an EC2 call threw, naming the action; Berth errors (cancellation) pass through. */
export function wrapEc2Error(action: string, error: unknown): Error {
  if (isBerthError(error)) return error;
  const code = ec2ErrorCode(error);
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const message = error instanceof Error ? error.message : String(error);
  return new AwsDriverError(`EC2 ${action} failed: ${message}${code ? ` (${code})` : ''}`, {
    code: AwsErrorCode.Api,
    kind: code ? kindOf(code, status) : ErrorKind.Unavailable,
    cause: error,
    ...(code ? { awsCode: code } : {}),
  });
}
