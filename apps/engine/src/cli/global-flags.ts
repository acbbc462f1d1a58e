import { UsageError } from './cli-errors.js';

/** Global flags, before the command name (`engine -H tcp://h:2376 --tlsverify ps`). */
export interface GlobalFlags {
  host?: string[];
  tls?: boolean;
  tlsverify?: boolean;
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
  debug?: boolean;
  logLevel?: string;
  config?: string;
  configFile?: string;
  root?: string;
  runroot?: string;
  insecureRegistry?: string[];
  runtime?: string;
}

interface FlagDef {
  readonly key: keyof GlobalFlags;
  readonly value: boolean;
  readonly list?: true;
  readonly help: string;
}

/** The global flags: docker's client flags plus Berth's engine settings. */
export const globalFlagDefs: Readonly<Record<string, FlagDef>> = {
  '-H': { key: 'host', value: true, list: true, help: 'Engine to connect to (unix:///path or tcp://host:port); serve: where to listen' },
  '--host': { key: 'host', value: true, list: true, help: '' },
  '--tls': { key: 'tls', value: false, help: 'Use TLS; implied by --tlsverify' },
  '--tlsverify': { key: 'tlsverify', value: false, help: 'Use TLS and verify the remote' },
  '--tlscacert': { key: 'tlscacert', value: true, help: 'Trust certs signed only by this CA (default ~/.docker/ca.pem)' },
  '--tlscert': { key: 'tlscert', value: true, help: 'Path to TLS certificate file (default ~/.docker/cert.pem)' },
  '--tlskey': { key: 'tlskey', value: true, help: 'Path to TLS key file (default ~/.docker/key.pem)' },
  '-D': { key: 'debug', value: false, help: 'Enable debug output' },
  '--debug': { key: 'debug', value: false, help: '' },
  '-l': { key: 'logLevel', value: true, help: 'Set the logging level (debug, info, warn, error)' },
  '--log-level': { key: 'logLevel', value: true, help: '' },
  '--config': { key: 'config', value: true, help: 'Location of client config files (default ~/.docker)' },
  '--config-file': { key: 'configFile', value: true, help: 'Engine configuration file (default /etc/berth/engine.json)' },
  '--root': { key: 'root', value: true, help: 'Root of persistent state (default /var/lib/berth)' },
  '--runroot': { key: 'runroot', value: true, help: 'Root of runtime state (default /run/berth)' },
  '--insecure-registry': { key: 'insecureRegistry', value: true, list: true, help: 'Registry reached over plain HTTP (repeatable)' },
  '--runtime': { key: 'runtime', value: true, help: 'OCI runtime: berth-runtime (default), runc, crun or a path' },
};

/** Splits the global flags off the front of the command line; the rest starts at the command. */
export function parseGlobalFlags(argv: readonly string[]): { flags: GlobalFlags; rest: string[] } {
  const flags: GlobalFlags = {};
  const record = flags as Record<string, unknown>;
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-' || arg === '--help' || arg === '-h' || arg === '-v' || arg === '--version') break;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const def = globalFlagDefs[name];
    if (!def) throw new UsageError(`unknown flag: ${name}`, '');
    let value: string | boolean = true;
    if (def.value) {
      if (eq > 0) value = arg.slice(eq + 1);
      else if (i + 1 < argv.length) value = argv[++i]!;
      else throw new UsageError(`flag needs an argument: ${name}`, '');
    } else if (eq > 0) {
      value = !['0', 'false'].includes(arg.slice(eq + 1));
    }
    if (def.list) record[def.key] = [...((record[def.key] as string[] | undefined) ?? []), value as string];
    else record[def.key] = value;
  }
  return { flags, rest: argv.slice(i) };
}
