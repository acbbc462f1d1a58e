/** The body of `POST /containers/{id}/exec` (`ExecConfig`). */
export interface ExecConfig {
  readonly AttachStdin?: boolean;
  readonly AttachStdout?: boolean;
  readonly AttachStderr?: boolean;
  /** `[height, width]`. */
  readonly ConsoleSize?: readonly [number, number] | null;
  readonly DetachKeys?: string;
  readonly Tty?: boolean;
  /** `KEY=value` added to the container's environment. */
  readonly Env?: readonly string[] | null;
  readonly Cmd: readonly string[];
  readonly Privileged?: boolean;
  readonly User?: string;
  readonly WorkingDir?: string;
}

/** The body of `POST /exec/{id}/start` (`ExecStartConfig`). */
export interface ExecStartConfig {
  readonly Detach?: boolean;
  readonly Tty?: boolean;
  readonly ConsoleSize?: readonly [number, number] | null;
}

/** `GET /exec/{id}/json`. `ExitCode` is null while the process runs. */
export interface ExecInspectResponse {
  readonly ID: string;
  readonly Running: boolean;
  readonly ExitCode: number | null;
  readonly ProcessConfig: {
    readonly privileged: boolean;
    readonly user: string;
    readonly tty: boolean;
    readonly entrypoint: string;
    readonly arguments: readonly string[];
  };
  readonly OpenStdin: boolean;
  readonly OpenStderr: boolean;
  readonly OpenStdout: boolean;
  readonly CanRemove: boolean;
  readonly ContainerID: string;
  readonly DetachKeys: string;
  readonly Pid: number;
}
