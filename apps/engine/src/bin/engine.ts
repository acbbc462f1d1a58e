import { SignalRouter } from '../cli/signal-router.js';
import { runCli } from '../main.js';

// The only place that sets the exit status. The first SIGINT or SIGTERM goes to the command (it
// aborts, or a container gets it under --sig-proxy); an interrupt that aborted the command removes
// the handler, so a second one meets the default action and ends the process.
const signals = new SignalRouter();
const onSignal = (signal: NodeJS.Signals) => {
  if (!signals.deliver(signal)) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

process.exitCode = await runCli(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env }, signals);
process.off('SIGINT', onSignal);
process.off('SIGTERM', onSignal);
