import { readFileSync } from 'node:fs';
import type { Engine } from '@berth/engine';
import { RemoteEngine } from '@berth/engine/remote';
import { UsageError } from './cli-errors.js';
import type { Cli } from './cli.js';

function optionalBuffer<K extends string>(key: K, value: Buffer | undefined): { [P in K]?: Buffer } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: Buffer };
}

/** The engine behind a server (-H, BERTH_HOST, DOCKER_HOST), with docker's TLS files. */
export function createRemoteEngine(cli: Cli, host: string): Engine {
  const tls = cli.settings.tls;
  const read = (path: string | undefined, what: string) => {
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UsageError(`cannot read the TLS ${what} ${path}: ${(err as Error).message}`, '');
    }
  };
  return new RemoteEngine({
    host,
    userAgent: `Berth-Client/${cli.version} (linux)`,
    logger: cli.logger,
    ...(tls
      ? {
          tls: {
            verify: tls.verify,
            ...optionalBuffer('ca', tls.verify ? read(tls.ca, 'CA certificate') : undefined),
            ...optionalBuffer('cert', read(tls.cert, 'certificate')),
            ...optionalBuffer('key', read(tls.key, 'key')),
          },
        }
      : {}),
  });
}
