import { describeError } from '@berth/errors';
import type { Cli } from '../cli/cli.js';
import { failedSome } from '../cli/cli-errors.js';

/**
 * docker's way with several arguments (`rm a b c`): each is tried, each success prints its name,
 * each failure prints its error, and the command fails at the end if any did.
 */
export async function forEachArgument(cli: Cli, names: readonly string[], action: (name: string) => Promise<string | void>): Promise<void> {
  let failed = 0;
  for (const name of names) {
    try {
      const shown = await action(name);
      if (shown !== undefined) cli.out(`${shown}\n`);
    } catch (err) {
      failed++;
      cli.err(`engine: ${describeError(err)}\n`);
    }
  }
  if (failed) throw failedSome(failed);
}

/** Asks `question` on the terminal unless `force`; true when the user answered yes. */
export async function confirm(cli: Cli, question: string, force: boolean): Promise<boolean> {
  if (force) return true;
  cli.out(`${question} [y/N] `);
  const stdin = cli.io.stdin;
  const answer = await new Promise<string>((resolve) => {
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString('utf8');
      if (text.includes('\n')) done();
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.off('end', done);
      stdin.pause();
      resolve(text);
    };
    stdin.on('data', onData);
    stdin.once('end', done);
  });
  return /^\s*y(es)?\s*$/i.test(answer.split('\n')[0] ?? '');
}
