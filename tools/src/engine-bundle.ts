import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { arch as hostArch, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Builds the self-contained Berth engine bundle that `machine` installs on hosts: a tar.gz
 * holding one top directory `berth-engine/` with
 *
 *   bin/engine                 a POSIX sh launcher: runs lib/engine.cjs with lib/node (or the
 *                              host's node when the bundled one cannot run, e.g. on musl)
 *   lib/node                   Node.js 22 for the target architecture
 *   lib/engine.cjs, cli.cjs,   the engine app's entry and its esbuild bundles (apps/engine/dist)
 *   run.cjs
 *   lib/*.mjs, lib/native/*    its companions as the engine app's build lays them out beside it
 *                              (the network helper; the runtime shim berth-runtime, its spawn addon berth-addon.node, berth-fsops)
 *   manifest.json              name, version, arch, Node version (the first entry)
 *
 * Node for the machine's own architecture comes from the repo's .node/; for another one from
 * the npm package node-linux-<arch>@22 (the npm registry is the one source this project uses).
 *
 * `node tools/dist/engine-bundle.js [--arch x64|arm64] [--out DIR]` builds one from the shell.
 */

/** Options of `buildEngineBundle`. */
export interface EngineBundleOptions {
  /** Node's architecture name of the target hosts (default: this machine's). */
  readonly arch?: string;
  /** Where the tar.gz goes (default `<repo>/apps/machine/dist/bundles`). */
  readonly outDir?: string;
  /** The repository root (default: found from this file). */
  readonly repoRoot?: string;
}

/** A built bundle. */
export interface BuiltEngineBundle {
  readonly path: string;
  readonly arch: string;
  readonly version: string;
  readonly sha256: string;
}

/** The repository root: the nearest parent holding nx.json. */
export async function findRepoRoot(from = dirname(fileURLToPath(import.meta.url))): Promise<string> {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (await exists(join(dir, 'nx.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`engine-bundle: no nx.json above ${from}`);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** The file name of the bundle for `arch`, as the machine CLI looks it up. */
export function engineBundleName(arch: string): string {
  return `berth-engine-linux-${arch}.tar.gz`;
}

/** The inputs of a bundle that are missing in this checkout (empty when one can be built). */
export async function missingBundleInputs(repoRoot?: string): Promise<string[]> {
  const root = repoRoot ?? (await findRepoRoot());
  const inputs = [
    [join(root, 'apps/engine/dist/engine.cjs'), 'apps/engine/dist/engine.cjs (the engine app bundle: npx nx run @berth/engine-cli:build)'],
    [join(root, 'apps/engine/dist/native/berth-runtime'), 'apps/engine/dist/native/berth-runtime (the runtime shim, copied there by the engine build)'],
  ] as const;
  const missing: string[] = [];
  for (const [path, what] of inputs) if (!(await exists(path))) missing.push(what);
  return missing;
}

const launcher = `#!/bin/sh
# Runs the Berth engine with the Node.js shipped beside it, or the host's node where that one
# cannot run (a musl host without gcompat).
self=$(readlink -f "$0" 2>/dev/null || echo "$0")
dir=$(dirname "$(dirname "$self")")
node="$dir/lib/node"
if ! "$node" -e '' >/dev/null 2>&1; then
	node=$(command -v node) || { echo "engine: $dir/lib/node cannot run on this host and there is no node on PATH" >&2; exit 127; }
fi
exec "$node" "$dir/lib/engine.cjs" "$@"
`;

async function nodeBinary(root: string, arch: string, cache: string): Promise<string> {
  if (arch === hostArch()) {
    const local = join(root, '.node/bin/node');
    return (await exists(local)) ? local : process.execPath;
  }
  // Another architecture: the node-linux-<arch> npm package ships the official binary.
  const dir = join(cache, `node-linux-${arch}`);
  const binary = join(dir, 'package/bin/node');
  if (await exists(binary)) return binary;
  await mkdir(dir, { recursive: true });
  const { stdout } = await run('npm', ['pack', `node-linux-${arch}@22`, '--silent', '--pack-destination', dir], { maxBuffer: 1 << 20 });
  const tarball = join(dir, stdout.trim().split('\n').pop()!);
  await run('tar', ['-xzf', tarball, '-C', dir]);
  await rm(tarball, { force: true });
  if (!(await exists(binary))) throw new Error(`engine-bundle: node-linux-${arch}@22 has no package/bin/node`);
  return binary;
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Builds the bundle for one architecture and returns where it is. */
export async function buildEngineBundle(options: EngineBundleOptions = {}): Promise<BuiltEngineBundle> {
  const root = options.repoRoot ?? (await findRepoRoot());
  const arch = options.arch ?? hostArch();
  const outDir = options.outDir ?? join(root, 'apps/machine/dist/bundles');
  const missing = await missingBundleInputs(root);
  if (missing.length) throw new Error(`engine-bundle: cannot build, missing ${missing.join(' and ')}`);
  const version = (JSON.parse(await readFile(join(root, 'apps/engine/package.json'), 'utf8')) as { version: string }).version;
  await mkdir(outDir, { recursive: true });
  const stage = await mkdtemp(join(tmpdir(), 'berth-bundle-'));
  try {
    const top = join(stage, 'berth-engine');
    await mkdir(join(top, 'bin'), { recursive: true });
    await mkdir(join(top, 'lib/native'), { recursive: true });
    await writeFile(join(top, 'bin/engine'), launcher, { mode: 0o755 });
    const node = await nodeBinary(root, arch, join(outDir, '.cache'));
    await copyFile(node, join(top, 'lib/node'));
    await chmod(join(top, 'lib/node'), 0o755);
    // The engine app's dist/ as its build lays it out: engine.cjs, cli.cjs, run.cjs, its helper scripts, native/.
    const engineDist = join(root, 'apps/engine/dist');
    for (const file of await readdir(engineDist)) {
      if (/\.[cm]js$/.test(file)) await copyFile(join(engineDist, file), join(top, 'lib', file));
    }
    for (const file of await readdir(join(engineDist, 'native'))) {
      await copyFile(join(engineDist, 'native', file), join(top, 'lib/native', file));
      await chmod(join(top, 'lib/native', file), 0o755);
    }
    const nodeVersion = arch === hostArch() ? (await run(node, ['--version'])).stdout.trim() : 'v22';
    await writeFile(join(top, 'manifest.json'), JSON.stringify({ name: 'berth-engine', version, arch, node: nodeVersion }, null, 2) + '\n');
    const path = join(outDir, engineBundleName(arch));
    const temp = `${path}.tmp-${process.pid}`;
    // manifest.json first, so that a reader learns version and arch from the first tar entry.
    const entries = ['berth-engine/manifest.json', 'berth-engine/bin', 'berth-engine/lib'];
    await run('tar', ['--owner=0', '--group=0', '--numeric-owner', '-czf', temp, '-C', stage, ...entries]);
    await run('mv', ['-f', temp, path]);
    return { path, arch, version, sha256: await sha256(path) };
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const value = (flag: string) => {
    const at = args.indexOf(flag);
    return at >= 0 ? args[at + 1] : undefined;
  };
  const arch = value('--arch');
  const out = value('--out');
  buildEngineBundle({ ...(arch ? { arch } : {}), ...(out ? { outDir: resolve(out) } : {}) }).then(
    (bundle) => process.stdout.write(`${bundle.path}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
