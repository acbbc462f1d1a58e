import type { Engine } from '@berth/engine';
import type { Cli } from '../cli/cli.js';

/** Sends SIGINT/SIGTERM the CLI receives to the container (docker's --sig-proxy) until released. */
export function proxySignals(cli: Cli, engine: Engine, id: string): () => void {
  return cli.signals.intercept((signal) => {
    void engine.killContainer(id, { signalName: signal }).catch(() => undefined);
  });
}
