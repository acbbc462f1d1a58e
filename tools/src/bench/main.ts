import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { formatReport, type BenchReport } from './measure.js';

/** A benchmark suite: one file in suites/, exporting `run`. */
export interface Suite {
  run(options: { readonly runs: number }): Promise<BenchReport[]>;
}

// `npm run bench -- [suite ...] [--runs N]`: every suite in suites/ unless some are named.
const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args.splice(runsAt, 2)[1]) : 20;
const dir = fileURLToPath(new URL('./suites/', import.meta.url));
const available = (await readdir(dir)).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).sort();
const chosen = args.length ? args : available;
for (const name of chosen) {
  if (!available.includes(name)) {
    process.stderr.write(`bench: no suite ${name} (have: ${available.join(', ')})\n`);
    process.exitCode = 2;
    continue;
  }
  const suite = (await import(`./suites/${name}.js`)) as Suite;
  for (const report of await suite.run({ runs })) process.stdout.write(formatReport(report) + '\n');
}
