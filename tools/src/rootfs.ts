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

/** What `makeBusyboxBundle` puts into config.json. */
export interface BusyboxBundleOptions {
  /** The container's command (default: `sh`). */
  readonly args?: readonly string[];
  readonly hostname?: string;
  /** Write the rootfs here instead of `<dir>/rootfs` (to share one between bundles). */
  readonly rootfs?: string;
}

/**
 * Makes an OCI bundle in `dir`: a busybox rootfs and a config.json in the shape of `runc spec`
 * (private pid, network, ipc, uts and mount namespaces; proc, dev, devpts, shm, mqueue, sysfs
 * and cgroup mounts; read-only root; no terminal), which runc, crun and berth-runtime all run.
 * Returns the bundle path.
 */
export async function makeBusyboxBundle(dir: string, options: BusyboxBundleOptions = {}): Promise<string> {
  const rootfs = options.rootfs ?? join(dir, 'rootfs');
  await mkdir(dir, { recursive: true });
  if (!options.rootfs) await makeBusyboxRootfs(rootfs);
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  const config = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: options.args ?? ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: rootfs, readonly: true },
    hostname: options.hostname ?? 'busybox',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  return dir;
}
