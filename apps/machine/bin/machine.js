#!/usr/bin/env node
// The `machine` command. Plain JavaScript that any Node.js can read: it checks the version,
// re-runs itself with the repository's own Node.js (.node/bin/node) when this one is too old,
// and otherwise says what to install. The program itself is dist/machine.mjs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// undici's floor: the bundle carries undici 8, which needs 22.19.
const required = '22.19';
const self = fileURLToPath(import.meta.url);
const atLeast = (version) => {
  const [major, minor] = version.split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 19);
};

function localNode() {
  for (let dir = dirname(self); ; dir = dirname(dir)) {
    const candidate = join(dir, '.node', 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
    if (existsSync(candidate) && candidate !== process.execPath) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

if (atLeast(process.versions.node)) {
  await import(new URL('../dist/machine.mjs', import.meta.url).href);
} else {
  const node = localNode();
  const check = node && spawnSync(node, ['-e', `process.exit((${atLeast})(process.versions.node) ? 0 : 1)`]);
  if (node && check && check.status === 0) {
    const result = spawnSync(node, [self, ...process.argv.slice(2)], { stdio: 'inherit' });
    process.exitCode = result.status === null ? 1 : result.status;
  } else {
    process.stderr.write(
      `machine: needs Node.js ${required} or later, and this is v${process.versions.node}.\n` +
        `Install Node.js ${required} (https://nodejs.org, or your package manager), or run \`npm start\` in the Berth repository, which fetches it into .node/.\n`,
    );
    process.exitCode = 1;
  }
}
