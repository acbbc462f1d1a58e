import { basename } from 'node:path';
import { runMachine } from '../cli.js';

// The one place that ends the process: Ctrl-C aborts the running command (a create then removes
// what it made), a second Ctrl-C exits at once.
const controller = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  interrupts++;
  if (interrupts > 1) process.exit(130);
  process.stderr.write('\nmachine: interrupted, cleaning up (Ctrl-C again to quit now)\n');
  controller.abort(new Error('interrupted'));
});
process.on('SIGTERM', () => controller.abort(new Error('terminated')));

process.exitCode = await runMachine({
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  platform: process.platform,
  argv0: basename(process.argv[1] ?? 'machine').replace(/\.(m?js|cjs)$/, ''),
  args: process.argv.slice(2),
  signal: controller.signal,
});
