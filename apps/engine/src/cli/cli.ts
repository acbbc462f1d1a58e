import type { Engine } from '@berth/engine';
import { createTextLogger, noopLogger, type Logger } from '@berth/log';
import type { Settings } from './settings.js';
import type { SignalRouter } from './signal-router.js';

/** The process's streams and environment, as the commands see them. */
export interface CliIo {
  readonly stdin: NodeJS.ReadStream;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly env: NodeJS.ProcessEnv;
}

/**
 * What a command works with: the settings, the streams, an AbortSignal fired by SIGINT/SIGTERM,
 * and the Engine, made on first use (local in-process, or remote when a host is set).
 */
export class Cli {
  readonly io: CliIo;
  readonly settings: Settings;
  readonly signal: AbortSignal;
  readonly signals: SignalRouter;
  readonly logger: Logger;
  /** Berth's version, and the commit and time of this build (empty from source). */
  readonly version: string;
  readonly build: { readonly commit: string; readonly time: string };
  #engine: Promise<Engine> | undefined;

  constructor(init: { io: CliIo; settings: Settings; signals: SignalRouter; version: string; build?: { readonly commit: string; readonly time: string } }) {
    this.io = init.io;
    this.settings = init.settings;
    this.signals = init.signals;
    this.signal = init.signals.signal;
    this.version = init.version;
    this.build = init.build ?? { commit: '', time: '' };
    this.logger =
      init.settings.logLevel === 'debug' || init.settings.logLevel === 'info'
        ? createTextLogger({ write: (line) => init.io.stderr.write(line), level: init.settings.logLevel })
        : noopLogger;
  }

  get remote(): boolean {
    return this.settings.remoteHost !== undefined;
  }

  /** The engine every command goes through. */
  engine(): Promise<Engine> {
    this.#engine ??= this.#makeEngine();
    return this.#engine;
  }

  async #makeEngine(): Promise<Engine> {
    const host = this.settings.remoteHost;
    if (host !== undefined) {
      const { createRemoteEngine } = await import('./remote-engine.js');
      return createRemoteEngine(this, host);
    }
    const { createLocalEngine } = await import('./local-engine.js');
    return createLocalEngine(this);
  }

  out(text: string): void {
    this.io.stdout.write(text);
  }

  err(text: string): void {
    this.io.stderr.write(text);
  }

  /** Releases the engine's resources; containers keep running. */
  async close(): Promise<void> {
    if (this.#engine) await (await this.#engine.catch(() => undefined))?.close();
  }
}
