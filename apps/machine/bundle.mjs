// Bundles the machine CLI into one file, dist/machine.mjs. Native and heavy optional parts stay
// outside: node-pty, ssh2's optional native helpers, and the cloud SDKs (the drivers load them
// with import() only when used).
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/bin/machine.js'],
  outfile: 'dist/machine.mjs',
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'esm',
  external: ['node-pty', 'cpu-features', '*.node', '@aws-sdk/*', '@google-cloud/*', '@azure/*'],
  // CommonJS dependencies (ssh2, yargs' helpers) use require() and __dirname; give the ES module those.
  banner: {
    js: [
      "import { createRequire as __berthRequire } from 'node:module';",
      "import { fileURLToPath as __berthPath } from 'node:url';",
      'const require = __berthRequire(import.meta.url);',
      'const __filename = __berthPath(import.meta.url);',
      "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
    ].join(' '),
  },
  logLevel: 'warning',
});
