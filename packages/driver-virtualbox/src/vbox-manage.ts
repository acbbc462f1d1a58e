import { execFile } from 'node:child_process';
import { ErrorKind, errnoCode, throwIfAborted } from '@berth/errors';
import type { Logger } from '@berth/log';
import { DriverError } from '@berth/machine';

/** Codes of the virtualbox driver's errors. */
export const VirtualBoxErrorCode = {
  /** VBoxManage exited non-zero; the message holds its `VBoxManage: error:` lines. */
  Command: 'ERR_VIRTUALBOX_COMMAND',
  /** VBoxManage is not installed or not on PATH. */
  Missing: 'ERR_VIRTUALBOX_MISSING',
  /** Hardware virtualization (VT-x/AMD-V) is off or unavailable. */
  NoVtx: 'ERR_VIRTUALBOX_NO_VTX',
  /** The boot image could not be found, downloaded or verified. */
  Image: 'ERR_VIRTUALBOX_IMAGE',
} as const;

/** An error of the virtualbox driver; for failed commands `stderr` holds what VBoxManage printed. */
export class VirtualBoxError extends DriverError {
  readonly stderr: string;

  constructor(message: string, options: ConstructorParameters<typeof DriverError>[1] & { readonly stderr?: string }) {
    super(message, options);
    this.stderr = options.stderr ?? '';
  }
}

/** True when VBoxManage said the VM (or medium, interface) does not exist. */
export function isObjectNotFound(error: unknown): boolean {
  return error instanceof VirtualBoxError && /VBOX_E_OBJECT_NOT_FOUND|Could not find a registered machine|VERR_FILE_NOT_FOUND|Could not find a host interface/.test(error.stderr);
}

/** Options of `VBoxManage`. */
export interface VBoxManageOptions {
  /** The command to run (default `VBoxManage`, found on PATH). */
  readonly command?: string;
  readonly logger: Logger;
}

// VBoxManage is not safe to run concurrently (docker-machine serialised it too): one call at a time per process.
let queue: Promise<unknown> = Promise.resolve();

/** Runs VBoxManage commands, one at a time, turning failures into VirtualBoxErrors. */
export class VBoxManage {
  readonly #command: string;
  readonly #logger: Logger;

  constructor(options: VBoxManageOptions) {
    this.#command = options.command ?? 'VBoxManage';
    this.#logger = options.logger;
  }

  /** Runs `VBoxManage ...args` and returns its stdout. */
  run(args: readonly string[], options: { readonly signal?: AbortSignal | undefined; readonly cwd?: string } = {}): Promise<string> {
    const next = queue.then(() => this.#exec(args, options));
    queue = next.catch(() => undefined);
    return next;
  }

  #exec(args: readonly string[], options: { readonly signal?: AbortSignal | undefined; readonly cwd?: string }): Promise<string> {
    throwIfAborted(options.signal);
    this.#logger.debug('VBoxManage', { args: args.join(' ') });
    return new Promise((resolve, reject) => {
      execFile(
        this.#command,
        [...args],
        { encoding: 'utf8', maxBuffer: 16 << 20, ...(options.signal ? { signal: options.signal } : {}), ...(options.cwd ? { cwd: options.cwd } : {}) },
        (error, stdout, stderr) => {
          if (!error) return resolve(stdout);
          if (options.signal?.aborted) return reject(error);
          if (errnoCode(error) === 'ENOENT') {
            return reject(
              new VirtualBoxError(`${this.#command} not found: install VirtualBox, or give its path with --virtualbox-vboxmanage`, {
                code: VirtualBoxErrorCode.Missing,
                kind: ErrorKind.FailedPrecondition,
                cause: error,
              }),
            );
          }
          const detail = stderr.split('\n').filter((l) => l.startsWith('VBoxManage: error:')).map((l) => l.slice('VBoxManage: error: '.length)).join('; ');
          reject(
            new VirtualBoxError(`VBoxManage ${args[0] ?? ''} failed: ${detail || stderr.trim() || `exit status ${String(error.code)}`}`, {
              code: VirtualBoxErrorCode.Command,
              kind: /VBOX_E_OBJECT_NOT_FOUND|Could not find/.test(stderr) ? ErrorKind.NotFound : ErrorKind.Internal,
              cause: error,
              stderr,
            }),
          );
        },
      );
    });
  }
}

/** Parses `showvminfo --machinereadable` output (`key="value"` lines) into a map. */
export function parseMachineReadable(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^"?([^"=]+)"?=(.*)$/.exec(line.trim());
    if (!match) continue;
    values.set(match[1]!, match[2]!.replace(/^"(.*)"$/, '$1'));
  }
  return values;
}
