import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, posix, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { ErrorKind } from '@berth/errors';
import { MachineError, type SshSession } from '@berth/machine';
import type { App } from '../app.js';

/** One side of a copy: a local path, or a path on a host (`host:path`, relative to the login home). */
export interface CopyEnd {
  readonly host?: string;
  readonly path: string;
}

/** Splits `[[user@]host:]path`: the part before the first `:` names a host when one of that name exists. */
export async function parseCopyEnd(app: App, spec: string): Promise<CopyEnd> {
  const at = spec.indexOf(':');
  // C:\x on Windows, ./a:b and /a:b are local paths.
  if (at > 0 && !/^[a-zA-Z]:[\\/]/.test(spec) && !spec.slice(0, at).includes('/')) {
    const host = spec.slice(0, at).replace(/^[^@]*@/, '');
    if (await app.store.exists(host)) return { host, path: remotePath(spec.slice(at + 1)) };
    throw new MachineError(`no host named ${JSON.stringify(host)} (in ${spec})`, { code: 'ERR_HOST_NOT_FOUND', kind: ErrorKind.NotFound });
  }
  return { path: spec };
}

// SFTP paths are relative to the login directory; `~` and `~/x` mean the same.
function remotePath(path: string): string {
  if (path === '' || path === '~') return '.';
  return path.startsWith('~/') ? path.slice(2) : path;
}

async function localType(path: string): Promise<'file' | 'directory' | undefined> {
  const info = await stat(path).catch(() => undefined);
  return info ? (info.isDirectory() ? 'directory' : 'file') : undefined;
}

/**
 * `machine scp [-r] SRC DST`: copies files over SFTP from this machine to a host, back, or from
 * one host to another (through a temporary directory here, as `scp -3`).
 */
export function scpCommand(app: () => App) {
  return {
    command: 'scp <source> <destination>',
    describe: 'Copy files between this machine and hosts ([host:]path)',
    builder: (y: Argv) =>
      y
        .positional('source', { type: 'string' })
        .positional('destination', { type: 'string' })
        .option('recursive', { alias: 'r', type: 'boolean', describe: 'copy directories' })
        .option('quiet', { alias: 'q', type: 'boolean', describe: 'print nothing' }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      const source = await parseCopyEnd(a, String(argv.source));
      const destination = await parseCopyEnd(a, String(argv.destination));
      const recursive = argv.recursive === true;
      const sessions = new Map<string, SshSession>();
      const session = async (host: string) => {
        let s = sessions.get(host);
        if (!s) {
          s = await a.manager.session(host, { signal: a.io.signal, timeoutMs: 30_000 });
          sessions.set(host, s);
        }
        return s;
      };
      try {
        if (!source.host && !destination.host) {
          throw new MachineError('scp needs a host on one side: host:path', { code: 'ERR_USAGE', kind: ErrorKind.InvalidArgument, exitCode: 2 });
        }
        if (source.host && destination.host) {
          const staging = await mkdtemp(join(tmpdir(), 'berth-scp-'));
          try {
            const local = join(staging, posix.basename(source.path) || 'copy');
            await download(await session(source.host), source.path, local, recursive);
            await upload(await session(destination.host), local, destination.path, recursive);
          } finally {
            await rm(staging, { recursive: true, force: true });
          }
        } else if (destination.host) {
          await upload(await session(destination.host), resolve(source.path), destination.path, recursive);
        } else {
          await download(await session(source.host!), source.path, resolve(destination.path), recursive);
        }
        if (argv.quiet !== true) a.note(`copied ${argv.source} to ${argv.destination}`);
      } finally {
        for (const s of sessions.values()) s.close();
      }
    },
  };
}

function notADirectoryCopy(path: string): MachineError {
  return new MachineError(`${path} is a directory (use -r)`, { code: 'ERR_SCP_DIRECTORY', kind: ErrorKind.InvalidArgument });
}

async function upload(session: SshSession, local: string, remote: string, recursive: boolean): Promise<void> {
  const type = await localType(local);
  if (!type) throw new MachineError(`${local} does not exist`, { code: 'ERR_SCP_SOURCE', kind: ErrorKind.NotFound });
  if (type === 'directory' && !recursive) throw notADirectoryCopy(local);
  // Into an existing directory, the copy keeps its name (as scp does).
  const target = (await session.remoteType(remote)) === 'directory' ? posix.join(remote, basename(local)) : remote;
  if (type === 'directory') await session.uploadTree(local, target);
  else await session.upload(local, target, { mode: (await stat(local)).mode & 0o7777 });
}

async function download(session: SshSession, remote: string, local: string, recursive: boolean): Promise<void> {
  const type = await session.remoteType(remote);
  if (!type) throw new MachineError(`${session.target}:${remote} does not exist`, { code: 'ERR_SCP_SOURCE', kind: ErrorKind.NotFound });
  if (type === 'directory' && !recursive) throw notADirectoryCopy(remote);
  const target = (await localType(local)) === 'directory' ? join(local, posix.basename(remote)) : local;
  if (type === 'directory') await session.downloadTree(remote, target);
  else await session.download(remote, target);
}
