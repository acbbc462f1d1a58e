import { lstat, readFile, readlink } from 'node:fs/promises';
import { posix } from 'node:path';
import { errnoCode } from '@berth/errors';
import { RuntimeError, RuntimeErrorCode } from './errors.js';

/** Who a container's process runs as, resolved against the image's /etc/passwd and /etc/group. */
export interface ResolvedUser {
  readonly uid: number;
  readonly gid: number;
  readonly additionalGids: readonly number[];
  /** The home directory from /etc/passwd ("/" when the user has no entry). */
  readonly home: string;
}

interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

const maxId = 2 ** 31 - 1;

/**
 * `path` inside `root` with every symlink resolved inside `root` too (an absolute link target
 * starts again at `root`), so an image cannot point /etc/passwd at a host file.
 */
async function resolveInRoot(root: string, path: string): Promise<string> {
  const parts = path.split('/').filter(Boolean);
  const done: string[] = [];
  for (let hops = 0; parts.length > 0; ) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const candidate = posix.join(root, ...done, part);
    let target: string | undefined;
    try {
      if ((await lstat(candidate)).isSymbolicLink()) target = await readlink(candidate);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    if (target === undefined) {
      done.push(part);
      continue;
    }
    if (++hops > 40) throw new RuntimeError(`too many symlinks resolving ${path} in ${root}`, RuntimeErrorCode.InvalidSpec);
    if (target.startsWith('/')) done.length = 0;
    parts.unshift(...target.split('/').filter(Boolean));
  }
  return posix.join(root, ...done);
}

async function readLines(root: string, path: string): Promise<string[][]> {
  let text: string;
  try {
    text = await readFile(await resolveInRoot(root, path), 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

async function readPasswd(root: string): Promise<PasswdEntry[]> {
  return (await readLines(root, '/etc/passwd'))
    .filter((f) => f.length >= 4)
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' }))
    .filter((e) => Number.isInteger(e.uid) && Number.isInteger(e.gid));
}

async function readGroup(root: string): Promise<GroupEntry[]> {
  return (await readLines(root, '/etc/group'))
    .filter((f) => f.length >= 3)
    .map((f) => ({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }))
    .filter((e) => Number.isInteger(e.gid));
}

function numeric(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  if (n > maxId) throw new RuntimeError(`id ${text} is out of range (at most ${maxId})`, RuntimeErrorCode.InvalidSpec);
  return n;
}

/**
 * Resolves docker's `--user` (`name`, `uid`, `uid:gid`, `name:group`, `uid:group`) and
 * `--group-add` against the rootfs. A name that is not in the files is an error; a numeric uid
 * that is not there is allowed (gid 0, home "/"). Supplementary groups are the groups that list
 * the user as a member (only when no group is given), then the added ones.
 */
export async function resolveUser(rootfs: string, user = '', groupAdd: readonly string[] = []): Promise<ResolvedUser> {
  const [userPart = '', groupPart] = user.split(':', 2);
  const passwd = await readPasswd(rootfs);
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (userPart === '') {
    uid = 0;
    entry = passwd.find((e) => e.uid === 0);
  } else {
    const n = numeric(userPart);
    entry = n === undefined ? passwd.find((e) => e.name === userPart) : passwd.find((e) => e.uid === n);
    if (n === undefined && !entry) {
      throw new RuntimeError(`unable to find user ${userPart}: no matching entries in passwd file`, RuntimeErrorCode.UserNotFound);
    }
    uid = n ?? entry!.uid;
  }
  let gid = entry?.gid ?? 0;
  let groups: GroupEntry[] | undefined;
  const findGroup = async (name: string): Promise<number> => {
    const n = numeric(name);
    if (n !== undefined) return n;
    groups ??= await readGroup(rootfs);
    const g = groups.find((e) => e.name === name);
    if (!g) throw new RuntimeError(`unable to find group ${name}: no matching entries in group file`, RuntimeErrorCode.UserNotFound);
    return g.gid;
  };
  if (groupPart !== undefined && groupPart !== '') gid = await findGroup(groupPart);
  const additional: number[] = [];
  // As runc's GetExecUser: membership groups only in the implicit form (no group given).
  if (entry && (groupPart === undefined || groupPart === '')) {
    groups ??= await readGroup(rootfs);
    for (const g of groups) if (g.members.includes(entry.name) && g.gid !== gid) additional.push(g.gid);
  }
  for (const g of groupAdd) additional.push(await findGroup(g));
  return { uid, gid, additionalGids: [...new Set(additional)], home: entry?.home ?? '/' };
}
