// Bundles the CLI into one CommonJS file, dist/cli.cjs (and dist/run.cjs, the same with only `run`
// and `create`), started by dist/engine.cjs with V8's code cache of the command being run
// (src/bin/code-cache.ts), and runnable with nothing but a Node.js binary beside it (the machine
// provisioner ships these files with their companions): the network helper
// dist/network-helper.mjs, the daemonless supervisor dist/supervisor.mjs and the native programs
// in dist/native/. Workspace packages are read from source through the
// @berth/source condition; modules reached only by a dynamic import stay lazy inside the bundle,
// so a command loads only what it uses.
import { copyFile, mkdir, readFile, rename, stat } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { builtinModules } from 'node:module';
import { isAscii } from 'node:buffer';
import { build } from 'esbuild';

const here = (path) => new URL(path, import.meta.url).pathname;
const pkg = JSON.parse(await readFile(here('../package.json'), 'utf8'));
// What `engine version` reports as the commit and build time (empty outside a git checkout).
const commit = await new Promise((resolve) => execFile('git', ['rev-parse', '--short=7', 'HEAD'], { cwd: here('.') }, (err, out) => resolve(err ? '' : out.trim())));
const buildTime = new Date().toISOString();

// Node's builtin modules, imported as ES modules, are all loaded when an ES module bundle starts
// (esbuild hoists them to its top), and http/https even load Node's own undici there. Required as
// CommonJS they load only when the code that uses them first runs. The CommonJS bundles need no
// stand-ins: esbuild puts their require() calls where each module is initialised, and without
// stand-ins nothing copies a builtin's exports (a copy reads them all, which loads what Node
// defers: util's lazy exports start worker_threads).
const builtin = new RegExp(`^(node:)?(${builtinModules.map((m) => m.replace(/[/]/g, '\\/')).join('|')})$`);
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: builtin }, (args) =>
      // The stand-in's own require() is of the real module, left to Node.
      args.namespace === 'lazy-builtin' ? { path: args.path, external: true } : { path: args.path.replace(/^node:/, ''), namespace: 'lazy-builtin' },
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({ contents: `module.exports = require('node:${args.path}');`, loader: 'js' }));
  },
};

// crypto (2 ms), child_process (1 ms, and net and streams with it), zlib and fs/promises (about
// a millisecond each, fs/promises with the readline it brings), dgram, stream/promises and
// timers/promises are not used by a container's run, or not before it needs them (the runtime's
// commands are started by berth-addon.node): the workspace's imports of them get functions that
// load the module on first call. zlib's are listed (an import of another name fails the build
// here until it is added); the others' are all their functions but constructors (a class, or a
// capitalised name, is called with `new`: importing one fails the build). A stand-in keeps the
// function's util.promisify form (execFile's resolves to stdout and stderr).
const functionsOf = (module) =>
  Object.keys(module).filter((name) => typeof module[name] === 'function' && !/^[A-Z]/.test(name) && !/^class\b/.test(Function.prototype.toString.call(module[name])));
const lazyModules = ['zlib', 'fs/promises', 'crypto', 'child_process', 'dgram', 'stream/promises', 'timers/promises'];
const loadedBuiltins = Object.fromEntries(await Promise.all(lazyModules.map(async (module) => [module, await import(`node:${module}`)])));
const lazyFunctions = Object.fromEntries(
  lazyModules.map((module) => [
    module,
    module === 'zlib' ? ['createGunzip', 'createGzip', 'createZstdCompress', 'createZstdDecompress', 'gunzipSync', 'gzipSync', 'zstdCompressSync'] : functionsOf(loadedBuiltins[module]),
  ]),
);
const promisifyCustom = Symbol.for('nodejs.util.promisify.custom');
const customPromisified = new Set(
  Object.entries(lazyFunctions).flatMap(([module, names]) => names.filter((f) => typeof loadedBuiltins[module][f]?.[promisifyCustom] === 'function').map((f) => `${module}.${f}`)),
);
const lazyBuiltinFunctions = {
  name: 'lazy-builtin-functions',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(node:)?(${lazyModules.map((m) => m.replace('/', '\\/')).join('|')})$`) }, (args) =>
      args.importer.startsWith(packagesDir) || args.importer.startsWith(here('../src/')) ? { path: args.path.replace(/^node:/, ''), namespace: 'lazy-functions' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-functions' }, (args) => ({
      contents: [
        `let loaded;`,
        `const load = () => (loaded ??= require('node:${args.path}'));`,
        `const custom = Symbol.for('nodejs.util.promisify.custom');`,
        ...lazyFunctions[args.path].flatMap((f) => [
          `export function ${f}(...args) { return load().${f}(...args); }`,
          ...(customPromisified.has(`${args.path}.${f}`) ? [`${f}[custom] = (...args) => load().${f}[custom](...args);`] : []),
        ]),
      ].join('\n'),
      loader: 'js',
    }));
  },
};

// The workspace packages' modules have no import-time side effects (no registries, no globals;
// the conventions forbid them), so an index that re-exports a whole package may be pruned to
// what a command imports: `engine ps` then never initialises the API server or the registry client.
const packagesDir = here('../../../packages/');
const workspaceWithoutSideEffects = {
  name: 'workspace-side-effect-free',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'resolving' || !(args.path.startsWith('@berth/') || (args.importer.startsWith(packagesDir) && args.path.startsWith('.')))) return undefined;
      const result = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'resolving' });
      if (result.errors.length || !result.path.startsWith(packagesDir)) return result.errors.length ? { errors: result.errors } : { path: result.path, external: result.external, namespace: result.namespace };
      return { path: result.path, sideEffects: false };
    });
  },
};

// undici is as large as the rest of the CLI together and only registry work (pull, push, login)
// uses it. It is built into dist/undici.cjs beside the bundle and required the first time a
// registry is contacted, so that every other command neither reads it nor holds it in memory.
const registryDir = here('../../../packages/registry/src/');
const undiciBeside = {
  name: 'undici-beside',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, () => ({ path: 'undici', namespace: 'undici-beside' }));
    // Left to the bundle's own require(), which resolves it beside the bundle file.
    b.onResolve({ filter: /^\.\/undici\.cjs$/, namespace: 'undici-beside' }, () => ({ path: './undici.cjs', external: true }));
    b.onLoad({ filter: /.*/, namespace: 'undici-beside' }, async () => {
      const entry = await b.resolve('undici', { kind: 'import-statement', resolveDir: registryDir });
      if (entry.errors.length) return { errors: entry.errors };
      await build({ entryPoints: [entry.path], bundle: true, platform: 'node', format: 'cjs', target: 'node22', minify: true, outfile: here('../dist/undici.cjs'), legalComments: 'none', logLevel: 'warning' });
      return { contents: "module.exports = require('./undici.cjs');", loader: 'js' };
    });
  },
};

// A package finds its native programs in its own dist/native (`new URL('../dist/native/x',
// import.meta.url)`); inside the bundle, import.meta.url is the bundle's, and the programs sit in
// native/ beside it. Rewriting that one path keeps the bundle working wherever it is unpacked.
const nativeBesideBundle = {
  name: 'native-beside-bundle',
  setup(b) {
    b.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]src[\\/].*\.ts$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes("new URL('../dist/native/")) return undefined;
      return { contents: text.replaceAll("new URL('../dist/native/", "new URL('./native/"), loader: 'ts' };
    });
  },
};

const common = {
  bundle: true,
  plugins: [lazyBuiltins, workspaceWithoutSideEffects, undiciBeside, nativeBesideBundle],
  alias: { 'string-width': here('./string-width.mjs') },
  platform: 'node',
  format: 'esm',
  target: 'node22',
  conditions: ['@berth/source'],
  // CommonJS dependencies call require() for Node's builtins; give the ESM bundle one.
  banner: { js: "import { createRequire as __berthRequire } from 'node:module'; const require = __berthRequire(import.meta.url);" },
  // Smaller text to read and hash at every start; names kept, since error classes report them.
  minify: true,
  keepNames: true,
  legalComments: 'none',
  logLevel: 'warning',
};

// Scripts, not modules: only a script's code cache can be made after it ran, and a CommonJS entry
// spares Node starting its ES module loader.
const script = {
  ...common,
  plugins: [lazyBuiltinFunctions, ...common.plugins.filter((plugin) => plugin !== lazyBuiltins)],
  format: 'cjs',
  banner: { js: "const __berthUrl = require('node:url').pathToFileURL(__filename).href;" },
};
const scriptDefines = { 'import.meta.url': '__berthUrl' };
const cliDefines = {
  ...scriptDefines,
  BERTH_VERSION: JSON.stringify(pkg.version),
  BERTH_BUNDLED: 'true',
  BERTH_GIT_COMMIT: JSON.stringify(commit),
  BERTH_BUILD_TIME: JSON.stringify(buildTime),
};
await build({ ...script, entryPoints: [here('../src/bin/engine.ts')], outfile: here('../dist/cli.cjs'), define: cliDefines });

// dist/run.cjs: the same CLI with only `run` and `create`, which dist/engine.cjs starts for those
// two (their --help goes to dist/cli.cjs). The other commands' modules (and what only they use),
// the image builder and yargs (help) are left out: less than half as much to read and deserialize
// at every daemonless run, about 4 ms. Should one of them ever be imported there, it fails saying so.
const onlyRunCommands = {
  name: 'only-run-commands',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/commands\// }, (args) =>
      args.importer.endsWith('/cli/command-table.ts') && !args.path.endsWith('/container/run.js') ? { path: args.path, namespace: 'left-out' } : undefined,
    );
    b.onResolve({ filter: /^(@berth\/builder|yargs)$/ }, (args) => ({ path: args.path, namespace: 'left-out' }));
    b.onLoad({ filter: /.*/, namespace: 'left-out' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`engine: ${args.path} is not in dist/run.cjs, which has run and create only (without --help)`)});`,
      loader: 'js',
    }));
  },
};
await build({ ...script, plugins: [onlyRunCommands, ...script.plugins], entryPoints: [here('../src/bin/engine.ts')], outfile: here('../dist/run.cjs'), define: cliDefines });
await build({ ...script, entryPoints: [here('../src/bin/engine-loader.ts')], outfile: here('../dist/engine.cjs'), define: scriptDefines });
// dist/engine.cjs reads an ASCII bundle by a plain copy. esbuild escapes every string but leaves
// regular expression literals as written.
for (const bundle of ['cli.cjs', 'run.cjs']) {
  if (!isAscii(await readFile(here(`../dist/${bundle}`)))) {
    process.stderr.write(`bundle: dist/${bundle} is not ASCII, so it starts slower: write non-ASCII characters in regular expressions as \\u escapes\n`);
  }
}
await build({ ...common, entryPoints: [here('../../../packages/network/src/helper-main.ts')], outfile: here('../dist/network-helper.mjs') });
await build({ ...common, entryPoints: [here('../../../packages/engine/src/local/supervisor-main.ts')], outfile: here('../dist/supervisor.mjs') });

// The native programs the engine runs, built by their packages (runtime, snapshot).
await mkdir(here('../dist/native'), { recursive: true });
for (const [from, name] of [
  ['../../../packages/runtime/dist/native/berth-runtime', 'berth-runtime'],
  ['../../../packages/runtime/dist/native/berth-addon.node', 'berth-addon.node'],
  ['../../../packages/snapshot/dist/native/berth-fsops', 'berth-fsops'],
]) {
  const source = here(from);
  // Copied beside and renamed over: the old binary may be running (container monitors), and a
  // running executable cannot be written in place (ETXTBSY).
  if (await stat(source).catch(() => undefined)) {
    await copyFile(source, here(`../dist/native/.${name}.new`));
    await rename(here(`../dist/native/.${name}.new`), here(`../dist/native/${name}`));
  }
  else process.stderr.write(`bundle: ${source} is not built; the bundle will look for ${name} elsewhere\n`);
}
