import { UsageError } from '../../cli/cli-errors.js';
import type { Cli } from '../../cli/cli.js';
import type { CommandSpec } from '../../cli/command-spec.js';
import { DockerConfig, registryKeyOfServer } from '../../cli/docker-config.js';

/** Reads one line from the terminal, without echo for passwords. */
async function prompt(cli: Cli, question: string, hidden: boolean): Promise<string> {
  const stdin = cli.io.stdin;
  if (!stdin.isTTY) throw new UsageError('cannot perform an interactive login from a non TTY device', 'login');
  cli.out(question);
  if (hidden) stdin.setRawMode(true);
  const line = await new Promise<string>((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(text);
        if (ch === '\u0003') return fail();
        if (ch === '\u007f') text = text.slice(0, -1);
        else text += ch;
      }
    };
    const cleanup = () => {
      stdin.off('data', onData);
      stdin.pause();
      if (hidden) stdin.setRawMode(false);
    };
    const done = (value: string) => {
      cleanup();
      if (hidden) cli.out('\n');
      resolve(value);
    };
    const fail = () => {
      cleanup();
      reject(new UsageError('login interrupted', 'login'));
    };
    stdin.on('data', onData);
  });
  return line.trim();
}

async function readStdin(cli: Cli): Promise<string> {
  const parts: Buffer[] = [];
  for await (const p of cli.io.stdin) parts.push(p as Buffer);
  return Buffer.concat(parts).toString('utf8').replace(/\r?\n$/, '');
}

/** `engine login`. */
export const loginCommand: CommandSpec = {
  usage: '[OPTIONS] [SERVER]',
  describe: 'Authenticate to a registry (Docker Hub when no server is given)',
  args: [0, 1],
  options: {
    password: { type: 'string', alias: 'p', requiresArg: true, describe: 'Password or Personal Access Token (PAT)' },
    'password-stdin': { type: 'boolean', describe: 'Take the Password or Personal Access Token (PAT) from stdin' },
    username: { type: 'string', alias: 'u', requiresArg: true, describe: 'Username' },
  },
  async run(args, cli) {
    const key = registryKeyOfServer(args._args[0]);
    let username = args['username'] as string | undefined;
    let password = args['password'] as string | undefined;
    if (args['password-stdin'] === true) {
      if (password !== undefined) throw new UsageError('--password and --password-stdin are mutually exclusive', 'login');
      if (!username) throw new UsageError('Must provide --username with --password-stdin', 'login');
      password = await readStdin(cli);
    } else if (password !== undefined) {
      cli.err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    }
    username ??= await prompt(cli, 'Username: ', false);
    password ??= await prompt(cli, 'Password: ', true);
    if (!username) throw new UsageError('Username is required', 'login');
    if (!password) throw new UsageError('Password is required', 'login');
    const response = await (await cli.engine()).login({ username, password, serveraddress: key }, { signal: cli.signal });
    const config = new DockerConfig(cli.settings.dockerConfigDir);
    await config.store(key, { username, password, ...(response.IdentityToken ? { identityToken: response.IdentityToken } : {}) });
    cli.out(`${response.Status || 'Login Succeeded'}\n`);
  },
};

/** `engine logout`. */
export const logoutCommand: CommandSpec = {
  usage: '[SERVER]',
  describe: 'Log out from a registry (Docker Hub when no server is given)',
  args: [0, 1],
  async run(args, cli) {
    const key = registryKeyOfServer(args._args[0]);
    const removed = await new DockerConfig(cli.settings.dockerConfigDir).remove(key);
    cli.out(removed ? `Removing login credentials for ${key}\n` : `Not logged in to ${key}\n`);
  },
};
