import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nativeAddon, nativeAddonPath } from './native-addon.js';
import { spawnProgram } from './spawn-program.js';
import { realtimeOffsetNanos } from './wall-clock.js';

describe('spawnProgram (berth-addon.node)', () => {
  let dir: string;
  let out: number;
  const written = () => readFileSync(join(dir, 'out'), 'utf8');

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-spawn-'));
    out = openSync(join(dir, 'out'), 'w');
  });
  afterEach(() => {
    closeSync(out);
    rmSync(dir, { recursive: true, force: true });
  });

  it('is built with the package', () => {
    expect(typeof nativeAddon().spawn).toBe('function');
  });

  it('gives the child the descriptors asked for, /dev/null for the ignored ones, and our environment', async () => {
    process.env['BERTH_SPAWN_TEST'] = 'from-parent';
    try {
      const script = 'echo "$(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1) $(readlink /proc/$$/fd/2) $BERTH_SPAWN_TEST $0 $1" >&3';
      const child = spawnProgram('/bin/sh', ['-c', script, 'zero', 'one'], ['ignore', 'ignore', 'ignore', out]);
      expect(child.pid).toBeGreaterThan(0);
      expect(await child.exited).toEqual({ code: 0, signal: null });
    } finally {
      delete process.env['BERTH_SPAWN_TEST'];
    }
    expect(written()).toBe('/dev/null /dev/null /dev/null from-parent zero one\n');
  });

  it('finds a bare name in PATH and reports the exit status', async () => {
    expect(await spawnProgram('sh', ['-c', 'exit 7'], []).exited).toEqual({ code: 7, signal: null });
  });

  it('reports the signal that ended the program', async () => {
    expect(await spawnProgram('/bin/sh', ['-c', 'kill -KILL $$'], []).exited).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('starts the program with default signal handling and nothing blocked (Node ignores SIGPIPE)', async () => {
    await spawnProgram('/bin/sh', ['-c', 'grep -E "^Sig(Ign|Blk)" /proc/self/status >&3'], ['ignore', 'ignore', 'ignore', out]).exited;
    expect(written()).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
  });

  it('moves a descriptor of ours that another of the child`s would replace', () => {
    // A Node whose fd 1 is our file starts a child whose fd 3 is that fd 1 and whose fd 1 is
    // /dev/null: done in order, the child's fd 3 would be /dev/null too.
    const script = `const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(nativeAddonPath)});
      m.exports.spawn('/bin/sh', ['sh', '-c', 'echo through-3 >&3; echo through-1'], [-1, -1, -1, 1]).exited.then(([code]) => process.exit(code));`;
    execFileSync(process.execPath, ['-e', script], { stdio: ['ignore', out, 'inherit'] });
    expect(written()).toBe('through-3\n');
  });

  it('throws ENOENT, naming the program, when there is no such program', () => {
    expect(() => spawnProgram('/nonexistent/berth-program', [], [])).toThrow(expect.objectContaining({ code: 'ENOENT', path: '/nonexistent/berth-program' }));
    expect(() => spawnProgram('berth-no-such-program', [], [])).toThrow(/berth-no-such-program ENOENT/);
  });

  it('sends SIGTERM when the signal aborts', async () => {
    const ac = new AbortController();
    const child = spawnProgram('/bin/sleep', ['30'], [], ac.signal);
    ac.abort();
    expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM' });
  });
});

describe('realtimeOffsetNanos (berth-addon.node)', () => {
  it('puts the wall clock on process.hrtime to within a millisecond of Date.now, with nanoseconds', () => {
    const offset = realtimeOffsetNanos();
    const before = BigInt(Date.now()) * 1_000_000n;
    const now = process.hrtime.bigint() + offset;
    const after = BigInt(Date.now() + 1) * 1_000_000n;
    expect(now >= before && now < after).toBe(true);
    // Read twice, the offset moves only with the clock's adjustments: well under a millisecond.
    const again = realtimeOffsetNanos();
    expect(again - offset < 1_000_000n && offset - again < 1_000_000n).toBe(true);
  });
});

describe('berth-addon.node', () => {
  it('needs nothing newer than glibc 2.28, the oldest Node 22 runs on', () => {
    const versions = [...execFileSync('objdump', ['-T', nativeAddonPath], { encoding: 'utf8' }).matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
    expect(versions.length).toBeGreaterThan(0);
    for (const [major, minor] of versions) expect(major * 1000 + minor).toBeLessThanOrEqual(2 * 1000 + 28);
  });
});
