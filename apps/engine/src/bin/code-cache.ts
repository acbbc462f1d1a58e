import { isAscii } from 'node:buffer';
import { lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Script } from 'node:vm';

/**
 * Node's own compile cache (module.enableCompileCache) stores the code V8 compiled while loading a
 * module, which for a bundle is little more than its top level: every function a command calls is
 * compiled again at each start. V8 can also serialise a script after it ran, with every function
 * compiled by then. The engine's bundle is therefore run as a script whose cache is written when a
 * command first exits and read at the next start of that command: a daemonless `engine run` or
 * a cached `engine build` ends 40-50 ms sooner. One cache per command, since `run` and `build`
 * compile different code.
 */

/**
 * Where the caches live: `$XDG_CACHE_HOME/berth/code` or `~/.cache/berth/code`; none when that
 * directory, or the nearest of its parents that exists, is not this user's (`sudo engine` keeping
 * the caller's HOME must not leave root's files in it).
 */
export function defaultCodeCacheDir(env: NodeJS.ProcessEnv): string | undefined {
  // Node's switch for its compile cache turns this one off as well.
  if (env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  const base = env.XDG_CACHE_HOME || (env.HOME ?? homedir());
  if (!base) return undefined;
  let existing = base;
  let st = statSync(existing, { throwIfNoEntry: false });
  while (!st && dirname(existing) !== existing) st = statSync((existing = dirname(existing)), { throwIfNoEntry: false });
  if (st?.uid !== process.getuid?.()) return undefined;
  return env.XDG_CACHE_HOME ? join(base, 'berth', 'code') : join(base, '.cache', 'berth', 'code');
}

// FNV-1a: names a cache file after the bundle it belongs to without loading node:crypto.
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash.toString(16).padStart(8, '0');
}

/**
 * A directory only this user can write, created if missing: cached code runs as this user, so a
 * cache that another user could have written is never read.
 */
function privateDir(path: string): boolean {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  const st = lstatSync(path);
  return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
}

/** Options of `runCachedBundle`. */
export interface CachedBundleOptions {
  /** The CommonJS bundle to run. */
  readonly bundle: string;
  /** What the cache is kept under (the command's name); none: the bundle runs uncached. */
  readonly key?: string | undefined;
  /** Where caches live; none: the bundle runs uncached. */
  readonly cacheDir?: string | undefined;
}

/**
 * Runs a CommonJS bundle as the main module would run, with V8's code cache of an earlier run of
 * the same command when there is a valid one, and writes that cache at exit when there was none.
 * A cache that cannot be read or written only costs speed.
 */
export function runCachedBundle({ bundle, key, cacheDir }: CachedBundleOptions): void {
  // An ASCII bundle (esbuild escapes all but regular expression literals) becomes a string by a
  // copy; decoding it as UTF-8 takes several milliseconds longer.
  const bytes = readFileSync(bundle);
  const source = bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8');
  let cacheFile: string | undefined;
  let cachedData: Buffer | undefined;
  if (key && cacheDir && /^[a-z][a-z0-9-]{0,39}$/.test(key)) {
    try {
      const st = statSync(bundle);
      // A rebuilt bundle or another Node gets caches of its own; V8 only checks the source's length.
      const bundleId = `${fnv1a(bundle)}-${fnv1a([st.size, st.mtimeMs, st.ino, process.version, process.arch].join('\0'))}`;
      const dir = join(cacheDir, bundleId);
      if (privateDir(cacheDir) && privateDir(dir)) {
        // V8 takes a cache only under the flags it was made with: one file per set of Node's
        // options (node:v8's cachedDataVersionTag would say it exactly, but loading it costs 3 ms),
        // so that runs with other NODE_OPTIONS do not replace each other's.
        const flags = fnv1a(`${process.execArgv.join('\0')}\0${process.env.NODE_OPTIONS ?? ''}`);
        cacheFile = join(dir, `${key}.${flags}.bin`);
        cachedData = readFileSync(cacheFile);
      }
    } catch {
      cachedData = undefined;
    }
  }
  const script = new Script(Module.wrap(source), { filename: bundle, ...(cachedData ? { cachedData } : {}) });
  if (cacheFile && (!cachedData || script.cachedDataRejected)) {
    const file = cacheFile;
    process.once('exit', () => saveCache(script, file));
  }
  const module = new Module(bundle);
  module.filename = bundle;
  const run = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: Module, filename: string, dirname: string) => void;
  run(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
}

function saveCache(script: Script, file: string): void {
  try {
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, script.createCachedData(), { mode: 0o600 });
    renameSync(temp, file);
    // Caches of earlier builds of the same bundle are of no further use.
    const bundleDir = basename(dirname(file));
    const cacheDir = dirname(dirname(file));
    const samePath = bundleDir.slice(0, bundleDir.indexOf('-') + 1);
    for (const name of readdirSync(cacheDir)) {
      if (name.startsWith(samePath) && name !== bundleDir) rmSync(join(cacheDir, name), { recursive: true, force: true });
    }
  } catch {
    // Best effort: the next start compiles as this one did.
  }
}
