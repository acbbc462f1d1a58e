import { execFile } from 'node:child_process';
import { mkdir, copyFile, symlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where Debian's busybox-static puts its binary. */
export const busyboxPath = '/bin/busybox';

/** The applets busybox was built with, one per line of `busybox --list`. */
export async function busyboxApplets(): Promise<string[]> {
  const { stdout } = await run(busyboxPath, ['--list']);
  return stdout.split('\n').filter(Boolean);
}

/**
 * Fills `dir` with a minimal root filesystem made from the static busybox: /bin with every
 * applet as a symlink, /etc/passwd and /etc/group with root, nobody and a user 1000, and the
 * empty directories a container expects. Nothing is fetched from the network.
 */
export async function makeBusyboxRootfs(dir: string): Promise<void> {
  for (const sub of ['bin', 'etc', 'dev', 'proc', 'sys', 'tmp', 'root', 'home/user', 'var/log', 'usr/bin', 'usr/sbin', 'sbin', 'run']) {
    await mkdir(join(dir, sub), { recursive: true });
  }
  await chmod(join(dir, 'tmp'), 0o1777);
  await copyFile(busyboxPath, join(dir, 'bin/busybox'));
  await chmod(join(dir, 'bin/busybox'), 0o755);
  for (const applet of await busyboxApplets()) {
    if (applet === 'busybox') continue;
    await symlink('busybox', join(dir, 'bin', applet)).catch(() => {});
  }
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n');
  await writeFile(join(dir, 'etc/hostname'), 'busybox\n');
}
