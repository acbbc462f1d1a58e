import { readFile } from 'node:fs/promises';
import type { ContainerSupervisor, Engine, EngineApiTls } from '@berth/engine';
import { listenEngineApi } from '@berth/engine/server';
import { createJsonLogger } from '@berth/log';
import { UsageError } from '../cli/cli-errors.js';
import type { CommandSpec } from '../cli/command-spec.js';
import { createLocalEngine } from '../cli/local-engine.js';

const defaultSocket = 'unix:///run/berth/berth.sock';

async function readPem(path: string | undefined, what: string, flag: string): Promise<Buffer> {
  if (!path) throw new UsageError(`${flag} is required with --tlsverify/--tls (${what})`, 'serve');
  try {
    return await readFile(path);
  } catch (err) {
    throw new UsageError(`cannot read the ${what} ${path}: ${(err as Error).message}`, 'serve');
  }
}

function isSupervisor(engine: Engine): engine is Engine & ContainerSupervisor {
  return typeof (engine as Partial<ContainerSupervisor>).supervise === 'function';
}

/** `engine serve`: the Docker Engine API in front of the local engine, until SIGINT/SIGTERM. */
export const serveCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'Serve the Docker Engine API on a unix socket or TCP (with mutual TLS)',
  args: [0, 0],
  options: {
    host: { type: 'string', array: true, alias: 'H', requiresArg: true, describe: `Where to listen: unix:///path or tcp://host:port (default ${defaultSocket})` },
    tls: { type: 'boolean', describe: 'Serve TLS on TCP hosts (without checking clients)' },
    tlsverify: { type: 'boolean', describe: 'Serve TLS and require client certificates signed by --tlscacert' },
    tlscacert: { type: 'string', requiresArg: true, describe: 'CA that client certificates must be signed by' },
    tlscert: { type: 'string', requiresArg: true, describe: "The server's TLS certificate" },
    tlskey: { type: 'string', requiresArg: true, describe: "The server's TLS key" },
    label: { type: 'string', array: true, requiresArg: true, describe: 'Set key=value labels on the engine (shown by info)' },
    root: { type: 'string', requiresArg: true, describe: 'Root of persistent state (default /var/lib/berth, or BERTH_ROOT)' },
    runroot: { type: 'string', requiresArg: true, describe: 'Root of runtime state (default /run/berth, or BERTH_RUNROOT)' },
    'insecure-registry': { type: 'string', array: true, requiresArg: true, describe: 'Registry reached over plain HTTP (repeatable)' },
    'log-level': { type: 'string', alias: 'l', requiresArg: true, choices: ['debug', 'info', 'warn', 'error'], describe: 'Logging level (default info)' },
    debug: { type: 'boolean', alias: 'D', describe: 'Log at debug level' },
    bridge: { type: 'string', alias: 'b', requiresArg: true, describe: 'Name of the default bridge (default berth0)' },
    bip: { type: 'string', requiresArg: true, describe: 'Subnet of the default bridge, CIDR (default: a free private range)' },
  },
  async run(args, cli) {
    const file = cli.settings.configFile;
    const hosts = (args['host'] as string[] | undefined) ?? (cli.settings.listenHosts.length ? cli.settings.listenHosts : [defaultSocket]);
    const verify = args['tlsverify'] === true || (args['tlsverify'] === undefined && file.tlsverify === true);
    const useTls = verify || args['tls'] === true || file.tls === true;
    let tls: EngineApiTls | undefined;
    if (useTls) {
      tls = {
        cert: await readPem((args['tlscert'] as string | undefined) ?? file.tlscert, 'certificate', '--tlscert'),
        key: await readPem((args['tlskey'] as string | undefined) ?? file.tlskey, 'key', '--tlskey'),
        verifyClients: verify,
        ...(verify ? { ca: await readPem((args['tlscacert'] as string | undefined) ?? file.tlscacert, 'CA certificate', '--tlscacert') } : {}),
      };
    }
    // dockerd's flags are also serve's own (`engine serve --root ... --log-level debug`), as the provisioner writes them.
    const level = args['debug'] === true ? 'debug' : typeof args['log-level'] === 'string' ? (args['log-level'] as 'debug' | 'info' | 'warn' | 'error') : cli.settings.logLevel === 'warn' ? 'info' : cli.settings.logLevel;
    const logger = createJsonLogger({ write: (line) => cli.io.stderr.write(line), level }).child({ component: 'serve' });
    if (!tls && hosts.some((h) => h.startsWith('tcp://'))) {
      logger.warn('the API is served on TCP without TLS: anyone who can reach the port controls the engine; use --tlsverify');
    }
    const labels = [...cli.settings.labels, ...((args['label'] as string[] | undefined) ?? [])];
    const engine = await createLocalEngine(cli, {
      labels,
      logger,
      ...(typeof args['root'] === 'string' ? { root: args['root'] } : {}),
      ...(typeof args['runroot'] === 'string' ? { runroot: args['runroot'] } : {}),
      ...(args['insecure-registry'] ? { insecureRegistries: args['insecure-registry'] as string[] } : {}),
      network: { ...(typeof args['bridge'] === 'string' ? { bridge: args['bridge'] } : {}), ...(typeof args['bip'] === 'string' ? { subnet: args['bip'] } : {}) },
    });
    const stopped = new AbortController();
    const onAbort = () => stopped.abort();
    cli.signal.addEventListener('abort', onAbort, { once: true });
    const server = await listenEngineApi({ engine, hosts, serverVersion: cli.version, logger, ...(tls ? { tls } : {}) });
    for (const address of server.addresses) logger.info('API listen', { address });
    const supervising = isSupervisor(engine) ? engine.supervise({ signal: stopped.signal }).catch((err: unknown) => logger.error('supervisor stopped', { error: err })) : undefined;
    await new Promise<void>((resolve) => (stopped.signal.aborted ? resolve() : stopped.signal.addEventListener('abort', () => resolve(), { once: true })));
    logger.info('shutting down');
    await server.close();
    await supervising;
    cli.signal.removeEventListener('abort', onAbort);
  },
};
