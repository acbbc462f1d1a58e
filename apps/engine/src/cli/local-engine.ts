import { EngineErrorCode, engineError, type Engine } from '@berth/engine';
import type { Logger } from '@berth/log';
import type { Cli } from './cli.js';

/** What `engine serve` sets on the local engine beyond the global settings. */
export interface LocalEngineOverrides {
  readonly labels?: readonly string[];
  readonly logger?: Logger;
}

/** The in-process engine over the state root (daemonless mode, and what `serve` serves). */
export async function createLocalEngine(_cli: Cli, _overrides: LocalEngineOverrides = {}): Promise<Engine> {
  throw engineError(
    'the local (daemonless) engine is not available in this build: connect to a server with -H or DOCKER_HOST',
    EngineErrorCode.NotImplemented,
    'NotImplemented',
  );
}
