import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeJsonAtomic } from '@berth/fsutil';
import type { Logger, LogFields } from '@berth/log';

// The shapes of @berth/machine's DriverContext, written out here: machine's own tests use the
// rigs in tools, so tools must not import machine.
type SavedConfig = Readonly<Record<string, unknown>>;

/** What a driver gets from the host store (structurally @berth/machine's DriverContext). */
export interface TestContext {
  readonly machineName: string;
  readonly machineDir: string;
  readonly storePath: string;
  readonly logger: Logger;
  saveConfig(config: SavedConfig, options?: { readonly signal?: AbortSignal }): Promise<void>;
}

/** A logged record, as a test sees it. */
export interface LoggedRecord {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields: LogFields;
}

/** A driver context for tests: a temporary store with one host directory, and what the driver saved. */
export interface TestDriverContext {
  readonly context: TestContext;
  /** Every config the driver saved, in order (the last one is what `config.json` holds). */
  readonly saved: SavedConfig[];
  /** Every record the driver logged. */
  readonly logged: LoggedRecord[];
  /** From the first config `predicate` accepts on, every save throws, as if the CLI had died there. */
  crashWhen(predicate: (config: SavedConfig) => boolean): void;
  cleanup(): Promise<void>;
}

function recordingLogger(records: LoggedRecord[], bound: LogFields = {}): Logger {
  const at = (level: LoggedRecord['level']) => (message: string, fields?: LogFields) => {
    records.push({ level, message, fields: { ...bound, ...fields } });
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (fields) => recordingLogger(records, { ...bound, ...fields }) };
}

/**
 * Makes a store in a temporary directory with `machines/<name>/` and a context whose
 * `saveConfig` writes `config.json` there (through @berth/fsutil, as the host store does) and
 * records each config.
 */
export async function makeTestDriverContext(machineName: string): Promise<TestDriverContext> {
  const storePath = await mkdtemp(join(tmpdir(), 'berth-driver-test-'));
  const machineDir = join(storePath, 'machines', machineName);
  await mkdir(machineDir, { recursive: true, mode: 0o700 });
  const saved: SavedConfig[] = [];
  const logged: LoggedRecord[] = [];
  let crash: ((config: SavedConfig) => boolean) | undefined;
  let crashed = false;
  const context: TestContext = {
    machineName,
    machineDir,
    storePath,
    logger: recordingLogger(logged),
    async saveConfig(config) {
      if (crashed || crash?.(config)) {
        crashed = true;
        throw new Error('simulated crash of the CLI');
      }
      const copy = JSON.parse(JSON.stringify(config)) as SavedConfig;
      saved.push(copy);
      await writeJsonAtomic(join(machineDir, 'config.json'), { Driver: copy }, { mode: 0o600 });
    },
  };
  return {
    context,
    saved,
    logged,
    crashWhen(predicate) {
      crash = predicate;
    },
    cleanup: () => rm(storePath, { recursive: true, force: true }),
  };
}
