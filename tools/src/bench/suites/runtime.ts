import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeBusyboxBundle } from '../../rootfs.js';
import { have, measure, sh, type BenchReport, type Subject } from '../measure.js';

// `run` of `echo hi` on one busybox bundle by berth-runtime, runc and crun. Each runtime is
// started by a resident shell that reads a container id per line, so every row pays the same
// small fork+exec and nothing of Node's spawn. crun refuses this host's hybrid cgroup layout
// ("cgroups in hybrid mode not supported"), so its shell runs in a private mount namespace with
// a tmpfs over /sys/fs/cgroup/unified: crun then sees, and uses, plain cgroup v1.

const shim = fileURLToPath(new URL('../../../../packages/runtime/dist/native/berth-runtime', import.meta.url));

interface Runner {
  readonly child: ChildProcess;
  readonly lines: Interface;
}

const loop = 'while read -r id; do "$0" --root "$1" run --bundle "$2" "$id" >/dev/null 2>&1 </dev/null; echo "$?"; done';

function startRunner(binary: string, root: string, bundle: string, privateCgroupV1: boolean): Runner {
  const args = privateCgroupV1
    ? ['-m', 'sh', '-c', `mount -t tmpfs tmpfs /sys/fs/cgroup/unified && exec sh -c '${loop}' "$0" "$1" "$2"`, binary, root, bundle]
    : ['-c', loop, binary, root, bundle];
  const child = spawn(privateCgroupV1 ? 'unshare' : 'sh', args, { stdio: ['pipe', 'pipe', 'inherit'] });
  return { child, lines: createInterface({ input: child.stdout! }) };
}

function runOnce(runner: Runner, id: string): Promise<void> {
  return new Promise((resolve, reject) => {
    runner.lines.once('line', (status) => (status === '0' ? resolve() : reject(new Error(`run ${id} exited ${status}`))));
    runner.child.stdin!.write(`${id}\n`);
  });
}

function subject(name: string, binary: string, dir: string, bundle: string, privateCgroupV1: boolean, skip?: string): Subject {
  let runner: Runner | undefined;
  let n = 0;
  const root = join(dir, `state-${name.split(' ')[0]}`);
  return {
    name,
    ...(skip ? { skip } : {}),
    setup: async () => {
      runner = startRunner(binary, root, bundle, privateCgroupV1);
    },
    run: () => runOnce(runner!, `bench-${name.split(' ')[0]}-${process.pid}-${++n}`),
    teardown: async () => {
      runner?.child.stdin!.end();
      await new Promise((r) => runner?.child.once('exit', r));
    },
  };
}

/** Benchmark entry: `berth-runtime run` vs `runc run` vs `crun run` of `echo hi`. */
export async function run({ runs }: { runs: number }): Promise<BenchReport[]> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-runtime-'));
  try {
    const bundle = await makeBusyboxBundle(join(dir, 'bundle'), { args: ['echo', 'hi'] });
    const hasRunc = await have('runc');
    const hasCrun = (await have('crun')) && (await have('unshare'));
    const versions = [
      (await sh(shim, ['--version'])).split('\n')[0],
      hasRunc ? (await sh('runc', ['--version'])).split('\n')[0] : 'runc: not installed',
      hasCrun ? (await sh('crun', ['--version'])).split('\n')[0] : 'crun: not installed',
    ];
    const rows = await measure(
      [
        subject('berth-runtime run', shim, dir, bundle, false),
        subject('runc run', 'runc', dir, bundle, false, hasRunc ? undefined : 'runc is not installed'),
        subject('crun run', 'crun', dir, bundle, true, hasCrun ? undefined : 'crun (or unshare) is not installed'),
      ],
      runs,
      3,
    );
    return [
      {
        title: 'container run of `echo hi` (busybox bundle, pid/net/ipc/uts/mount namespaces, cgroups, read-only root)',
        baseline: 'crun run',
        rows,
        notes: [
          `Versions: ${versions.join('; ')}.`,
          'crun runs in a private mount namespace with /sys/fs/cgroup/unified hidden (it refuses hybrid cgroups); berth-runtime and runc use the hybrid layout as it is.',
          'Targets: berth-runtime within 1.5× of crun and faster than runc.',
        ],
      },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
