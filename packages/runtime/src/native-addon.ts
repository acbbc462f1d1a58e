import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RuntimeError, RuntimeErrorCode, buildCommand } from './errors.js';

/**
 * berth-addon.node (native/node-addon.c), the package's Node-API addon, built beside
 * berth-runtime: posix_spawn for the runtime's commands (spawn-program.ts) and the wall clock in
 * nanoseconds (wall-clock.ts). Node-API is ABI-stable, so one build serves every Node.
 */
export interface NativeAddon {
  spawn(file: string, args: readonly string[], fds: readonly number[]): { pid: number; exited: Promise<[number | null, number | null]> };
  realtimeOffset(): bigint;
}

export const nativeAddonPath = fileURLToPath(new URL('../dist/native/berth-addon.node', import.meta.url));

let addon: NativeAddon | undefined;

/** The addon, loaded on first use; a RuntimeError (ERR_SHIM_MISSING) naming the build when it is not built. */
export function nativeAddon(): NativeAddon {
  if (!addon) {
    if (!existsSync(nativeAddonPath)) {
      throw new RuntimeError(`berth-addon.node is not built (${nativeAddonPath} is missing); build it with: ${buildCommand}`, RuntimeErrorCode.ShimMissing);
    }
    const module = { exports: {} as NativeAddon };
    process.dlopen(module, nativeAddonPath);
    addon = module.exports;
  }
  return addon;
}
