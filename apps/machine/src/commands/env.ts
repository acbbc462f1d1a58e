import type { Argv } from 'yargs';
import { ErrorKind } from '@berth/errors';
import { HostFiles, MachineError } from '@berth/machine';
import type { App } from '../app.js';
import { detectShell, parseShell, renderEnv, type EnvVar } from '../format/shell-env.js';

const variables = ['DOCKER_TLS_VERIFY', 'DOCKER_HOST', 'DOCKER_CERT_PATH', 'DOCKER_MACHINE_NAME'] as const;

/**
 * The engine URL and certificate directory of a host, after checking that its certificate
 * still names its address: after an IP change this fails and says how to fix it.
 */
export async function connection(app: App, name: string): Promise<{ url: string; certPath: string; address: string }> {
  const check = await app.manager.checkCertificates(name, { signal: app.io.signal });
  if (!check.valid) {
    throw new MachineError(
      `the certificate of ${name} is for ${check.certified.join(', ')}, but the host is now at ${check.address}: ` +
        `its IP changed. Run \`${app.io.argv0} regenerate-certs ${name}\` to make a certificate for the new address`,
      { code: 'ERR_CERT_IP_CHANGED', kind: ErrorKind.FailedPrecondition },
    );
  }
  const host = await app.manager.load(name);
  return { url: await host.driver.url({ signal: app.io.signal }), certPath: host.dir, address: check.address };
}

/** `machine env [NAME]`: the shell commands that point engine and docker at a host. */
export function envCommand(app: () => App) {
  return {
    command: 'env [name]',
    describe: 'Print the environment that points engine and docker at a host',
    builder: (y: Argv) =>
      y
        .positional('name', { type: 'string' })
        .option('shell', { type: 'string', describe: 'bash, zsh, sh, fish, powershell, cmd, tcsh or emacs (default: detected)' })
        .option('unset', { alias: 'u', type: 'boolean', describe: 'print the commands that unset the variables' })
        .option('no-proxy', { type: 'boolean', describe: "add the host's IP to NO_PROXY" }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      if (argv.unset === true && argv.name) throw new MachineError('env --unset takes no host name', { code: 'ERR_USAGE', kind: ErrorKind.InvalidArgument, exitCode: 2 });
      const shell = typeof argv.shell === 'string' ? parseShell(argv.shell) : detectShell(a.io.env, a.io.platform);
      const noProxy = argv['no-proxy'] === true;
      const typed = [a.io.argv0, ...a.io.args];
      if (argv.unset === true) {
        const vars: EnvVar[] = variables.map((name) => ({ name, value: undefined }));
        if (noProxy) vars.push({ name: a.io.env.no_proxy !== undefined && a.io.env.NO_PROXY === undefined ? 'no_proxy' : 'NO_PROXY', value: undefined });
        a.io.stdout.write(renderEnv(shell, vars, typed));
        return;
      }
      const name = await a.targetName(argv.name as string | undefined);
      const { url, certPath, address } = await connection(a, name);
      const vars: EnvVar[] = [
        { name: 'DOCKER_TLS_VERIFY', value: '1' },
        { name: 'DOCKER_HOST', value: url },
        { name: 'DOCKER_CERT_PATH', value: certPath },
        { name: 'DOCKER_MACHINE_NAME', value: name },
      ];
      if (a.io.platform === 'win32') vars.push({ name: 'COMPOSE_CONVERT_WINDOWS_PATHS', value: 'true' });
      if (noProxy) {
        const key = a.io.env.no_proxy !== undefined && a.io.env.NO_PROXY === undefined ? 'no_proxy' : 'NO_PROXY';
        const current = (a.io.env[key] ?? '').split(',').filter(Boolean);
        vars.push({ name: key, value: [...current.filter((h) => h !== address), address].join(',') });
      }
      a.io.stdout.write(renderEnv(shell, vars, typed));
    },
  };
}

/** `machine config [NAME]`: the docker CLI flags that reach a host. */
export function configCommand(app: () => App) {
  return {
    command: 'config [name]',
    describe: 'Print the docker CLI flags that reach a host',
    builder: (y: Argv) => y.positional('name', { type: 'string' }),
    handler: async (argv: Record<string, unknown>) => {
      const a = app();
      const name = await a.targetName(argv.name as string | undefined);
      const { url } = await connection(a, name);
      const file = (f: string) => a.store.hostFile(name, f as (typeof HostFiles)[keyof typeof HostFiles]);
      a.out(
        [
          '--tlsverify',
          `--tlscacert="${file(HostFiles.caCert)}"`,
          `--tlscert="${file(HostFiles.clientCert)}"`,
          `--tlskey="${file(HostFiles.clientKey)}"`,
          `-H=${url}`,
        ].join('\n'),
      );
    },
  };
}
