import { SignalRouter } from '../cli/signal-router.js';
import { runCli } from '../main.js';

// The CLI bundle's entry (dist/cli.cjs, started by dist/engine.cjs). The only place that sets
// the exit status. The first SIGINT or SIGTERM goes to the command (it aborts, or a container gets
// it under --sig-proxy); an interrupt that aborted the command removes the handler, so a second one
// meets the default action and ends the process.
const signals = new SignalRouter();
const onSignal = (signal: NodeJS.Signals) => {
  if (!signals.deliver(signal)) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

// No top-level await: the bundle is CommonJS, so that it can run from V8's code cache.
void runCli(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env }, signals).then((status) => {
  process.exitCode = status;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
});
