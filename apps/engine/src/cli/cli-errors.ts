import { BerthError, ErrorKind } from '@berth/errors';

/** A command line that does not parse; the CLI prints it with a pointer to `--help`. */
export class UsageError extends BerthError {
  readonly command: string;
  constructor(message: string, command: string) {
    super(message, { code: 'ERR_USAGE', kind: ErrorKind.InvalidArgument });
    this.command = command;
  }
}

/** A failure of a command that has already told the user what went wrong; only its status is left. */
export class StatusError extends BerthError {
  constructor(status: number, message = `exit status ${status}`) {
    super(message, { code: 'ERR_STATUS', kind: ErrorKind.Internal, exitCode: status });
  }
}

/** Thrown by a command that failed on some of its arguments after printing each failure. */
export function failedSome(count: number): StatusError {
  return new StatusError(1, `${count} failed`);
}
