import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine } from '@berth/engine';
import { LocalEngine } from '@berth/engine/local';
import type { Logger } from '@berth/log';
import type { Cli } from './cli.js';
import { rootNetworkNames, type DaemonSettings, type Settings } from './settings.js';

/** Set by the bundler: the CLI runs from dist/cli.cjs (or dist/run.cjs), with its helpers beside it. */
declare const BERTH_BUNDLED: boolean | undefined;

/** What `engine serve` sets on the local engine beyond the global settings. */
export interface LocalEngineOverrides {
  readonly labels?: readonly string[];
  readonly logger?: Logger;
  readonly root?: string;
  readonly runroot?: string;
  readonly insecureRegistries?: readonly string[];
  readonly network?: Settings['network'];
  /** dockerd's daemon options given on serve's command line, over the configuration file's. */
  readonly daemon?: DaemonSettings;
  readonly runtime?: string;
}

/**
 * Where the bundle's companions are: the network helper `network-helper.mjs` and the daemonless
 * supervisor `supervisor.mjs` beside `cli.cjs` (the layout of apps/engine/dist and of the
 * machine provisioner's package; the native programs in native/ are found by the bundle itself).
 * From source, the packages find their own.
 */
function bundledAssets(): { helperCommand?: string[]; supervisorCommand?: string[] } {
  if (typeof BERTH_BUNDLED !== 'boolean' || !BERTH_BUNDLED) return {};
  const dir = dirname(fileURLToPath(import.meta.url));
  const helper = join(dir, 'network-helper.mjs');
  const supervisor = join(dir, 'supervisor.mjs');
  return {
    ...(existsSync(helper) ? { helperCommand: [process.execPath, helper] } : {}),
    ...(existsSync(supervisor) ? { supervisorCommand: [process.execPath, supervisor] } : {}),
  };
}

/** The in-process engine over the state root (daemonless mode, and what `serve` serves). */
export async function createLocalEngine(cli: Cli, overrides: LocalEngineOverrides = {}): Promise<Engine> {
  const settings = cli.settings;
  const assets = bundledAssets();
  const runtime = overrides.runtime ?? settings.runtime;
  const daemon: DaemonSettings = { ...settings.daemon, ...overrides.daemon };
  const root = overrides.root ?? settings.root;
  const net = rootNetworkNames(root, { ...settings.network, ...overrides.network });
  const network = {
    ...(assets.helperCommand ? { helperCommand: assets.helperCommand } : {}),
    ...(net.bridge ? { defaultBridge: net.bridge } : {}),
    ...(net.subnet ? { defaultSubnet: net.subnet } : {}),
    ...(net.mtu ? { defaultMtu: net.mtu } : {}),
    ...(net.tag ? { ruleTag: net.tag } : {}),
  };
  return new LocalEngine({
    root,
    runRoot: overrides.runroot ?? settings.runroot,
    logger: overrides.logger ?? cli.logger,
    dockerConfigPath: join(settings.dockerConfigDir, 'config.json'),
    insecureRegistries: [...new Set([...settings.insecureRegistries, ...(overrides.insecureRegistries ?? [])])],
    labels: [...settings.labels, ...(overrides.labels ?? [])],
    version: cli.version,
    ...(cli.build.commit ? { gitCommit: cli.build.commit } : {}),
    ...(cli.build.time ? { buildTime: cli.build.time } : {}),
    ...(runtime ? { runtime } : {}),
    ...(daemon.registryMirrors?.length ? { registryMirrors: daemon.registryMirrors } : {}),
    ...(daemon.dns ? { dns: daemon.dns } : {}),
    ...(daemon.storageDriver ? { snapshotDriver: daemon.storageDriver === 'vfs' ? 'copy' : 'overlay' } : {}),
    ...(daemon.logDriver || daemon.logOpts ? { logConfig: { Type: daemon.logDriver ?? 'json-file', Config: daemon.logOpts ?? {} } } : {}),
    ...(daemon.maxConcurrentDownloads ? { maxConcurrentDownloads: daemon.maxConcurrentDownloads } : {}),
    ...(daemon.maxConcurrentUploads ? { maxConcurrentUploads: daemon.maxConcurrentUploads } : {}),
    ...(daemon.initPath ? { initPath: daemon.initPath } : {}),
    ...(assets.supervisorCommand ? { supervisorCommand: assets.supervisorCommand } : {}),
    ...(Object.keys(network).length ? { network } : {}),
  });
}
