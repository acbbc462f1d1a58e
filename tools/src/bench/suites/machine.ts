import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HostRig, missingTools, type RigHost } from '../../host-rig.js';
import { buildTestBundle, engineBundleUnavailable, machineBin, machineUnavailable, runMachine } from '../../machine-cli.js';
import type { BenchReport, Timing } from '../measure.js';

// `machine create -d generic` on rig hosts with the real engine bundle: end to end and by phase
// (read from the CLI's progress lines as they arrive), and five hosts created at once against
// one. Every run starts from a host without the engine (`rm` between runs uninstalls it), so
// each create uploads the bundle, writes certificates and starts the service.

/** Progress lines that open each phase, in order; a phase ends where the next one starts. */
const marks = [
  ['ssh', 'Waiting for SSH to be available'],
  ['detect', 'Detecting the operating system'],
  ['packages', 'Installing the packages the engine needs'],
  ['upload', 'Copying the engine to the host'],
  ['certificates', 'Copying certificates'],
  ['service', 'Setting up the engine service'],
  ['done', 'The engine is up and running'],
] as const;

type Phase = (typeof marks)[number][0];

interface CreateTiming {
  readonly totalMs: number;
  readonly at: Partial<Record<Phase, number>>;
}

/** Runs one create, noting when each progress line arrives. */
function timedCreate(store: string, host: RigHost, name: string, bundleDir: string): Promise<CreateTiming> {
  const started = performance.now();
  const at: Partial<Record<Phase, number>> = {};
  const child = spawn(
    process.execPath,
    [machineBin, '-s', store, 'create', '-d', 'generic', '--generic-ip-address', host.ip, '--generic-ssh-key', host.keyPath, name],
    { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', MACHINE_ENGINE_BUNDLE: bundleDir }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let pending = '';
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const now = performance.now() - started;
    log += chunk;
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) for (const [phase, text] of marks) if (line.includes(text) && at[phase] === undefined) at[phase] = now;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ totalMs: performance.now() - started, at }) : reject(new Error(`machine create ${name} exited ${code}:\n${log}`))));
  });
}

function timing(name: string, samples: readonly number[]): Timing {
  const sorted = [...samples].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))))]!;
  return { name, runs: sorted.length, medianMs: q(0.5), p10Ms: q(0.1), p90Ms: q(0.9) };
}

function span(t: CreateTiming, from: Phase, to: Phase): number {
  return (t.at[to] ?? t.totalMs) - (t.at[from] ?? 0);
}

/** Benchmark entry. Each run is a full provisioning (~10-30 s), so runs are capped at 5. */
export async function run({ runs }: { runs: number }): Promise<BenchReport[]> {
  const missing = [...(await missingTools()), machineUnavailable(), await engineBundleUnavailable()].filter((m): m is string => !!m);
  const title = 'machine create -d generic on a rig host';
  if (missing.length) return [{ title, baseline: 'create, end to end', rows: [{ name: 'create, end to end', runs: 0, skip: missing.join('; ') }] }];
  const n = Math.max(1, Math.min(runs, 5));
  const work = await mkdtemp(join(tmpdir(), 'berth-bench-machine-'));
  const store = join(work, 'store');
  const rig = await HostRig.create();
  const bundle = await buildTestBundle();
  try {
    const hosts = await Promise.all(['b1', 'b2', 'b3', 'b4', 'b5'].map((name) => rig.addHost({ name })));
    const one = hosts[0]!;
    const removeAll = async (names: readonly string[]) => {
      const result = await runMachine(store, ['rm', '-y', ...names]);
      if (result.code !== 0) throw new Error(`machine rm exited ${result.code}: ${result.stderr}`);
    };
    // A warm-up create, so that apt's cache and the page cache are as in every later run.
    await timedCreate(store, one, 'warm', bundle.dir);
    await removeAll(['warm']);

    const single: CreateTiming[] = [];
    const parallel: number[] = [];
    for (let i = 0; i < n; i++) {
      single.push(await timedCreate(store, one, `one-${i}`, bundle.dir));
      await removeAll([`one-${i}`]);
      const started = performance.now();
      await Promise.all(hosts.map((h) => timedCreate(store, h, `${h.name}-${i}`, bundle.dir)));
      parallel.push(performance.now() - started);
      await removeAll(hosts.map((h) => `${h.name}-${i}`));
    }
    const phases: Timing[] = [
      timing('create, end to end', single.map((t) => t.totalMs)),
      timing('  until SSH answers (from start)', single.map((t) => t.at.detect ?? t.totalMs)),
      timing('  OS detection', single.map((t) => span(t, 'detect', 'packages'))),
      timing('  packages (already there)', single.map((t) => span(t, 'packages', 'upload'))),
      timing(`  upload (${Math.round(statSync(bundle.path).size / 1e6)} MB bundle)`, single.map((t) => span(t, 'upload', 'certificates'))),
      timing('  certificates', single.map((t) => span(t, 'certificates', 'service'))),
      timing('  service up (start, TLS answer)', single.map((t) => span(t, 'service', 'done'))),
    ];
    return [
      {
        title: `${title}: phases (${n} runs)`,
        baseline: 'create, end to end',
        rows: phases,
        notes: [`Engine bundle ${bundle.version} for ${bundle.arch}; hosts are network namespaces on this machine, so the upload runs at memory speed.`],
      },
      {
        title: `${title}: 5 hosts at once against 1 (${n} runs)`,
        baseline: '1 host',
        rows: [timing('1 host', single.map((t) => t.totalMs)), timing('5 hosts in parallel (5 processes)', parallel)],
        notes: ['A ratio near 1 means the five creates overlap; 5 would mean they ran one after another.'],
      },
    ];
  } finally {
    await rig.close();
    await rm(bundle.dir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
}
