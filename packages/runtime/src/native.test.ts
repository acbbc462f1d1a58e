import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const testsDir = fileURLToPath(new URL('../dist/native/tests/', import.meta.url));
const unitTests = (await readdir(testsDir).catch(() => [] as string[])).filter((t) => t !== 'recvtty');

// The C unit tests of native/tests (built with the package): exit 0 passes, 77 skips.
describe('native unit tests', () => {
  it('are built', () => {
    expect(unitTests.sort()).toEqual(['cgroup', 'json', 'spec']);
  });

  it.each(unitTests)('%s', async (name, ctx) => {
    try {
      await run(`${testsDir}${name}`);
    } catch (err) {
      const e = err as { code?: number; stderr?: string };
      if (e.code === 77) ctx.skip(e.stderr?.trim() || 'skipped');
      throw new Error(`${name} failed (${e.code}): ${e.stderr}`);
    }
  });
});
