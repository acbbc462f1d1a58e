import { fileURLToPath } from 'node:url';
import { parseGlobalFlags } from '../cli/global-flags.js';
import { managementCommands } from '../cli/management-commands.js';
import { defaultCodeCacheDir, runCachedBundle } from './code-cache.js';

// dist/engine.cjs: starts the CLI bundle dist/cli.cjs with the code cache of the command being run.

/** The command a command line runs (`run`, `image-ls`), which names its code cache. */
function commandKey(argv: readonly string[]): string | undefined {
  try {
    const { rest } = parseGlobalFlags(argv);
    const [noun, verb] = rest;
    if (!noun) return 'help';
    return managementCommands[noun] !== undefined && verb ? `${noun}-${verb}` : noun;
  } catch {
    return undefined;
  }
}

runCachedBundle({
  bundle: fileURLToPath(new URL('./cli.cjs', import.meta.url)),
  key: commandKey(process.argv.slice(2)),
  cacheDir: defaultCodeCacheDir(process.env),
});
