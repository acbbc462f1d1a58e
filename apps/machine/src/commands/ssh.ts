import { ErrorKind } from '@berth/errors';
import { MachineError, MachineState } from '@berth/machine';
import type { App } from '../app.js';

/**
 * `machine ssh NAME [COMMAND...]`: a login shell with a pty when stdin is a terminal, or the
 * command (with a pty when on a terminal, like `ssh -t`), exiting with the remote status.
 * Arguments after NAME are not parsed, as in docker-machine, and are joined with spaces for
 * the remote shell, as ssh does.
 */
export async function runSsh(app: App, args: readonly string[]): Promise<number> {
  const [given, ...command] = args;
  const name = await app.targetName(given);
  const host = await app.manager.load(name);
  const state = await host.driver.state({ signal: app.io.signal });
  if (state !== MachineState.Running) {
    throw new MachineError(`host ${name} is ${state}, not Running: start it first`, { code: 'ERR_HOST_NOT_RUNNING', kind: ErrorKind.FailedPrecondition });
  }
  const session = await app.manager.session(host, { signal: app.io.signal, timeoutMs: 30_000 });
  const { stdin, stdout, stderr } = app.io;
  const tty = stdin.isTTY === true && stdout.isTTY === true;
  const pty = { term: app.io.env.TERM ?? 'xterm-256color', rows: stdout.rows ?? 24, cols: stdout.columns ?? 80 };
  try {
    if (command.length === 0 && !tty) {
      // No terminal: run what stdin says, as `ssh host < script` does.
      const result = await session.exec('exec "$SHELL" -s', { stdin, onStdout: (c) => stdout.write(c), onStderr: (c) => stderr.write(c), signal: app.io.signal });
      return result.code;
    }
    if (!tty) {
      const result = await session.exec(command.join(' '), {
        stdin,
        onStdout: (c) => stdout.write(c),
        onStderr: (c) => stderr.write(c),
        signal: app.io.signal,
      });
      return result.code;
    }
    const { channel, done } = await session.shell(pty, {
      signal: app.io.signal,
      ...(command.length ? { command: command.join(' ') } : {}),
    });
    stdin.setRawMode?.(true);
    stdin.resume();
    const onResize = () => channel.setWindow(stdout.rows ?? 24, stdout.columns ?? 80, 0, 0);
    stdout.on('resize', onResize);
    stdin.pipe(channel);
    channel.pipe(stdout, { end: false });
    channel.stderr.pipe(stderr, { end: false });
    try {
      return await done;
    } finally {
      stdout.off('resize', onResize);
      stdin.unpipe(channel);
      stdin.setRawMode?.(false);
      stdin.pause();
    }
  } finally {
    session.close();
  }
}
