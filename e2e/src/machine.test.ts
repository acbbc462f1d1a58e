import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pty from 'node-pty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostRig, missingTools, systemdUnavailable, type RigHost } from '@berth/tools/host-rig';
import {
  buildTestBundle,
  busyboxImportTar,
  engineBin,
  engineBundleUnavailable,
  machineBin,
  machineUnavailable,
  runCli,
  runMachine,
  type CliOptions,
  type CliResult,
} from '@berth/tools/machine-cli';

// machine against real hosts: rig hosts (own namespaces, sshd and filesystem view) provisioned
// with the real engine bundle, then driven with the real engine and docker CLIs over mutual TLS.
const skip = (await missingTools()).join(', ') || machineUnavailable() || (await engineBundleUnavailable());
const noSystemd = await systemdUnavailable();

// Each case provisions real hosts: give it minutes, not the default seconds.
describe.skipIf(!!skip)('machine with the generic driver on rig hosts', { timeout: 300_000 }, () => {
  let rig: HostRig;
  let store: string;
  let work: string;
  let bundleDir: string;
  let busybox: Awaited<ReturnType<typeof busyboxImportTar>>;
  let h1: RigHost;
  const machine = (args: readonly string[], options: CliOptions = {}) => runMachine(store, args, { ...options, env: { MACHINE_ENGINE_BUNDLE: bundleDir, ...options.env } });
  const ok = async (args: readonly string[], options: CliOptions = {}): Promise<CliResult> => {
    const result = await machine(args, options);
    if (result.code !== 0) throw new Error(`machine ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
    return result;
  };
  const create = (host: RigHost, name: string, extra: readonly string[] = [], options: CliOptions = {}) =>
    machine(['create', '-d', 'generic', '--generic-ip-address', host.ip, '--generic-ssh-key', host.keyPath, ...extra, name], options);
  /** The environment `eval "$(machine env NAME)"` gives, parsed from the bash output. */
  const envOf = async (name: string, options: CliOptions = {}): Promise<Record<string, string>> => {
    const { stdout } = await ok(['env', '--shell', 'bash', name], options);
    return Object.fromEntries([...stdout.matchAll(/^export (\w+)="(.*)"$/gm)].map((m) => [m[1]!, m[2]!]));
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-machine-e2e-'));
    store = join(work, 'store');
    const [created, bundle, tar] = await Promise.all([HostRig.create(), buildTestBundle(), busyboxImportTar()]);
    rig = created;
    bundleDir = bundle.dir;
    busybox = tar;
    // h1 lacks iproute2, which the engine needs: provisioning must install it with apt.
    h1 = await rig.addHost({ name: 'h1', removePackages: ['iproute2'] });
  }, 300_000);

  afterAll(async () => {
    await rig?.close();
    await busybox?.cleanup();
    if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('creates h1, lists it, and points the engine and docker CLIs at it over mutual TLS', async () => {
    const created = await create(h1, 'h1', ['--engine-label', 'team=e2e', '--engine-env', 'BERTH_E2E=1', '--tls-san', 'engine.h1.test']);
    expect(created.stderr).toContain('Installed iproute2');
    expect(created.code).toBe(0);
    expect(created.stdout).toBe('');

    const ls = await ok(['ls']);
    const [header, row] = ls.stdout.trim().split('\n');
    expect(header!.split(/\s+/)).toEqual(['NAME', 'ACTIVE', 'DRIVER', 'STATE', 'URL', 'CPU', 'MEMORY', 'DOCKER', 'ERRORS']);
    expect(row).toMatch(new RegExp(`^h1\\s+-\\s+generic\\s+Running\\s+tcp://${h1.ip.replace(/\./g, '\\.')}:2376\\s+[\\d.]+/\\d+\\s+\\S+/\\S+\\s+v\\d`));
    expect((await ok(['ls', '-q'])).stdout).toBe('h1\n');
    expect((await ok(['ls', '--filter', 'label=team=e2e', '--format', '{{.Name}} {{.State}}'])).stdout).toBe('h1 Running\n');
    expect((await ok(['ls', '--filter', 'driver=aws', '-q'])).stdout).toBe('');

    const env = await envOf('h1');
    expect(env).toMatchObject({ DOCKER_TLS_VERIFY: '1', DOCKER_HOST: `tcp://${h1.ip}:2376`, DOCKER_MACHINE_NAME: 'h1', DOCKER_CERT_PATH: join(store, 'machines', 'h1') });
    expect((await ok(['ls'], { env: { DOCKER_HOST: env.DOCKER_HOST } })).stdout).toMatch(/^h1\s+\*/m);
    expect((await ok(['active'], { env: { DOCKER_HOST: env.DOCKER_HOST } })).stdout).toBe('h1\n');

    const dockerEnv = { ...env, DOCKER_CONFIG: join(work, 'docker-config') };
    const imported = await runCli('docker', ['import', busybox.tar, 'busybox:latest'], { env: dockerEnv });
    expect(imported.stderr).toBe('');
    // On the default network, removed at the end, with the container's exit code: as with dockerd.
    const docker = await runCli('docker', ['run', '--rm', 'busybox', 'sh', '-c', 'echo docker says $((6*7)) on $(cat /sys/class/net/eth0/operstate); exit 3'], { env: dockerEnv });
    expect(docker).toEqual({ code: 3, stdout: 'docker says 42 on up\n', stderr: '' });
    const engine = await runCli(process.execPath, [engineBin, 'run', '--rm', 'busybox', 'echo', 'engine says hi'], { env: { ...env, HOME: work } });
    expect(engine).toEqual({ code: 0, stdout: 'engine says hi\n', stderr: '' });
    expect((await runCli('docker', ['ps', '-aq'], { env: dockerEnv })).stdout).toBe('');
    const info = await runCli('docker', ['info', '--format', '{{json .Labels}}'], { env: dockerEnv });
    expect(JSON.parse(info.stdout)).toEqual(expect.arrayContaining(['provider=generic', 'team=e2e']));

    // The engine refuses a client without a certificate signed by the store's CA.
    const anonymous = await runCli('docker', ['-H', env.DOCKER_HOST!, '--tls', 'version'], { env: { DOCKER_CONFIG: dockerEnv.DOCKER_CONFIG } });
    expect(anonymous.code).not.toBe(0);
    const flags = (await ok(['config', 'h1'])).stdout.trim().split('\n').map((f) => f.replace(/"/g, ''));
    expect((await runCli('docker', [...flags, 'version', '--format', '{{.Server.Version}}'], { env: { DOCKER_CONFIG: dockerEnv.DOCKER_CONFIG } })).stdout).toMatch(/^\d/);
    expect((await ok(['version', 'h1'])).stdout).toMatch(/^\d+\.\d+\.\d+/);
    // The service got the --engine-env value; the certificate names the --tls-san.
    expect(await readFile(h1.path('/etc/berth/engine.env'), 'utf8')).toContain('BERTH_E2E="1"');
    const san = await runCli('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', join(store, 'machines', 'h1', 'server.pem')]);
    expect(san.stdout).toContain(`IP Address:${h1.ip}`);
    expect(san.stdout).toContain('DNS:engine.h1.test');
  });

  it('inspects, provisions again and upgrades a host', async () => {
    const inspected = JSON.parse((await ok(['inspect', 'h1'])).stdout) as Record<string, unknown>;
    expect(inspected).toMatchObject({ name: 'h1', driverName: 'generic', status: 'ready', driver: { ipAddress: h1.ip, sshKeyFile: 'id_ed25519' }, provision: { osId: 'debian', init: 'supervised', installedPackages: ['iproute2'] } });
    expect((await ok(['inspect', '-f', '{{.driver.ipAddress}}', 'h1'])).stdout).toBe(`${h1.ip}\n`);
    const again = await ok(['provision', 'h1']);
    expect(again.stderr).toContain('already there');
    expect((await ok(['version', 'h1'])).stdout).toMatch(/^\d/);
    expect((await ok(['upgrade', 'h1'])).stderr).toMatch(/The engine is already \d/);
  });

  it('runs commands and a terminal over ssh, and copies files both ways with scp', async () => {
    const command = await machine(['ssh', 'h1', 'echo', 'on', '$(hostname);', 'exit', '7']);
    expect(command).toMatchObject({ code: 7, stdout: 'on h1\n' });
    expect((await machine(['ssh', 'h1'], { input: 'cat /etc/hostname\n' })).stdout).toBe('h1\n');
    expect((await machine(['ssh', 'h1', 'cat'], { input: 'piped through\n' })).stdout).toBe('piped through\n');
    expect((await machine(['ssh', 'h1', 'engine', 'images', '--format', '{{.Repository}}'])).stdout).toContain('busybox');

    // A real terminal: the remote side gets a pty and the exit status comes back.
    const term = pty.spawn(process.execPath, [machineBin, '-s', store, 'ssh', 'h1'], { cols: 100, rows: 30, env: { PATH: process.env.PATH ?? '', HOME: work, TERM: 'xterm' } });
    let screen = '';
    term.onData((d) => (screen += d));
    const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
    await expect.poll(() => screen, { timeout: 20_000 }).toMatch(/[#$] $/m);
    term.write('tty; echo "cols=$(tput cols 2>/dev/null || stty size | cut -d" " -f2)"; exit 5\r');
    expect(await exited).toBe(5);
    expect(screen).toMatch(/\/dev\/pts\/\d+/);
    expect(screen).toContain('cols=100');

    const local = join(work, 'tree');
    await writeFile(join(work, 'one.txt'), 'one\n');
    await ok(['scp', join(work, 'one.txt'), 'h1:/tmp/one.txt']);
    expect(await readFile(h1.path('/tmp/one.txt'), 'utf8')).toBe('one\n');
    await h1.check('mkdir -p /srv/data/sub && echo deep > /srv/data/sub/file && echo top > /srv/data/top');
    expect((await machine(['scp', 'h1:/srv/data', local])).code).not.toBe(0);
    await ok(['scp', '-r', 'h1:/srv/data', local]);
    expect(await readFile(join(local, 'sub', 'file'), 'utf8')).toBe('deep\n');
    await ok(['scp', '-r', local, 'h1:/srv/copy']);
    expect(await readFile(h1.path('/srv/copy/sub/file'), 'utf8')).toBe('deep\n');
    await ok(['scp', 'h1:/tmp/one.txt', join(work, 'back.txt')]);
    expect(await readFile(join(work, 'back.txt'), 'utf8')).toBe('one\n');
  });

  it('stops, starts and restarts a host, and reports its state', async () => {
    expect((await ok(['status', 'h1'])).stdout).toBe('Running\n');
    await ok(['stop', 'h1']);
    await h1.waitOff();
    expect((await ok(['status', 'h1'])).stdout).toBe('Stopped\n');
    expect((await ok(['ls', '--format', '{{.Name}} {{.State}} {{.URL}}'])).stdout).toBe('h1 Stopped \n');
    // A generic host cannot be powered on by machine: it says so; after power-on, start finishes.
    const refused = await machine(['start', 'h1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('cannot power on');
    await h1.powerOn();
    await ok(['start', 'h1']);
    expect((await ok(['status', 'h1'])).stdout).toBe('Running\n');
    expect((await ok(['version', 'h1'])).stdout).toMatch(/^\d/);
    const pid = h1.pid;
    await ok(['restart', 'h1']);
    expect(h1.pid).not.toBe(pid);
    expect((await ok(['version', 'h1'])).stdout).toMatch(/^\d/);
    // Containers and images outlive the engine's restart: the image imported before is there.
    const env = await envOf('h1');
    expect((await runCli('docker', ['images', '--format', '{{.Repository}}'], { env: { ...env, DOCKER_CONFIG: join(work, 'docker-config') } })).stdout).toContain('busybox');
  });

  it('shows a host that does not answer in time as Timeout', async () => {
    await h1.iptables(['-I', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'DROP']);
    try {
      const ls = await ok(['ls', '--timeout', '1', '--format', '{{.Name}} {{.State}}']);
      expect(ls.stdout).toBe('h1 Timeout\n');
    } finally {
      await h1.iptables(['-D', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'DROP']);
    }
  });

  it('notices an IP change in env, and regenerate-certs (or start) makes certificates for the new address', async () => {
    const h2 = await rig.addHost({ name: 'h2' });
    try {
      await renumbered(h2);
    } finally {
      await machine(['rm', '-f', 'h2']);
      await h2.remove();
    }
  });

  async function renumbered(h2: RigHost): Promise<void> {
    const hostsFile = join(work, 'hosts');
    const writeHosts = async () => writeFile(hostsFile, `127.0.0.1 localhost\n${h2.ip} h2.rig.test\n`);
    await writeHosts();
    const withHosts = { hostsFile };
    const created = await machine(['create', '-d', 'generic', '--generic-ip-address', 'h2.rig.test', '--generic-ssh-key', h2.keyPath, 'h2'], withHosts);
    expect(created.code, created.stderr).toBe(0);
    await h2.changeIp();
    await writeHosts();
    const stale = await machine(['env', '--shell', 'bash', 'h2'], withHosts);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain(`now at ${h2.ip}`);
    expect(stale.stderr).toContain('regenerate-certs h2');
    expect(stale.stdout).toBe('');
    await ok(['regenerate-certs', '-f', 'h2'], withHosts);
    const env = await envOf('h2', withHosts);
    expect(env.DOCKER_HOST).toBe(`tcp://${h2.ip}:2376`);
    const docker = await runCli('docker', ['version', '--format', '{{.Server.Version}}'], { env: { ...env, DOCKER_CONFIG: join(work, 'docker-config') } });
    expect(docker.stdout).toMatch(/^\d/);
    // Renumbered again: `start` notices and regenerates on its own.
    const second = h2.ip;
    await h2.changeIp();
    await writeHosts();
    const started = await ok(['start', 'h2'], withHosts);
    expect(started.stderr).toContain(`The IP changed to ${h2.ip}`);
    expect((await ok(['config', 'h2'], withHosts)).stdout).toContain(`-H=tcp://${h2.ip}:2376`);
    expect(h2.ip).not.toBe(second);
    await ok(['rm', '-y', 'h2'], withHosts);
  }

  it.skipIf(!!noSystemd)('provisions a systemd host: the engine runs as an enabled unit and comes back after a reboot', async () => {
    const s1 = await rig.addHost({ name: 's1', init: 'systemd' });
    try {
      const created = await create(s1, 's1');
      expect(created.code, created.stderr).toBe(0);
      expect(created.stderr).toContain('(x64, apt, systemd)');
      expect((await machine(['ssh', 's1', 'systemctl', 'is-enabled', 'berth-engine;', 'systemctl', 'is-active', 'berth-engine'])).stdout).toBe('enabled\nactive\n');
      const env = { ...(await envOf('s1')), DOCKER_CONFIG: join(work, 'docker-config') };
      expect((await runCli('docker', ['import', busybox.tar, 'busybox:latest'], { env })).code).toBe(0);
      expect(await runCli('docker', ['run', '--rm', 'busybox', 'echo', 'from systemd'], { env })).toEqual({ code: 0, stdout: 'from systemd\n', stderr: '' });
      await ok(['restart', 's1']);
      expect((await machine(['ssh', 's1', 'systemctl', 'is-active', 'berth-engine'])).stdout).toBe('active\n');
      expect((await runCli('docker', ['version', '--format', '{{.Server.Version}}'], { env })).stdout).toMatch(/^\d/);
      await ok(['rm', '-y', 's1']);
      expect((await s1.exec('systemctl cat berth-engine >/dev/null 2>&1 || test -e /opt/berth')).code).not.toBe(0);
    } finally {
      await machine(['rm', '-f', 's1']);
      await s1.remove();
    }
  });

  it('creates three hosts in parallel with one CA, then removes them in one rm', async () => {
    const hosts = await Promise.all(['p1', 'p2', 'p3'].map((name) => rig.addHost({ name })));
    try {
      await parallel(hosts);
    } finally {
      await machine(['rm', '-f', 'p1', 'p2', 'p3']);
      await Promise.all(hosts.map((h) => h.remove()));
    }
  });

  async function parallel(hosts: RigHost[]): Promise<void> {
    const results = await Promise.all(hosts.map((h) => create(h, h.name)));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const ls = await ok(['ls', '--filter', 'name=^p', '--format', '{{.Name}} {{.State}} {{.DockerVersion}}']);
    expect(ls.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^p1 Running v\d/), expect.stringMatching(/^p2 Running v\d/), expect.stringMatching(/^p3 Running v\d/)]);
    const ca = await readFile(join(store, 'certs', 'ca.pem'), 'utf8');
    for (const h of hosts) expect(await readFile(h.path('/etc/berth/ca.pem'), 'utf8')).toBe(ca);
    await ok(['stop', 'p1', 'p2']);
    expect((await ok(['ls', '--filter', 'state=stopped', '-q'])).stdout).toBe('p1\np2\n');
    // Power the stopped hosts on again (the power button), so that rm can uninstall the engine.
    await Promise.all([hosts[0]!, hosts[1]!].map(async (h) => {
      await h.waitOff();
      await h.powerOn();
    }));
    await ok(['rm', '-y', 'p1', 'p2', 'p3']);
    expect((await ok(['ls', '-q', '--filter', 'name=^p'])).stdout).toBe('');
    for (const h of hosts) expect((await h.exec('test -e /opt/berth || test -e /etc/berth || test -e /usr/local/bin/engine')).code).not.toBe(0);
  }

  it('leaves nothing behind when a create fails half-way', async () => {
    const h3 = await rig.addHost({ name: 'h3', removePackages: ['iproute2'] });
    // The engine refuses an option it does not know: provisioning gets as far as starting it.
    const failed = await create(h3, 'h3', ['--engine-opt', 'no-such-engine-option=1']);
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.stderr).toContain('did not come up');
    expect(failed.stderr).toContain('Installed iproute2');
    expect(await readdir(join(store, 'machines'))).not.toContain('h3');
    expect((await ok(['ls', '-q'])).stdout).not.toContain('h3');
    const leftovers = await h3.exec(
      'ls -d /opt/berth* /etc/berth /usr/local/bin/engine /usr/local/libexec/berth-engine-supervise /etc/rc.local /run/berth-engine* /var/log/berth-engine.log 2>/dev/null; ' +
        "dpkg-query -W -f='${Status}' iproute2 2>/dev/null | grep -q 'install ok installed' && echo iproute2",
    );
    expect(leftovers.stdout).toBe('');
    expect((await h3.exec('ps -eo args')).stdout).not.toMatch(/supervise|engine serve/);
    // The name is free again.
    await expect(stat(join(store, 'machines', 'h3'))).rejects.toThrow();
    await h3.remove();
  });

  it('removes h1 and uninstalls what provisioning installed', async () => {
    const prompt = await machine(['rm', 'h1'], { input: 'n\n' });
    expect(prompt.code).not.toBe(0);
    expect(prompt.stderr).toContain('Are you sure?');
    await ok(['rm', 'h1'], { input: 'y\n' });
    expect((await ok(['ls', '-q'])).stdout).toBe('');
    const leftovers = await h1.exec("ls -d /opt/berth /etc/berth /usr/local/bin/engine 2>/dev/null; dpkg-query -W -f='${Status}' iproute2 | grep -q 'install ok installed' && echo iproute2");
    expect(leftovers.stdout).toBe('');
  });
});

// Where the rig cannot run, the report says why.
if (skip) {
  describe('machine with the generic driver on rig hosts', () => {
    it.skip(`cannot run here: ${skip}`, () => {});
  });
}
