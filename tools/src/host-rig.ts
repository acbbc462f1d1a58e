import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readFile, readdir, rm, rmdir, stat, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { withFileLock } from '@berth/fsutil';

const run = promisify(execFile);

/**
 * A rig of SSH test hosts on this machine, for machine's tests and benchmarks. Each host is a
 * set of namespaces (pid, mount, net, uts, ipc, cgroup) behind a veth on the rig's bridge, with
 * busybox init as pid 1, its own sshd (own host keys, root login with the rig's key) and its
 * own view of the filesystem: an overlayfs over `/` whose upper dir is private to the host, so
 * that what a provisioner installs there lands in that upper dir only. A host can be powered
 * off (`poweroff` inside it), rebooted (`reboot`: it comes back with the same disk and address),
 * renumbered and have its sshd stopped. Hosts reach the outside (Debian's archive) through NAT
 * on the bridge.
 *
 * Everything a rig makes is named `berth-rig-<id>`/`brig<id>`, recorded in its directory, and
 * removed by `close()`; a rig whose owner process died is removed by the next `HostRig.create`.
 */

const rigPrefix = 'berth-rig-';
const globalLock = join(tmpdir(), 'berth-rig.lock');
const hostPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Options of `HostRig.create`. */
export interface HostRigOptions {
  /** Route hosts to the outside through NAT on the bridge (default true), so apt-get works in them. */
  readonly nat?: boolean;
}

/** Options of `HostRig.addHost`. */
export interface RigHostOptions {
  /** Host name (`[a-z0-9-]`, at most 20 characters), unique in the rig. */
  readonly name: string;
  /**
   * Debian packages to remove from this host's view (`dpkg --remove --force-depends`), so that
   * a provisioner finds them missing and must install them.
   */
  readonly removePackages?: readonly string[];
  /**
   * What runs as pid 1: busybox init (default; no service manager, /etc/rc.local at boot) or
   * systemd (this machine's, booting multi-user.target with the services this machine enabled
   * masked, so that the host has a real service manager and only sshd running).
   */
  readonly init?: 'busybox' | 'systemd';
}

/** The result of a command run inside a host. */
export interface RigExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

interface RigRecord {
  readonly id: string;
  readonly ownerPid: number;
  readonly ownerStart: string;
  readonly bridge: string;
  readonly subnet: string;
  readonly nat: boolean;
}

/** The start time of a process, which tells a live process from a reused pid. */
async function processStart(pid: number): Promise<string | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

async function sh(cmd: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`host-rig: ${cmd} ${args.join(' ')} failed: ${stderr.trim() || String(err)}`, { cause: err });
  }
}

async function quiet(cmd: string, args: readonly string[]): Promise<void> {
  await run(cmd, args).catch(() => {});
}

/** The cgroup mounts of this machine: mount point, fs type and the options that name the hierarchy. */
interface CgroupMount {
  readonly mountPoint: string;
  readonly fsType: 'cgroup' | 'cgroup2';
  readonly options: string;
  /** The hierarchy key in /proc/self/cgroup (`memory`, `name=systemd`, `` for v2). */
  readonly key: string;
}

async function cgroupMounts(): Promise<CgroupMount[]> {
  const mounts: CgroupMount[] = [];
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const [fsType, , superOptions = ''] = right.split(' ');
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    const mountPoint = left.split(' ')[4] ?? '';
    const options = superOptions.split(',').filter((o) => o !== 'rw' && o !== 'ro').join(',');
    mounts.push({ mountPoint, fsType, options, key: fsType === 'cgroup2' ? '' : options });
  }
  return mounts;
}

/** This process's cgroup path in each hierarchy, keyed as in /proc/self/cgroup. */
async function ownCgroups(): Promise<Map<string, string>> {
  const paths = new Map<string, string>();
  for (const line of (await readFile('/proc/self/cgroup', 'utf8')).split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (match) paths.set(match[1]!, match[2]!);
  }
  return paths;
}

/** The per-host cgroup directories (absolute), one per hierarchy, under this process's own cgroups. */
async function hostCgroupDirs(name: string): Promise<string[]> {
  const own = await ownCgroups();
  const dirs: string[] = [];
  for (const m of await cgroupMounts()) {
    const base = own.get(m.key);
    if (base === undefined) continue;
    dirs.push(join(m.mountPoint, base, name));
  }
  return dirs;
}

async function makeCgroup(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  // A v1 cpuset group takes no tasks until it has cpus and mems; start from the parent's.
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    const parent = await readFile(join(dirname(dir), file), 'utf8').catch(() => undefined);
    if (parent !== undefined) await writeFile(join(dir, file), parent.trim() || '0').catch(() => {});
  }
}

/** Removes a cgroup and every group under it, deepest first, once their processes are gone. */
async function removeCgroupTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await removeCgroupTree(join(dir, e.name));
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw err;
      await sleep(20);
    }
  }
}

function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = connect({ host, port });
      socket.setTimeout(1000);
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      const retry = () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`host-rig: ${host}:${port} did not answer within ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      };
      socket.once('error', retry);
      socket.once('timeout', retry);
    };
    attempt();
  });
}

/** A locally administered MAC that encodes a rig host's IPv4 address. */
function macFor(ip: string): string {
  return ['02', 'b7', ...ip.split('.').map((n) => Number(n).toString(16).padStart(2, '0'))].join(':');
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The /24 subnets in use on this machine (routes and addresses), as their base addresses. */
async function usedSubnets(): Promise<Set<number>> {
  const used = new Set<number>();
  const text = (await sh('ip', ['-4', 'route', 'show', 'table', 'all'])) + (await sh('ip', ['-4', '-o', 'addr']));
  for (const match of text.matchAll(/(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?/g)) {
    const base = ipToInt(match[1]!) & 0xffffff00;
    used.add(base >>> 0);
  }
  return used;
}

/** Writes `content` at `path` inside an upper dir, creating parents with the lower dir's owners and modes. */
async function writeInUpper(upper: string, path: string, content: string, mode = 0o644): Promise<void> {
  await mkdirInUpper(upper, dirname(path));
  await writeFile(join(upper, path), content, { mode });
  await chmod(join(upper, path), mode);
}

// An upper dir's directory hides the lower one's mode and owner, so copy them: a /root made
// 0755 here would make the host's /root 0755, and sshd's strict modes would refuse the key.
async function mkdirInUpper(upper: string, path: string): Promise<void> {
  if (path === '/' || path === '.') return;
  await mkdirInUpper(upper, dirname(path));
  const target = join(upper, path);
  if (await lstat(target).then(() => true, () => false)) return;
  const lower = await stat(path).catch(() => undefined);
  await mkdir(target, { mode: lower ? lower.mode & 0o7777 : 0o755 });
  if (lower) {
    await chmod(target, lower.mode & 0o7777);
    await chown(target, lower.uid, lower.gid);
  }
}

/** One test host of a rig. */
export class RigHost {
  readonly name: string;
  readonly rig: HostRig;
  /** The host's private upper dir: everything written in the host lands here. */
  readonly upperDir: string;
  readonly user = 'root';
  readonly port = 22;
  readonly removePackages: readonly string[];
  readonly init: 'busybox' | 'systemd';
  #ip: string;
  #child: ChildProcess | undefined;
  #pid1 = 0;
  #state: 'running' | 'off' | 'removed' = 'off';
  #booting: Promise<void> | undefined;
  readonly #dir: string;
  readonly #veth: string;

  /** @internal Made by `HostRig.addHost`. */
  constructor(rig: HostRig, name: string, ip: string, dir: string, veth: string, removePackages: readonly string[], init: 'busybox' | 'systemd') {
    this.rig = rig;
    this.init = init;
    this.name = name;
    this.#ip = ip;
    this.#dir = dir;
    this.upperDir = join(dir, 'upper');
    this.#veth = veth;
    this.removePackages = removePackages;
  }

  /** The host's current IPv4 address on the rig's bridge. */
  get ip(): string {
    return this.#ip;
  }

  /** The private key that logs in as root. */
  get keyPath(): string {
    return this.rig.keyPath;
  }

  /** `running`, `off` after a poweroff inside it, or `removed`. */
  get state(): 'running' | 'off' | 'removed' {
    return this.#state;
  }

  /** The host's pid 1 as this machine sees it. */
  get pid(): number {
    return this.#pid1;
  }

  /** A path inside the host as a path on this machine (through /proc/PID/root). */
  path(inside: string): string {
    return `/proc/${this.#pid1}/root${inside.startsWith('/') ? inside : `/${inside}`}`;
  }

  /** Runs `script` with /bin/sh inside the host, as root, with a clean environment. */
  async exec(script: string, options: { readonly stdin?: string } = {}): Promise<RigExecResult> {
    if (this.#state !== 'running') throw new Error(`host-rig: host ${this.name} is ${this.#state}`);
    const child = spawn('nsenter', ['-t', String(this.#pid1), '-a', '--', '/usr/bin/env', '-i', `PATH=${hostPath}`, 'HOME=/root', 'LANG=C', '/bin/sh', '-c', script], {
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (child.stdin) {
      // A script may end without reading all of its input: its exit status tells, not EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(options.stdin);
    }
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
    });
    return { code, stdout, stderr };
  }

  /** Like `exec`, but throws with the output when the script fails. */
  async check(script: string): Promise<string> {
    const result = await this.exec(script);
    if (result.code !== 0) throw new Error(`host-rig: ${this.name}: \`${script}\` exited ${result.code}: ${result.stderr.trim()}`);
    return result.stdout;
  }

  /** Gives the host a new address in the rig's subnet, as a DHCP renumbering would, and returns it. */
  async changeIp(): Promise<string> {
    const next = await this.rig.allocateIp();
    // This machine's `ip` in the host's network namespace: the host may lack iproute2.
    const ns = ['-t', String(this.#pid1), '-n', 'ip'];
    await sh('nsenter', [...ns, 'addr', 'flush', 'dev', 'eth0']);
    await sh('nsenter', [...ns, 'addr', 'add', `${next}/24`, 'dev', 'eth0']);
    await sh('nsenter', [...ns, 'route', 'replace', 'default', 'via', this.rig.gateway]);
    this.rig.releaseIp(this.#ip);
    this.#ip = next;
    return next;
  }

  /** Runs `iptables` arguments in the host's network namespace (with this machine's iptables). */
  async iptables(args: readonly string[]): Promise<void> {
    await sh('nsenter', ['-t', String(this.#pid1), '-n', 'iptables', '-w', ...args]);
  }

  /** Stops the host's sshd listener (sessions already open stay). */
  async stopSsh(): Promise<void> {
    if (this.init === 'systemd') await this.check('systemctl stop ssh.service');
    else await this.check('kill "$(cat /run/sshd.pid)"; for i in $(seq 50); do [ -e /run/sshd.pid ] || exit 0; sleep 0.1; done; exit 1');
  }

  /** Starts the host's sshd again and waits until it answers. */
  async startSsh(): Promise<void> {
    await this.check(this.init === 'systemd' ? 'systemctl start ssh.service' : '/usr/sbin/sshd');
    await waitForPort(this.#ip, this.port, 10_000);
  }

  /** Boots a host that was powered off (the power button), with the same disk and address. */
  async powerOn(): Promise<void> {
    if (this.#state === 'running') return;
    if (this.#state === 'removed') throw new Error(`host-rig: host ${this.name} was removed`);
    await this.boot();
  }

  /** Resolves once the host is running and its sshd answers (after a reboot, say). */
  async waitRunning(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#state !== 'running' || this.#booting) {
      if (this.#state === 'removed') throw new Error(`host-rig: host ${this.name} was removed`);
      if (Date.now() > deadline) throw new Error(`host-rig: host ${this.name} is still ${this.#state}`);
      await (this.#booting ?? sleep(50));
    }
    await waitForPort(this.#ip, this.port, Math.max(1000, deadline - Date.now()));
  }

  /** Resolves once the host has powered off (a `poweroff` run inside it). */
  async waitOff(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#state !== 'off') {
      if (Date.now() > deadline) throw new Error(`host-rig: host ${this.name} is still ${this.#state}`);
      await sleep(50);
    }
  }

  /** @internal Prepares the upper dir: sshd with fresh host keys, the rig's key for root, init, hostname. */
  async prepare(): Promise<void> {
    for (const sub of ['upper', 'work', 'merged']) await mkdir(join(this.#dir, sub), { recursive: true });
    const upper = this.upperDir;
    await writeInUpper(upper, '/etc/ssh/sshd_config', [
      'Port 22',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'PidFile /run/sshd.pid',
      'AcceptEnv LANG LC_*',
      'Subsystem sftp /usr/lib/openssh/sftp-server',
      '',
    ].join('\n'));
    for (const type of ['ed25519', 'ecdsa', 'rsa']) {
      const key = join(upper, `etc/ssh/ssh_host_${type}_key`);
      await rm(key, { force: true });
      await rm(`${key}.pub`, { force: true });
      await sh('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `root@${this.name}`, '-f', key]);
    }
    await writeInUpper(upper, '/root/.ssh/authorized_keys', await readFile(`${this.rig.keyPath}.pub`, 'utf8'), 0o600);
    // A fresh host's root has Debian's default shell startup files, not this machine's.
    for (const file of ['.bashrc', '.profile']) {
      await writeInUpper(upper, `/root/${file}`, await readFile(`/etc/skel/${file}`, 'utf8').catch(() => ''));
    }
    if (this.init === 'systemd') {
      // The host boots multi-user.target, as a server does, so that what a provisioner enables
      // starts at boot; the services this machine enabled (docker, databases, timers) are masked.
      for (const unit of [...(await enabledUnits()), 'console-getty.service', 'getty@tty1.service', 'systemd-logind.service']) {
        if (['ssh.service', 'sshd.service'].includes(unit) || unit.endsWith('.target')) continue;
        await mkdirInUpper(upper, '/etc/systemd/system');
        const mask = join(upper, 'etc/systemd/system', unit);
        await rm(mask, { force: true });
        await symlink('/dev/null', mask);
      }
    } else {
      // busybox init: no getty, the rc.local a sysvinit host runs at boot, then sshd.
      await writeInUpper(upper, '/etc/inittab', '::sysinit:/bin/sh -c "[ -x /etc/rc.local ] && /etc/rc.local; /usr/sbin/sshd"\n');
    }
    // A fresh host has no Berth: this machine's own engine state and any install of it (a state
    // root with overlay snapshots, which cannot be used on the host's overlay root) are hidden
    // by overlayfs whiteouts (0/0 character devices).
    for (const path of ['/var/lib/berth', '/etc/berth', '/opt/berth', '/usr/local/bin/engine', '/usr/local/libexec/berth-engine-supervise', '/etc/systemd/system/berth-engine.service', '/etc/init.d/berth-engine', '/var/log/berth-engine.log']) {
      const present = (p: string) => lstat(p).then(() => true, () => false);
      if (!(await present(path)) || (await present(join(upper, path)))) continue;
      await mkdirInUpper(upper, dirname(path));
      await sh('mknod', [join(upper, path), 'c', '0', '0']);
    }
    await writeInUpper(upper, '/etc/hostname', `${this.name}\n`);
    await writeInUpper(upper, '/etc/hosts', `127.0.0.1\tlocalhost\n127.0.1.1\t${this.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n`);
    // Debian's reboot/poweroff talk to systemd; a busybox-init host needs busybox's, which talk to init.
    for (const cmd of this.init === 'systemd' ? [] : ['reboot', 'poweroff', 'halt']) {
      await mkdirInUpper(upper, '/usr/sbin');
      const link = join(upper, 'usr/sbin', cmd);
      await rm(link, { force: true });
      await symlink('/bin/busybox', link);
    }
  }

  /** @internal Starts the host's namespaces, network and sshd. */
  async boot(): Promise<void> {
    const booting = this.#boot();
    this.#booting = booting;
    try {
      await booting;
    } finally {
      if (this.#booting === booting) this.#booting = undefined;
    }
  }

  async #boot(): Promise<void> {
    const merged = join(this.#dir, 'merged');
    const cgroupName = `${rigPrefix}${this.rig.id}-${this.name}`;
    const cgroupDirs = await hostCgroupDirs(cgroupName);
    for (const dir of cgroupDirs) await makeCgroup(dir);
    const mounts = await cgroupMounts();
    const cgroupSetup = mounts
      .map((m) => `mkdir -p "$M${m.mountPoint}" && mount -t ${m.fsType} ${m.options ? `-o ${m.options}` : ''} ${m.fsType} "$M${m.mountPoint}"`)
      .join('\n');
    const start = `set -e
M=${merged}
mount -t overlay overlay -o lowerdir=/,upperdir=${this.upperDir},workdir=${join(this.#dir, 'work')} "$M"
mount -t proc proc "$M/proc"
mount -t sysfs sysfs "$M/sys"
mount -t tmpfs -o mode=755 tmpfs "$M/sys/fs/cgroup"
${cgroupSetup}
mount --rbind /dev "$M/dev"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$M/dev/pts"
mount --bind "$M/dev/pts/ptmx" "$M/dev/ptmx"
mount -t tmpfs tmpfs "$M/dev/shm"
mount -t tmpfs -o mode=755 tmpfs "$M/run"
mkdir -p "$M/run/sshd" "$M/run/lock"
mount -t tmpfs -o mode=1777 tmpfs "$M/tmp"
cd "$M"
mkdir -p .rig-old
pivot_root . .rig-old
umount -l /.rig-old
rmdir /.rig-old
hostname ${this.name}
ip link set lo up
${
      this.init === 'systemd'
        ? `exec /usr/bin/env -i container=berth-rig PATH=${hostPath} /lib/systemd/systemd --unit=multi-user.target --log-target=journal`
        : `exec /usr/bin/env -i CONSOLE=/dev/null PATH=${hostPath} /bin/busybox init`
    }
`;
    await writeFile(join(this.#dir, 'start.sh'), start);
    // Recorded before the boot, so that a rig cleanup finds the cgroups even if the boot fails.
    await writeFile(join(this.#dir, 'pid'), JSON.stringify({ pid: 0, cgroups: cgroupDirs }));
    // Join the host's cgroups first, so that the cgroup namespace is rooted there.
    const join_ = cgroupDirs.map((d) => `echo $$ > '${d}/cgroup.procs'`).join(' && ');
    const child = spawn(
      'sh',
      ['-c', `${join_ || 'true'} && exec unshare --mount --pid --net --uts --ipc --cgroup --fork --kill-child --propagation private sh '${join(this.#dir, 'start.sh')}'`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.#child = child;
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.once('exit', (_code, signal) => {
      if (this.#child !== child) return;
      this.#child = undefined;
      if (this.#state === 'removed') return;
      // pid_namespaces(7): a reboot inside kills init with SIGHUP, a poweroff or halt with SIGINT.
      this.#state = 'off';
      if (signal === 'SIGHUP') void this.boot().catch(() => {});
    });
    // Generous: under load (other tests, an engine starting at boot) a boot can take a while.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const children = await readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').catch(() => '');
      const pid = Number(children.trim().split(' ')[0]);
      const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
      if (pid > 0 && comm === (this.init === 'systemd' ? 'systemd' : 'busybox')) {
        this.#pid1 = pid;
        break;
      }
      if (this.#child !== child || Date.now() > deadline) {
        // --kill-child takes the namespace's pid 1 down with unshare.
        child.kill('SIGKILL');
        await exited;
        await killHost(join(this.#dir, 'pid'));
        throw new Error(`host-rig: host ${this.name} did not boot: ${stderr.trim()}`);
      }
      await sleep(20);
    }
    await writeFile(join(this.#dir, 'pid'), JSON.stringify({ pid: this.#pid1, start: await processStart(this.#pid1), cgroups: cgroupDirs }));
    await quiet('ip', ['link', 'del', this.#veth]);
    // The same MAC at every boot, as a real NIC keeps: with a new one, the machine's ARP entry
    // for the address stays stale after a reboot and SSH waits out the neighbour timeouts.
    await sh('ip', ['link', 'add', this.#veth, 'type', 'veth', 'peer', 'name', 'eth0', 'address', macFor(this.#ip), 'netns', String(this.#pid1)]);
    await sh('ip', ['link', 'set', this.#veth, 'master', this.rig.bridge, 'up']);
    const ns = ['-t', String(this.#pid1), '-n', 'ip'];
    await sh('nsenter', [...ns, 'addr', 'add', `${this.#ip}/24`, 'dev', 'eth0']);
    await sh('nsenter', [...ns, 'link', 'set', 'eth0', 'up']);
    await sh('nsenter', [...ns, 'route', 'add', 'default', 'via', this.rig.gateway]);
    this.#state = 'running';
    await waitForPort(this.#ip, this.port, 60_000);
  }

  /** @internal Removes packages from the host's view, as asked in the options. */
  async removeListedPackages(): Promise<void> {
    if (this.removePackages.length === 0) return;
    await this.check(`dpkg --remove --force-depends ${this.removePackages.join(' ')} >/dev/null`);
  }

  /** Kills every process of the host and removes its network, cgroups and disk. */
  async remove(): Promise<void> {
    if (this.#state === 'removed') return;
    this.#state = 'removed';
    const child = this.#child;
    this.#child = undefined;
    if (this.#pid1 > 0) await killHost(join(this.#dir, 'pid'));
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    }
    await quiet('ip', ['link', 'del', this.#veth]);
    await rm(this.#dir, { recursive: true, force: true });
    this.rig.forget(this);
  }
}

/** The units this machine enabled (the entries of /etc/systemd/system/*.wants/). */
async function enabledUnits(): Promise<string[]> {
  const units = new Set<string>();
  for (const dir of await readdir('/etc/systemd/system').catch(() => [] as string[])) {
    if (!dir.endsWith('.wants')) continue;
    for (const unit of await readdir(join('/etc/systemd/system', dir)).catch(() => [] as string[])) units.add(unit);
  }
  return [...units];
}

/** Kills a host from its pid file (pid 1 of its namespace, checked by start time) and removes its cgroups. */
async function killHost(pidFile: string): Promise<void> {
  const record = await readFile(pidFile, 'utf8').then(
    (t) => JSON.parse(t) as { pid: number; start?: string; cgroups?: string[] },
    () => undefined,
  );
  if (!record) return;
  if (record.start !== undefined && (await processStart(record.pid)) === record.start) {
    try {
      process.kill(record.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    // Killing pid 1 of a namespace kills the rest of it; wait until all of it is gone.
    for (let i = 0; i < 200 && (await processStart(record.pid)) === record.start; i++) await sleep(10);
  }
  for (const dir of record.cgroups ?? []) {
    for (let i = 0; i < 100; i++) {
      const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
      if (!procs.trim()) break;
      await sleep(20);
    }
    await removeCgroupTree(dir).catch(() => {});
  }
}

/** A bridge, a subnet and a set of test hosts. Make one with `HostRig.create`, end it with `close`. */
export class HostRig {
  readonly id: string;
  readonly dir: string;
  readonly bridge: string;
  /** The subnet, `10.X.Y.0/24`. */
  readonly subnet: string;
  /** The bridge's address, the hosts' default gateway. */
  readonly gateway: string;
  /** The private key the hosts accept for root. */
  readonly keyPath: string;
  readonly #hosts = new Map<string, RigHost>();
  readonly #usedIps = new Set<string>();
  #made = 0;
  #closed = false;

  private constructor(id: string, dir: string, bridge: string, subnetBase: number) {
    this.id = id;
    this.dir = dir;
    this.bridge = bridge;
    this.subnet = `${intToIp(subnetBase)}/24`;
    this.gateway = intToIp(subnetBase + 1);
    this.keyPath = join(dir, 'id_ed25519');
    this.#usedIps.add(this.gateway);
  }

  /** Makes a rig: its directory (a tmpfs), key, bridge on a free 10.x.y.0/24, and NAT. */
  static async create(options: HostRigOptions = {}): Promise<HostRig> {
    const missing = await missingTools();
    if (missing.length) throw new Error(`host-rig: missing ${missing.join(', ')}`);
    await cleanupStaleRigs();
    const id = randomBytes(3).toString('hex');
    const dir = join(tmpdir(), `${rigPrefix}${id}`);
    const bridge = `brig${id}`;
    const nat = options.nat ?? true;
    await mkdir(dir, { recursive: true });
    await sh('mount', ['-t', 'tmpfs', '-o', 'mode=700,size=8g', 'tmpfs', dir]);
    try {
      const rig: HostRig = await withFileLock(globalLock, async () => {
        const used = await usedSubnets();
        let base = 0;
        for (let attempt = 0; attempt < 200 && base === 0; attempt++) {
          const candidate = ipToInt(`10.${64 + Math.floor(Math.random() * 160)}.${Math.floor(Math.random() * 256)}.0`) >>> 0;
          if (!used.has(candidate)) base = candidate;
        }
        if (base === 0) throw new Error('host-rig: no free 10.x.y.0/24 subnet');
        const made = new HostRig(id, dir, bridge, base);
        const record: RigRecord = {
          id,
          ownerPid: process.pid,
          ownerStart: (await processStart(process.pid)) ?? '',
          bridge,
          subnet: made.subnet,
          nat,
        };
        await writeFile(join(dir, 'rig.json'), JSON.stringify(record));
        await sh('ip', ['link', 'add', bridge, 'type', 'bridge']);
        await sh('ip', ['addr', 'add', `${made.gateway}/24`, 'dev', bridge]);
        await sh('ip', ['link', 'set', bridge, 'up']);
        return made;
      });
      if (nat) {
        await writeFile('/proc/sys/net/ipv4/ip_forward', '1');
        for (const rule of natRules(rig.id, rig.bridge, rig.subnet)) await sh('iptables', ['-w', ...rule.add]);
      }
      await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `berth-rig-${id}`, '-f', rig.keyPath]);
      return rig;
    } catch (err) {
      await removeRigDir(dir);
      throw err;
    }
  }

  /** The hosts of the rig. */
  get hosts(): readonly RigHost[] {
    return [...this.#hosts.values()];
  }

  /** Makes, boots and returns a host; resolves once its sshd answers. */
  async addHost(options: RigHostOptions): Promise<RigHost> {
    if (this.#closed) throw new Error('host-rig: the rig is closed');
    if (!/^[a-z0-9][a-z0-9-]{0,19}$/.test(options.name)) throw new Error(`host-rig: bad host name ${JSON.stringify(options.name)}`);
    if (this.#hosts.has(options.name)) throw new Error(`host-rig: host ${options.name} exists`);
    const ip = await this.allocateIp();
    const host = new RigHost(this, options.name, ip, join(this.dir, 'hosts', options.name), `vr${this.id}${this.#made++}`, options.removePackages ?? [], options.init ?? 'busybox');
    this.#hosts.set(options.name, host);
    try {
      await host.prepare();
      await host.boot();
      await host.removeListedPackages();
    } catch (err) {
      await host.remove();
      throw err;
    }
    return host;
  }

  /** @internal The next free address of the subnet. */
  async allocateIp(): Promise<string> {
    const base = ipToInt(this.gateway) - 1;
    for (let i = 2; i < 255; i++) {
      const ip = intToIp(base + i);
      if (!this.#usedIps.has(ip)) {
        this.#usedIps.add(ip);
        return ip;
      }
    }
    throw new Error(`host-rig: subnet ${this.subnet} is full`);
  }

  /** @internal */
  releaseIp(ip: string): void {
    this.#usedIps.delete(ip);
  }

  /** @internal */
  forget(host: RigHost): void {
    if (this.#hosts.get(host.name) === host) this.#hosts.delete(host.name);
    this.releaseIp(host.ip);
  }

  /** Removes every host, the NAT rules, the bridge and the rig's directory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.hosts.map((h) => h.remove()));
    await removeRigDir(this.dir);
  }
}

function natRules(id: string, bridge: string, subnet: string): { add: string[]; del: string[] }[] {
  const comment = ['-m', 'comment', '--comment', `${rigPrefix}${id}`];
  const rules = [
    ['-t', 'nat', 'POSTROUTING', '-s', subnet, '!', '-o', bridge, ...comment, '-j', 'MASQUERADE'],
    // dockerd sets the FORWARD policy to DROP; let the rig's traffic through regardless.
    ['-t', 'filter', 'FORWARD', '-i', bridge, ...comment, '-j', 'ACCEPT'],
    ['-t', 'filter', 'FORWARD', '-o', bridge, ...comment, '-j', 'ACCEPT'],
  ];
  return rules.map(([t, table, chain, ...spec]) => ({ add: [t!, table!, '-I', chain!, ...spec], del: [t!, table!, '-D', chain!, ...spec] }));
}

/** Removes what a rig made, from its directory's record: hosts, NAT rules, bridge, tmpfs. */
async function removeRigDir(dir: string): Promise<void> {
  const record = await readFile(join(dir, 'rig.json'), 'utf8').then(
    (t) => JSON.parse(t) as RigRecord,
    () => undefined,
  );
  for (const host of await readdir(join(dir, 'hosts')).catch(() => [] as string[])) {
    await killHost(join(dir, 'hosts', host, 'pid'));
  }
  if (record) {
    if (record.nat) for (const rule of natRules(record.id, record.bridge, record.subnet)) await quiet('iptables', ['-w', ...rule.del]);
    await quiet('ip', ['link', 'del', record.bridge]);
  }
  await quiet('umount', [dir]);
  await rm(dir, { recursive: true, force: true });
}

/** Removes the rigs of processes that died without closing them. */
export async function cleanupStaleRigs(): Promise<void> {
  const base = tmpdir();
  for (const name of await readdir(base).catch(() => [] as string[])) {
    if (!name.startsWith(rigPrefix)) continue;
    const dir = join(base, name);
    const record = await readFile(join(dir, 'rig.json'), 'utf8').then(
      (t) => JSON.parse(t) as RigRecord,
      () => undefined,
    );
    if (!record) continue;
    if ((await processStart(record.ownerPid)) === record.ownerStart) continue;
    await removeRigDir(dir);
  }
}

/** Why a rig host cannot boot systemd here (no /lib/systemd/systemd), or undefined when it can. */
export async function systemdUnavailable(): Promise<string | undefined> {
  return (await stat('/lib/systemd/systemd').then(() => true, () => false)) ? undefined : 'systemd hosts need /lib/systemd/systemd (Debian package systemd)';
}

/** The tools the rig needs that this machine lacks (empty when it can run). */
export async function missingTools(): Promise<string[]> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const tool of ['/usr/sbin/sshd', '/bin/busybox', '/usr/bin/unshare', '/usr/bin/nsenter', '/usr/bin/ssh-keygen']) {
    if (!(await stat(tool).then(() => true, () => false))) missing.push(tool);
  }
  for (const tool of ['ip', 'iptables']) {
    if (!(await run('sh', ['-c', `command -v ${tool}`]).then(() => true, () => false))) missing.push(tool);
  }
  return missing;
}
