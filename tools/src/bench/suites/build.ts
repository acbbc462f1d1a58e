import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dockerdUnavailable, startDockerd, type DockerdRig } from '../../dockerd-rig.js';
import { startRegistry, type RegistryRig } from '../../registry-rig.js';
import { pushBusyboxImage } from '../../test-images.js';
import { have, measure, type BenchReport, type Subject } from '../measure.js';

// A small app built three ways from the same busybox base (served by a local registry):
// Berth's executor in a process of its own per build, bundled into one file with its native
// programs beside it (as the engine CLI ships and runs it daemonless), from the context
// directory and from a context tar (what `POST /build` hands it); the `engine build` CLI
// (daemonless: its in-process engine reads the context directory, no tar); `docker build` with the
// classic builder against a private dockerd, and `buildah bud` with its own root. Each is timed
// cold (every step built, the base image already pulled) and fully cached (nothing changed).
// The RUN steps run without a network (`--network none`; buildah's chroot isolation knows only
// the host's): the private dockerd has no bridge, and the app's steps need none.

const files = 300;
const toolsDir = fileURLToPath(new URL('../../../', import.meta.url));
const repoDir = fileURLToPath(new URL('../../../../', import.meta.url));
const engineBin = join(repoDir, 'apps/engine/bin/engine.js');

function dockerfile(base: string): string {
  return [`FROM ${base}`, 'RUN mkdir -p /opt/deps && echo "dependencies installed" > /opt/deps/done', 'COPY app/ /app/', 'WORKDIR /app', 'RUN find . -type f | wc -l > /app/file-count', 'CMD ["cat", "/app/file-count"]', ''].join('\n');
}

async function makeContext(dir: string, base: string): Promise<void> {
  await writeFile(join(dir, 'Dockerfile'), dockerfile(base));
  for (let i = 0; i < files; i++) {
    const sub = join(dir, 'app', `module-${i % 12}`, i % 2 ? 'lib' : 'src');
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `file-${i}.js`), `// file ${i}\n${'export const value = 1;\n'.repeat(20 + (i % 40))}`);
  }
}

// The child that builds with Berth. Bundled with its native programs in `<dir>/dist/native/`,
// where the packages look for them (`../dist/native/` from the module), as in the engine app.
const berthBuild = `
import { buildImage, packContext } from '@berth/builder';
import { ImageStore } from '@berth/store';
import { createSnapshotter } from '@berth/snapshot';
import { Runtime } from '@berth/runtime';
const [root, work, context, noCache, viaTar] = process.argv.slice(2);
const images = new ImageStore({ root });
const snapshotter = await createSnapshotter({ root: root + '/snapshots' });
const runtime = new Runtime({ root: work + '/runtime' });
let client;
const registry = async () => (client ??= new (await import('@berth/registry')).RegistryClient({}));
// As POST /build gets it: the context packed into a tar and unpacked on the other side.
const source = viaTar === '1' ? { tar: (await packContext({ dir: context })).stream } : { dir: context };
const build = buildImage({ context: source, images, snapshotter, runtime, registry, workDir: work + '/builder', tags: ['bench-app:latest'], noCache: noCache === '1', network: 'none' });
for await (const m of build) void m;
await build.result;
await client?.close();
`;

async function bundleBerth(dir: string): Promise<string> {
  const { build } = await import('esbuild');
  const out = join(dir, 'dist', 'build.mjs');
  await mkdir(join(dir, 'dist', 'native'), { recursive: true });
  await build({
    stdin: { contents: berthBuild, resolveDir: toolsDir, loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    outfile: out,
    logLevel: 'warning',
    // CommonJS dependencies (tar's) call require for Node's builtins.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  });
  // The engine CLI's launcher turns Node's compile cache on before it loads the bundle; so does this one.
  const launcher = join(dir, 'launch.mjs');
  await writeFile(launcher, "import module from 'node:module';\nmodule.enableCompileCache?.();\nawait import('./dist/build.mjs');\n");
  for (const [pkg, name] of [
    ['runtime', 'berth-runtime'],
    ['snapshot', 'berth-fsops'],
  ] as const) {
    await copyFile(join(repoDir, 'packages', pkg, 'dist', 'native', name), join(dir, 'dist', 'native', name));
    await chmod(join(dir, 'dist', 'native', name), 0o755);
  }
  return launcher;
}

function exec(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: options.env ?? process.env, cwd: options.cwd });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`))));
  });
}

/** Benchmark entry: see the comment at the top. */
export async function run({ runs }: { runs: number }): Promise<BenchReport[]> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-build-'));
  let registry: RegistryRig | undefined;
  let dockerd: DockerdRig | undefined;
  const berthRoot = join(dir, 'berth-root');
  const berthWork = join(dir, 'berth-run');
  const buildah = ['--root', join(dir, 'buildah-root'), '--runroot', join(dir, 'buildah-run'), '--storage-driver', 'overlay'];
  const load = loadavg().map((n) => n.toFixed(2)).join(' ');
  try {
    registry = await startRegistry();
    await pushBusyboxImage(registry, 'busybox:latest');
    const base = `${registry.host}/busybox:latest`;
    const context = join(dir, 'context');
    await mkdir(context);
    await makeContext(context, base);

    const bundle = await bundleBerth(join(dir, 'berth-bundle'));
    // Caches of their own: Node's compile cache, and the engine CLI's code cache (written by its first run).
    const berthEnv = { ...process.env, NODE_COMPILE_CACHE: join(dir, 'compile-cache'), XDG_CACHE_HOME: join(dir, 'cache') };
    const engineArgs = ['--root', join(dir, 'engine-root'), '--runroot', join(dir, 'engine-run')];
    const engineSkip = (await stat(join(repoDir, 'apps/engine/dist/cli.cjs')).catch(() => undefined)) ? undefined : 'the engine CLI is not built (npx nx run @berth/engine-cli:build)';
    const engineBuild = (noCache: boolean) => () => exec(process.execPath, [engineBin, ...engineArgs, 'build', '-q', '--network', 'none', ...(noCache ? ['--no-cache'] : []), '-t', 'bench-app:latest', context], { env: berthEnv });
    const berth = (noCache: boolean, viaTar = false) => () => exec(process.execPath, [bundle, berthRoot, berthWork, context, noCache ? '1' : '0', viaTar ? '1' : '0'], { env: berthEnv });
    const dockerSkip = await dockerdUnavailable();
    const dockerEnv = () => ({ ...process.env, DOCKER_BUILDKIT: '0', DOCKER_HOST: dockerd!.host });
    const dockerBuild = (noCache: boolean) => () => exec('docker', ['build', '-q', '--network', 'none', ...(noCache ? ['--no-cache'] : []), '-t', 'bench-app:latest', context], { env: dockerEnv() });
    const buildahSkip = (await have('buildah')) ? undefined : 'buildah not installed';
    const buildahBuild = (noCache: boolean) => () =>
      exec('buildah', [...buildah, 'bud', '--isolation', 'chroot', '--layers', ...(noCache ? ['--no-cache'] : []), '--tls-verify=false', '-q', '-t', 'bench-app:latest', context]);

    const setup = {
      berth: async () => berth(false)(),
      docker: async () => {
        dockerd ??= await startDockerd();
        await exec('docker', ['pull', '-q', base], { env: dockerEnv() });
      },
      buildah: async () => exec('buildah', [...buildah, 'pull', '--tls-verify=false', '-q', base]),
    };
    const subjects = (noCache: boolean): Subject[] => [
      { name: 'berth', setup: setup.berth, run: berth(noCache) },
      { name: 'berth, context as a tar (as POST /build)', run: berth(noCache, true) },
      { name: 'engine build (the CLI, daemonless)', ...(engineSkip ? { skip: engineSkip } : {}), setup: engineBuild(false), run: engineBuild(noCache) },
      { name: 'docker build (classic, private dockerd 20.10)', ...(dockerSkip ? { skip: dockerSkip } : {}), setup: setup.docker, run: dockerBuild(noCache) },
      { name: 'buildah bud (overlay, chroot isolation)', ...(buildahSkip ? { skip: buildahSkip } : {}), setup: setup.buildah, run: buildahBuild(noCache) },
    ];
    const cold = await measure(subjects(true), runs, 1);
    const cached = await measure(subjects(false), runs, 1);
    const notes = [`${files} context files; load average ${load} at start, ${loadavg().map((n) => n.toFixed(2)).join(' ')} at the end, on ${(await readFile('/proc/cpuinfo', 'utf8')).match(/^processor/gm)?.length ?? '?'} CPUs (a shared, loaded machine: compare ratios, not absolute times).`];
    return [
      { title: `build: cold (every step built, base image present; ${files}-file COPY, 2 RUN)`, baseline: 'docker build (classic, private dockerd 20.10)', rows: cold, notes },
      { title: 'build: fully cached (nothing changed)', baseline: 'docker build (classic, private dockerd 20.10)', rows: cached, notes },
    ];
  } finally {
    await dockerd?.stop();
    await registry?.stop();
    if (await have('buildah')) await exec('buildah', [...buildah, 'rmi', '-a', '-f']).catch(() => {});
    await exec('sh', ['-c', `grep -o ' ${dir}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l`]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}
