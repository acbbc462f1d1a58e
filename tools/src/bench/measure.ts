import { execFile, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** One measured subject of a benchmark: a name and the work of one run. */
export interface Subject {
  readonly name: string;
  /** Set when the subject cannot run on this host; the row then shows the reason. */
  readonly skip?: string;
  readonly setup?: () => Promise<void>;
  readonly run: () => Promise<void>;
  readonly teardown?: () => Promise<void>;
}

/** The result row of a subject: its median and spread in milliseconds, or why it was skipped. */
export interface Timing {
  readonly name: string;
  readonly runs: number;
  readonly medianMs?: number;
  readonly p10Ms?: number;
  readonly p90Ms?: number;
  readonly skip?: string;
}

/** A benchmark's result: rows, the row the ratios are taken against, and an optional unit. */
export interface BenchReport {
  readonly title: string;
  readonly baseline: string;
  readonly rows: readonly Timing[];
  readonly notes?: readonly string[];
}

function quantile(sorted: readonly number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[i]!;
}

/** Runs each subject `warmup` times unmeasured, then `runs` times, interleaving subjects so drift hits all alike. */
export async function measure(subjects: readonly Subject[], runs: number, warmup = 2): Promise<Timing[]> {
  const live = subjects.filter((s) => !s.skip);
  const samples = new Map<string, number[]>(live.map((s) => [s.name, []]));
  for (const s of live) await s.setup?.();
  try {
    for (let i = 0; i < warmup; i++) for (const s of live) await s.run();
    for (let i = 0; i < runs; i++) {
      for (const s of live) {
        const start = performance.now();
        await s.run();
        samples.get(s.name)!.push(performance.now() - start);
      }
    }
  } finally {
    for (const s of live) await s.teardown?.();
  }
  return subjects.map((s) => {
    if (s.skip) return { name: s.name, runs: 0, skip: s.skip };
    const sorted = [...samples.get(s.name)!].sort((a, b) => a - b);
    return { name: s.name, runs: sorted.length, medianMs: quantile(sorted, 0.5), p10Ms: quantile(sorted, 0.1), p90Ms: quantile(sorted, 0.9) };
  });
}

/** The report as a Markdown table: median, p10–p90, and the ratio to the baseline row. */
export function formatReport(report: BenchReport): string {
  const base = report.rows.find((r) => r.name === report.baseline)?.medianMs;
  const lines = [`### ${report.title}`, '', '| subject | median | p10–p90 | ratio to ' + report.baseline + ' |', '|---|---:|---:|---:|'];
  for (const r of report.rows) {
    if (r.medianMs === undefined) {
      lines.push(`| ${r.name} | — | — | skipped: ${r.skip ?? 'no data'} |`);
      continue;
    }
    const ratio = base ? `${(r.medianMs / base).toFixed(2)}×` : '—';
    lines.push(`| ${r.name} | ${fmt(r.medianMs)} | ${fmt(r.p10Ms!)}–${fmt(r.p90Ms!)} | ${ratio} |`);
  }
  for (const n of report.notes ?? []) lines.push('', n);
  return lines.join('\n') + '\n';
}

function fmt(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

/** Runs a command to completion, throwing with its stderr when it fails. Output is discarded. */
export async function sh(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  const { stdout } = await exec(cmd, args, { maxBuffer: 64 << 20, env: options.env ?? process.env, cwd: options.cwd });
  return stdout;
}

/** Like `sh` but streams nothing and resolves to the exit code, for subjects whose status is part of the work. */
export function status(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'ignore', env: options.env ?? process.env, cwd: options.cwd });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? 128));
  });
}

/** True when `cmd` can be found on PATH. */
export async function have(cmd: string): Promise<boolean> {
  try {
    await exec('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}
