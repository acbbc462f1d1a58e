import { SignalRouter } from '../cli/signal-router.js';
import { runCli } from '../main.js';

// The CLI bundles' entry (dist/cli.cjs and dist/run.cjs, started by dist/engine.cjs). The only
// place that sets the exit status. The first SIGINT or SIGTERM goes to the command (it aborts, or
// a container gets it under --sig-proxy); an interrupt that aborted the command removes the
// handler, so a second one meets the default action and ends the process.
const signals = new SignalRouter();
const onSignal = (signal: NodeJS.Signals) => {
  if (!signals.deliver(signal)) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

// process.stdin is made on first use (a ReadStream, tty or socket: 2-3 ms), so the streams are
// looked up only by the commands that use them.
const io = {
  get stdin() {
    return process.stdin;
  },
  get stdout() {
    return process.stdout;
  },
  get stderr() {
    return process.stderr;
  },
  env: process.env,
};
// No top-level await: the bundle is CommonJS, so that it can run from V8's code cache.
void runCli(process.argv.slice(2), io, signals).then((status) => {
  process.exitCode = status;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // When the event loop has run dry (every write and child's start done) and the other exit
  // listeners (the code cache's) have run, end without Node's teardown of its environment and
  // heap: a millisecond of every command. process.exit inside 'exit' goes straight to the end.
  process.once('exit', (code) => process.exit(code));
});
