import { stat } from 'node:fs/promises';
import { errnoCode } from '@berth/errors';
import { NetworkErrorCode, networkError } from './network-error.js';

/** How a caller names a container's network namespace: a path (`/run/netns/x`) or a process in it. */
export interface NetnsRef {
  readonly netnsPath?: string;
  readonly pid?: number;
}

/** The path of the namespace a ref names: the path itself, or `/proc/<pid>/ns/net`. */
export function netnsPathOf(ref: NetnsRef): string {
  if (ref.netnsPath) return ref.netnsPath;
  if (ref.pid !== undefined && Number.isInteger(ref.pid) && ref.pid > 0) return `/proc/${ref.pid}/ns/net`;
  throw networkError('a network namespace is required: give netnsPath or pid', 'InvalidArgument', NetworkErrorCode.InvalidOptions);
}

/**
 * The identity of a network namespace, `dev:ino` of its nsfs inode. A path can come to name
 * another namespace (a reused pid); the identity tells them apart.
 */
export async function netnsIdentity(path: string): Promise<string> {
  try {
    const info = await stat(path);
    return `${info.dev}:${info.ino}`;
  } catch (err) {
    const code = errnoCode(err);
    throw networkError(
      `network namespace ${path} does not exist${code === 'ENOENT' ? '' : ` (${code})`}`,
      'NotFound',
      NetworkErrorCode.NamespaceNotFound,
      err,
    );
  }
}

/** True while the namespace recorded as `identity` still exists at `path`. */
export async function netnsAlive(path: string, identity: string): Promise<boolean> {
  try {
    return (await netnsIdentity(path)) === identity;
  } catch {
    return false;
  }
}
