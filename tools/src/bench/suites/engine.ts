import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { NetworkManager } from '@berth/network';
import { freeSubnet } from '../../free-subnets.js';
import { dockerdUnavailable, startDockerd, type DockerdRig } from '../../dockerd-rig.js';
import { makeBusyboxRootfs } from '../../rootfs.js';
import { have, measure, sh, status, type BenchReport, type Subject } from '../measure.js';

// `run --rm busybox true` four ways on the same image (one busybox rootfs tar imported into
// each): Berth daemonless, the docker CLI against `engine serve`, the docker CLI against a
// private dockerd, and podman. Every container runs with `--network none`, because the private
// dockerd runs without a bridge (it must not touch the host's networking) and the rows should
// do the same work. Then the idle memory of `engine serve` and of dockerd (and its containerd).
// Berth gets a bridge, subnet and rule tag of its own (its network manager makes the default
// bridge on first use, even for `--network none`), removed with its rules at the end.

const engineBin = fileURLToPath(new URL('../../../../apps/engine/bin/engine.js', import.meta.url));
const runArgs = ['run', '--rm', '--network', 'none', 'busybox', 'true'];

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping' }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function rssKiB(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(text)?.[1] ?? 0);
}

// Children of any of the process's threads (dockerd starts containerd from a worker thread).
async function childPids(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const lists = await Promise.all(tasks.map((t) => readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '')));
  return lists.join(' ').split(/\s+/).filter(Boolean).map(Number);
}


function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

/** Exit statuses other than 0 seen per subject: reported with the figures, not hidden in them. */
const failures = new Map<string, number[]>();

function checked(name: string, cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): () => Promise<void> {
  return async () => {
    const code = await status(cmd, args, env ? { env } : {});
    if (code !== 0) failures.set(name, [...(failures.get(name) ?? []), code]);
  };
}

/** Benchmark entry: see the comment at the top. */
export async function run({ runs }: { runs: number }): Promise<BenchReport[]> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-engine-'));
  const berth = ['--root', join(dir, 'berth-root'), '--runroot', join(dir, 'berth-run')];
  // podman: its default crun refuses this host's hybrid cgroups, and its default ulimits are
  // above what this host lets a process set; runc and no default ulimits make it run here.
  const podman = ['--root', join(dir, 'podman-root'), '--runroot', join(dir, 'podman-run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', 'runc'];
  const podmanEnv = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf') };
  const socket = join(dir, 'berth.sock');
  const suffix = dir.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, 'x');
  const network = { stateDir: join(dir, 'berth-root', 'network'), defaultBridge: `bbench${suffix}`, ruleTag: `bench${suffix}` };
  // The CLI's code cache in the bench's directory: written by the first (warm-up) run, as a user's first run writes it.
  const berthEnv = { ...process.env, BERTH_BRIDGE: network.defaultBridge, BERTH_BIP: await freeSubnet(), BERTH_NETWORK_TAG: network.ruleTag, XDG_CACHE_HOME: join(dir, 'cache') };
  let rig: DockerdRig | undefined;
  let serve: ChildProcess | undefined;
  const notes: string[] = [];
  try {
    const rootfs = join(dir, 'rootfs');
    await makeBusyboxRootfs(rootfs);
    const tar = join(dir, 'busybox.tar');
    await sh('tar', ['-C', rootfs, '-cf', tar, '.']);
    await sh(process.execPath, [engineBin, ...berth, 'import', '-c', 'CMD ["sh"]', tar, 'busybox:latest'], { env: berthEnv });
    serve = spawn(process.execPath, [engineBin, ...berth, 'serve', '-H', `unix://${socket}`], { stdio: 'ignore', env: berthEnv });
    for (let i = 0; !(await ping(socket)); i++) {
      if (serve.exitCode !== null || i > 200) throw new Error('engine serve did not come up');
      await sleep(50);
    }
    const dockerSkip = await dockerdUnavailable();
    if (!dockerSkip) {
      rig = await startDockerd();
      await sh('sh', ['-c', `docker -H "${rig.host}" import -c 'CMD ["sh"]' "${tar}" busybox:latest`]);
    }
    const podmanSkip = (await have('podman')) ? undefined : 'podman is not installed';
    if (!podmanSkip) {
      await writeFile(join(dir, 'containers.conf'), '[containers]\ndefault_ulimits = []\n');
      await sh('podman', [...podman, 'import', '-c', 'CMD ["sh"]', tar, 'busybox:latest'], { env: podmanEnv });
    }

    const subjects: Subject[] = [
      { name: 'engine run --rm (daemonless)', run: checked('engine run --rm (daemonless)', process.execPath, [engineBin, ...berth, ...runArgs], berthEnv) },
      { name: 'docker run --rm → engine serve', run: checked('docker run --rm → engine serve', 'docker', ['-H', `unix://${socket}`, ...runArgs]) },
      {
        name: 'docker run --rm → dockerd',
        ...(dockerSkip ? { skip: dockerSkip } : {}),
        run: checked('docker run --rm → dockerd', 'docker', ['-H', rig?.host ?? '', ...runArgs]),
      },
      { name: 'podman run --rm (runc)', ...(podmanSkip ? { skip: podmanSkip } : {}), run: checked('podman run --rm (runc)', 'podman', [...podman, ...runArgs], podmanEnv) },
    ];
    const rows = await measure(subjects, runs, 3);
    const base = rows.find((r) => r.name === 'docker run --rm → dockerd')?.medianMs;
    const ours = rows.find((r) => r.name === 'engine run --rm (daemonless)')?.medianMs;
    if (base && ours) notes.push(`Daemonless run is ${(ours / base).toFixed(2)}× docker's time (target ≤ 0.30×: ${ours / base <= 0.3 ? 'met' : 'not met'}).`);
    for (const [name, codes] of failures) notes.push(`${name}: ${codes.length} run(s) exited non-zero (${[...new Set(codes)].join(', ')}); their times are in the figures.`);

    // Idle: nothing has been asked of either daemon since the runs. V8 gives memory back a while
    // after activity stops, so the servers are sampled after 10 s and again after 45 s.
    const sample = async () => {
      const serveRss = await rssKiB(serve!.pid!);
      if (!rig) return { serveRss, dockerd: undefined, withContainerd: undefined };
      const pid = Number((await readFile(join(rig.dir, 'dockerd.pid'), 'utf8')).trim());
      const dockerd = await rssKiB(pid);
      const helpers = await Promise.all((await childPids(pid)).map(rssKiB));
      return { serveRss, dockerd, withContainerd: dockerd + helpers.reduce((a, b) => a + b, 0) };
    };
    await sleep(10_000);
    const early = await sample();
    await sleep(35_000);
    const late = await sample();
    for (const [when, s] of [['10 s', early], ['45 s', late]] as const) {
      notes.push(
        `Idle RSS after ${when}: engine serve ${mib(s.serveRss)}; ` +
          (s.dockerd === undefined ? 'dockerd not running here.' : `dockerd ${mib(s.dockerd)}, dockerd with its containerd ${mib(s.withContainerd!)}.`),
      );
    }
    if (late.dockerd !== undefined) {
      notes.push(`Idle RSS target (engine serve ≤ dockerd) after 45 s: ${late.serveRss <= late.dockerd ? 'met' : 'not met'} (≤ dockerd with containerd: ${late.serveRss <= late.withContainerd! ? 'met' : 'not met'}).`);
    }
    return [{ title: 'engine: run --rm busybox true (--network none)', baseline: 'docker run --rm → dockerd', rows, notes }];
  } finally {
    if (serve && serve.exitCode === null) {
      serve.kill('SIGTERM');
      await Promise.race([once(serve, 'exit'), sleep(10_000)]);
    }
    await rig?.stop();
    await new NetworkManager(network).removeAll().catch((err: unknown) => console.error(`bench: could not remove Berth's bridge ${network.defaultBridge} and its rules: ${String(err)}`));
    // podman keeps its storage (and Berth's snapshots may keep theirs) mounted; nothing under the dir may stay.
    const mounts = (await readFile('/proc/self/mounts', 'utf8'))
      .split('\n')
      .map((line) => line.split(' ')[1] ?? '')
      .filter((target) => target.startsWith(dir))
      .sort((a, b) => b.length - a.length);
    for (const target of mounts) await sh('umount', ['-l', target]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
