import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LogFields, Logger } from '@berth/log';
import { HostRig, missingTools, systemdUnavailable, type RigHost } from '@berth/tools/host-rig';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InitSystem } from './engine-service.js';
import { SshProvisioner, type EngineBundle, type HostFacts } from './provisioner.js';
import { SshSession } from './ssh-session.js';

const run = promisify(execFile);
const missing = await missingTools();
const noSystemd = await systemdUnavailable();

function recorder(records: { level: string; message: string; fields: LogFields }[]): Logger {
  const at = (level: string) => (message: string, fields: LogFields = {}) => void records.push({ level, message, fields });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return logger;
}

// A bundle laid out as the real one, whose "engine" is a plain program: these tests are about
// installing and supervising a service, not about the engine (the e2e runs the real one).
async function testBundle(dir: string, name: string, engineScript: string): Promise<EngineBundle> {
  const stage = join(dir, `stage-${name}`);
  await mkdir(join(stage, 'berth-engine/bin'), { recursive: true });
  await writeFile(join(stage, 'berth-engine/manifest.json'), JSON.stringify({ name: 'berth-engine', version: name, arch: 'x64' }));
  await writeFile(join(stage, 'berth-engine/bin/engine'), `#!/bin/sh\n${engineScript}\n`, { mode: 0o755 });
  const path = join(dir, `${name}.tar.gz`);
  await run('tar', ['-czf', path, '-C', stage, 'berth-engine/manifest.json', 'berth-engine/bin']);
  return { path, version: name, arch: 'x64' };
}

describe.skipIf(missing.length > 0 || process.arch !== 'x64')('SshProvisioner on a rig host', () => {
  let rig: HostRig;
  let host: RigHost;
  let dir: string;
  let session: SshSession;
  let facts: HostFacts;
  const records: { level: string; message: string; fields: LogFields }[] = [];
  let provisioner: SshProvisioner;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-provision-'));
    rig = await HostRig.create();
    host = await rig.addHost({ name: 'prov', removePackages: ['iproute2'] });
    session = await SshSession.connect({
      host: host.ip,
      port: 22,
      username: 'root',
      privateKeys: [await readFile(host.keyPath, 'utf8')],
      hostKey: { knownHostsPath: join(dir, 'known_hosts'), alias: 'prov' },
    });
    provisioner = new SshProvisioner({ session, logger: recorder(records), retryPauseMs: 500 });
  }, 120_000);

  afterAll(async () => {
    session?.close();
    await rig?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('detects Debian with apt, no service manager, x64 and root', async () => {
    facts = await provisioner.detect();
    expect(facts).toMatchObject({ os: { id: 'debian' }, distro: { packageManager: 'apt', family: 'debian' }, init: InitSystem.Supervised, arch: 'x64', root: true, cloudInit: false });
  });

  it('installs a missing package, waiting while another dpkg holds the lock', async () => {
    expect(await provisioner.missingPackages(facts, ['iproute2', 'tar'])).toEqual(['iproute2']);
    // dpkg --set-selections holds the dpkg locks while it reads its stdin: 8 s here.
    await host.check('(sleep 8 | dpkg --set-selections) >/dev/null 2>&1 & sleep 0.5');
    records.length = 0;
    expect(await provisioner.installDependencies(facts)).toEqual(['iproute2']);
    expect(records.some((r) => r.message.startsWith('package database busy (/var/lib/dpkg/lock'))).toBe(true);
    expect((await host.exec('command -v ip')).code).toBe(0);
  }, 180_000);

  it('installs a bundle once, and again only when it changed', async () => {
    const first = await testBundle(dir, 'v1', 'exec sleep 1000');
    expect(await provisioner.installBundle(facts, first)).toBe(true);
    expect(await provisioner.installBundle(facts, first)).toBe(false);
    expect(await readFile(host.path('/opt/berth/manifest.json'), 'utf8')).toContain('"v1"');
    expect((await host.check('readlink /usr/local/bin/engine')).trim()).toBe('/opt/berth/bin/engine');
    await expect(provisioner.installBundle(facts, { ...first, arch: 'arm64' })).rejects.toMatchObject({ code: 'ERR_PROVISION_ARCH' });
  });

  it('supervises the engine without a service manager, across a reboot, and counts crashes', async () => {
    await provisioner.installTls(facts, { caPem: 'ca\n', serverCertPem: 'cert\n', serverKeyPem: 'key\n' });
    expect((await host.check('stat -c %a /etc/berth/server-key.pem')).trim()).toBe('600');
    await provisioner.installService(facts, ['serve', '--label', 'a b'], ['PROXY=http://p:1']);
    await provisioner.restartEngine(facts);
    const running = () => host.exec('ps -eo args | grep -c "^sleep 1000"').then((r) => Number(r.stdout.trim()));
    await expect.poll(running, { timeout: 10_000 }).toBe(1);
    expect(await readFile(host.path('/etc/rc.local'), 'utf8')).toContain('/usr/local/libexec/berth-engine-supervise');
    // The engine gets its env file and arguments.
    const pid = (await host.check('cat /run/berth-engine.pid')).trim();
    expect(await readFile(host.path(`/proc/${pid}/environ`), 'utf8')).toContain('PROXY=http://p:1');
    const oldPid = host.pid;
    await host.exec('reboot');
    await expect.poll(() => host.pid !== oldPid && host.state === 'running', { timeout: 60_000, interval: 200 }).toBe(true);
    await host.waitRunning();
    await expect.poll(running, { timeout: 20_000 }).toBe(1);
    session.close();
    session = await SshSession.connect({
      host: host.ip,
      port: 22,
      username: 'root',
      privateKeys: [await readFile(host.keyPath, 'utf8')],
      hostKey: { knownHostsPath: join(dir, 'known_hosts'), alias: 'prov' },
    });
    provisioner = new SshProvisioner({ session, logger: recorder(records), retryPauseMs: 500 });
    // An engine that exits at once: the supervisor restarts it and counts the restarts.
    await provisioner.installBundle(facts, await testBundle(dir, 'v2', 'exit 1'));
    await provisioner.restartEngine(facts);
    await expect.poll(() => provisioner.engineRestarts(facts), { timeout: 30_000, interval: 500 }).toBeGreaterThanOrEqual(3);
    expect(await provisioner.engineLog(facts)).toContain('restarting in');
    await provisioner.stopEngine(facts);
    expect((await host.exec('test -e /run/berth-engine-supervise.pid')).code).not.toBe(0);
  }, 180_000);

  it('uninstalls everything it installed, packages included', async () => {
    const kept = await provisioner.uninstall(facts, ['iproute2']);
    expect(kept).toEqual([]);
    const leftovers = await host.exec(
      "ls -d /opt/berth* /etc/berth /usr/local/bin/engine /usr/local/libexec/berth-engine-supervise /etc/rc.local /var/log/berth-engine.log 2>/dev/null; dpkg-query -W -f='${Status}' iproute2 | grep -q 'install ok installed' && echo iproute2",
    );
    expect(leftovers.stdout).toBe('');
    // A package something else needs stays.
    expect(await provisioner.uninstall(facts, ['tar'])).toEqual(['tar']);
  });

  it('works as a user with passwordless sudo, and says so when sudo asks for a password', async () => {
    await host.check(
      // Without PAM, sshd refuses accounts whose password is locked ('!'): give them none ('*').
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sudo >/dev/null && useradd -m -p '*' deploy && useradd -m -p '*' nosudo && " +
        "echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy && echo 'nosudo ALL=(ALL) ALL' > /etc/sudoers.d/nosudo && " +
        'for u in deploy nosudo; do mkdir -p /home/$u/.ssh && cp /root/.ssh/authorized_keys /home/$u/.ssh/ && chown -R $u: /home/$u/.ssh; done',
    );
    const as = (user: string) =>
      SshSession.connect({
        host: host.ip,
        port: 22,
        username: user,
        privateKeys: [readFileSync(host.keyPath, 'utf8')],
        hostKey: { knownHostsPath: join(dir, 'known_hosts'), alias: 'prov' },
      });
    const deploy = await as('deploy');
    try {
      const viaSudo = new SshProvisioner({ session: deploy });
      const sudoFacts = await viaSudo.detect();
      expect(sudoFacts.root).toBe(false);
      await viaSudo.installTls(sudoFacts, { caPem: 'ca\n', serverCertPem: 'cert\n', serverKeyPem: 'key\n' });
      expect((await host.check('stat -c %U:%a /etc/berth/server-key.pem')).trim()).toBe('root:600');
    } finally {
      deploy.close();
    }
    const nosudo = await as('nosudo');
    try {
      await expect(new SshProvisioner({ session: nosudo }).detect()).rejects.toMatchObject({ code: 'ERR_PROVISION_SUDO', message: expect.stringContaining('without a password') });
    } finally {
      nosudo.close();
    }
  }, 180_000);
});

describe.skipIf(missing.length > 0 || process.arch !== 'x64' || !!noSystemd)('SshProvisioner on a systemd rig host', () => {
  let rig: HostRig;
  let host: RigHost;
  let dir: string;
  let session: SshSession;
  let provisioner: SshProvisioner;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-provision-sd-'));
    rig = await HostRig.create({ nat: false });
    host = await rig.addHost({ name: 'sd', init: 'systemd' });
    session = await SshSession.connect({
      host: host.ip,
      port: 22,
      username: 'root',
      privateKeys: [await readFile(host.keyPath, 'utf8')],
      hostKey: { knownHostsPath: join(dir, 'known_hosts'), alias: 'sd' },
    });
    provisioner = new SshProvisioner({ session });
  }, 120_000);

  afterAll(async () => {
    session?.close();
    await rig?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the engine as a systemd unit that keeps its children on stop and restarts it on failure', async () => {
    const facts = await provisioner.detect();
    expect(facts.init).toBe(InitSystem.Systemd);
    // The "engine" starts a child that stands for a container's monitor, then waits.
    await provisioner.installBundle(facts, await testBundle(dir, 'sd1', 'sleep 1001 &\nexec sleep 1000'));
    await provisioner.installService(facts, ['serve'], ['PROXY=http://p:1']);
    await provisioner.restartEngine(facts);
    expect((await host.exec('systemctl is-enabled berth-engine; systemctl is-active berth-engine')).stdout).toBe('enabled\nactive\n');
    const engine = (await host.check('systemctl show -p MainPID --value berth-engine')).trim();
    expect(await readFile(host.path(`/proc/${engine}/environ`), 'utf8')).toContain('PROXY=http://p:1');
    await provisioner.stopEngine(facts);
    // KillMode=process: the engine stops, the container's process stays.
    expect((await host.exec('systemctl is-active berth-engine')).stdout.trim()).toBe('inactive');
    expect((await host.exec('ps -eo args | grep -c "^sleep 1001"')).stdout.trim()).toBe('1');
    await host.exec('pkill -x -f "sleep 1001"');

    await provisioner.installBundle(facts, await testBundle(dir, 'sd2', 'exit 1'));
    await provisioner.restartEngine(facts);
    await expect.poll(() => provisioner.engineRestarts(facts), { timeout: 30_000, interval: 500 }).toBeGreaterThanOrEqual(3);
    expect(await provisioner.engineLog(facts)).toContain('berth-engine');

    await provisioner.uninstall(facts, []);
    expect((await host.exec('test -e /etc/systemd/system/berth-engine.service || systemctl cat berth-engine >/dev/null 2>&1')).code).not.toBe(0);
  }, 120_000);
});
