#!/usr/bin/env node
'use strict';
// Launcher of the `engine` CLI: runs the bundle on Node.js 22.19 or later (the floor of undici,
// which the bundle carries). On an older Node it re-runs itself with a repo-local
// `.node/bin/node` (found walking up from here), or says what to install. Plain CommonJS (see
// package.json here), so that any Node reads it and none starts its ES module loader for it.
const { existsSync } = require('node:fs');
const module_ = require('node:module');
const { dirname, join } = require('node:path');

const [major, minor] = process.versions.node.split('.').map(Number);
const supported = major > 22 || (major === 22 && minor >= 19);

function findLocalNode() {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, '.node', 'bin', 'node');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

if (supported) {
  module_.enableCompileCache?.();
  require('../dist/engine.cjs');
} else {
  const local = findLocalNode();
  if (!local || local === process.execPath) {
    process.stderr.write(
      `engine: Node.js 22.19 or later is required, this is v${process.versions.node}.\n` +
        'Install Node.js 22.19 or later (https://nodejs.org), or put such a node binary at .node/bin/node in this project.\n',
    );
    process.exitCode = 1;
  } else {
    // The child gets terminal signals itself; the parent only waits for it.
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => {});
    // Required here only: a run on a supported Node does not load child_process at all.
    const { spawnSync } = require('node:child_process');
    const child = spawnSync(local, [__filename, ...process.argv.slice(2)], { stdio: 'inherit' });
    if (child.error) {
      process.stderr.write(`engine: cannot run ${local}: ${child.error.message}\n`);
      process.exitCode = 1;
    } else if (child.signal) {
      process.kill(process.pid, child.signal);
    } else {
      process.exitCode = child.status ?? 1;
    }
  }
}
