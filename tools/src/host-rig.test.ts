import { execFile, spawn } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostRig, cleanupStaleRigs, missingTools, systemdUnavailable, type RigHost } from './host-rig.js';

const run = promisify(execFile);
const missing = await missingTools();
const noSystemd = await systemdUnavailable();

function ssh(host: RigHost, command: string) {
  return run('ssh', ['-i', host.keyPath, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=5', `root@${host.ip}`, command]);
}

describe.skipIf(missing.length > 0)('HostRig', () => {
  let rig: HostRig;
  let h1: RigHost;
  let h2: RigHost;
  beforeAll(async () => {
    rig = await HostRig.create();
    [h1, h2] = await Promise.all([rig.addHost({ name: 'h1' }), rig.addHost({ name: 'h2', removePackages: ['ca-certificates'] })]);
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('gives each host its own sshd, host keys and hostname', async () => {
    expect((await ssh(h1, 'hostname')).stdout.trim()).toBe('h1');
    expect((await ssh(h2, 'hostname')).stdout.trim()).toBe('h2');
    const k1 = await readFile(h1.path('/etc/ssh/ssh_host_ed25519_key.pub'), 'utf8');
    const k2 = await readFile(h2.path('/etc/ssh/ssh_host_ed25519_key.pub'), 'utf8');
    const mine = await readFile('/etc/ssh/ssh_host_ed25519_key.pub', 'utf8').catch(() => '');
    expect(new Set([k1, k2, mine]).size).toBe(3);
  });

  it('keeps what one host writes out of the others and out of this machine', async () => {
    await ssh(h1, 'mkdir -p /opt/rigtest && echo one > /opt/rigtest/file && echo x > /usr/local/bin/rigtest');
    expect((await stat(`${h1.upperDir}/opt/rigtest/file`)).isFile()).toBe(true);
    await expect(stat('/opt/rigtest/file')).rejects.toThrow();
    expect((await h2.exec('test -e /opt/rigtest/file')).code).not.toBe(0);
    expect((await h2.exec('dpkg-query -W -f=\'${Status}\' ca-certificates')).stdout).not.toContain('install ok installed');
    expect((await run('dpkg-query', ['-W', '-f=${Status}', 'ca-certificates'])).stdout).toContain('install ok installed');
  });

  it('runs its processes in its own pid namespace', async () => {
    const { stdout } = await ssh(h1, 'cat /proc/1/comm; ls /proc | grep -c "^[0-9]"');
    const [init, count] = stdout.trim().split('\n');
    expect(init).toBe('busybox');
    expect(Number(count)).toBeLessThan(20);
  });

  it('changes a host address and stops and starts its sshd', async () => {
    const before = h2.ip;
    const after = await h2.changeIp();
    expect(after).not.toBe(before);
    expect((await ssh(h2, 'ip -4 -o addr show dev eth0')).stdout).toContain(after);
    await h2.stopSsh();
    await expect(ssh(h2, 'true')).rejects.toThrow();
    await h2.startSsh();
    expect((await ssh(h2, 'echo ok')).stdout.trim()).toBe('ok');
  });

  it('reaches the outside through NAT', async () => {
    const { code } = await h1.exec('getent hosts deb.debian.org');
    if (code !== 0) return; // no DNS here: NAT is still set up, nothing to resolve through it
    expect((await h1.exec('timeout 10 apt-get -qq download hello >/dev/null 2>&1 || timeout 10 bash -c "exec 3<>/dev/tcp/deb.debian.org/80"')).code).toBe(0);
  });

  it('reboots with the same disk and address, and powers off and on', async () => {
    await ssh(h1, 'echo kept > /root/kept');
    const pid = h1.pid;
    await h1.exec('reboot');
    await expect.poll(() => h1.pid !== pid && h1.state === 'running', { timeout: 30_000, interval: 100 }).toBe(true);
    await h1.waitRunning();
    expect((await ssh(h1, 'cat /root/kept')).stdout.trim()).toBe('kept');
    await h1.exec('poweroff');
    await h1.waitOff();
    await expect(ssh(h1, 'true')).rejects.toThrow();
    await h1.powerOn();
    expect((await ssh(h1, 'cat /root/kept')).stdout.trim()).toBe('kept');
  });

  it.skipIf(!!noSystemd)('boots a host with systemd as its service manager, which reboots and powers off', async () => {
    const sd = await rig.addHost({ name: 'sd', init: 'systemd' });
    try {
      expect((await ssh(sd, 'cat /proc/1/comm; test -d /run/systemd/system && echo booted; systemctl is-active ssh.service')).stdout).toBe('systemd\nbooted\nactive\n');
      // Only sshd among this machine's services.
      expect((await sd.exec('systemctl is-active docker.service')).stdout.trim()).not.toBe('active');
      const pid = sd.pid;
      await sd.exec('systemctl reboot');
      await expect.poll(() => sd.pid !== pid && sd.state === 'running', { timeout: 60_000, interval: 100 }).toBe(true);
      await sd.waitRunning();
      await sd.stopSsh();
      await expect(ssh(sd, 'true')).rejects.toThrow();
      await sd.startSsh();
      await sd.exec('systemctl poweroff');
      await sd.waitOff();
    } finally {
      await sd.remove();
    }
  });

  it('removes the rig of a test process that was killed', async () => {
    const dist = new URL('../dist/host-rig.js', import.meta.url).pathname;
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      import { HostRig } from ${JSON.stringify(dist)};
      const rig = await HostRig.create({ nat: false });
      const h = await rig.addHost({ name: 'orphan' });
      process.stdout.write(JSON.stringify({ dir: rig.dir, bridge: rig.bridge, pid: h.pid }) + '\\n');
      setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString())));
    const orphan = JSON.parse(line) as { dir: string; bridge: string; pid: number };
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect((await stat(`/proc/${orphan.pid}`)).isDirectory()).toBe(true);
    await cleanupStaleRigs();
    await expect(stat(orphan.dir)).rejects.toThrow();
    expect((await run('ip', ['-o', 'link'])).stdout).not.toContain(orphan.bridge);
    await expect.poll(() => stat(`/proc/${orphan.pid}`).then(() => true, () => false)).toBe(false);
  });

  it('leaves no bridge, veth, mount, cgroup or directory behind', async () => {
    const other = await HostRig.create();
    const h = await other.addHost({ name: 'gone' });
    const { cgroups } = JSON.parse(await readFile(`${other.dir}/hosts/gone/pid`, 'utf8')) as { cgroups: string[] };
    await h.exec('mkdir -p /sys/fs/cgroup/pids/inner');
    await other.close();
    const links = (await run('ip', ['-o', 'link'])).stdout;
    expect(links).not.toContain(other.bridge);
    expect(links).not.toContain(`vr${other.id}`);
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(other.dir);
    for (const dir of cgroups) await expect(stat(dir)).rejects.toThrow();
    expect((await readdir('/tmp')).filter((n) => n.includes(other.id))).toEqual([]);
    expect((await run('iptables', ['-w', '-t', 'nat', '-S'])).stdout).not.toContain(`berth-rig-${other.id}`);
  });
});

if (missing.length > 0) {
  describe('HostRig', () => {
    it.skip(`needs ${missing.join(', ')}`, () => {});
  });
}
