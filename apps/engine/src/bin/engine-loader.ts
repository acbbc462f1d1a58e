import { fileURLToPath } from 'node:url';
import { parseGlobalFlags } from '../cli/global-flags.js';
import { managementCommands } from '../cli/management-commands.js';
import { defaultCodeCacheDir, runCachedBundle } from './code-cache.js';

// dist/engine.cjs: starts the CLI bundle with the code cache of the command being run: dist/run.cjs
// (the CLI with only these and without help, less than half the size) for `run` and `create`,
// dist/cli.cjs for the others and for any command line that asks for --help.
const runBundleCommands = new Set(['run', 'create']);

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

const argv = process.argv.slice(2);
const key = commandKey(argv);
runCachedBundle({
  bundle: fileURLToPath(new URL(key && runBundleCommands.has(key) && !argv.includes('--help') ? './run.cjs' : './cli.cjs', import.meta.url)),
  key,
  cacheDir: defaultCodeCacheDir(process.env),
});
