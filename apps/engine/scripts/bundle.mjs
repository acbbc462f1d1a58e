// Bundles the CLI into one file, dist/engine.mjs, that runs with nothing but a Node.js binary
// beside it (the machine provisioner ships exactly that file). Workspace packages are read from
// source through the @berth/source condition; modules reached only by dynamic import stay lazy.
import { readFile } from 'node:fs/promises';
import { build } from 'esbuild';

const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: [new URL('../src/bin/engine.ts', import.meta.url).pathname],
  outfile: new URL('../dist/engine.mjs', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  conditions: ['@berth/source'],
  define: { BERTH_VERSION: JSON.stringify(pkg.version) },
  // CommonJS dependencies call require() for Node's builtins; give the ESM bundle one.
  banner: { js: "import { createRequire as __berthRequire } from 'node:module'; const require = __berthRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
