import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkManager } from '@berth/network';
import { loadBusyboxImage } from '@berth/tools/test-images';
import type { OutputChunk } from '../types/stream.js';
import { LocalEngine } from './local-engine.js';

// Containers over the copying snapshotter, what hosts without overlayfs get (a root that is
// itself an overlay, as on the machine tests' rig hosts): a container's root is then a bind
// mount from the same file system, which must be unmounted at the end of every run.

const tag = `c${process.pid.toString(36)}`;
let dir = '';
let engine: LocalEngine;
// Names of its own: the network manager makes the default bridge on first use, even for `none`.
const network = { defaultBridge: `bt${tag}0`, ruleTag: tag, bridgePrefix: `bt${tag}`, vethPrefix: `vt${tag}` };

const mountsUnder = async (prefix: string) =>
  (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(prefix));

async function output(chunks: AsyncIterable<OutputChunk>): Promise<string> {
  let text = '';
  for await (const c of chunks) text += c.data.toString();
  return text;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-lec-'));
  engine = new LocalEngine({ root: join(dir, 'root'), runRoot: join(dir, 'run'), snapshotDriver: 'copy', network });
  await loadBusyboxImage(engine);
});

afterAll(async () => {
  if (!engine) return;
  for (const c of await engine.listContainers({ all: true })) await engine.removeContainer(c.Id, { force: true }).catch(() => {});
  await engine.close();
  await new NetworkManager({ ...network, stateDir: join(dir, 'root', 'network') }).removeAll();
  const leaked = await mountsUnder(dir);
  for (const m of leaked.reverse()) await promisify(execFile)('umount', ['-l', m]).catch(() => {});
  await rm(dir, { recursive: true, force: true });
  expect(leaked).toEqual([]);
});

describe('LocalEngine with the copying snapshotter', () => {
  it('unmounts a container root at the end of each run: --rm removal, restart and rm work', async () => {
    expect((await engine.info()).Driver).toBe('vfs');
    const gone = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo once; exit 4'], HostConfig: { NetworkMode: 'none', AutoRemove: true } });
    const attached = await engine.attachContainer(gone.Id, { stream: true, stdout: true, stderr: true });
    const removed = await engine.waitContainer(gone.Id, { condition: 'removed' });
    await engine.startContainer(gone.Id);
    expect(await output(attached.output)).toBe('once\n');
    expect((await removed.result).StatusCode).toBe(4);
    await expect(engine.inspectContainer(gone.Id)).rejects.toMatchObject({ kind: 'NotFound' });

    const kept = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo run >> /runs; cat /runs'], HostConfig: { NetworkMode: 'none' } });
    for (const runs of ['run\n', 'run\nrun\n']) {
      const wait = await engine.waitContainer(kept.Id, { condition: 'next-exit' });
      await engine.startContainer(kept.Id);
      expect((await wait.result).StatusCode).toBe(0);
      expect(await output((await engine.containerLogs(kept.Id, { stdout: true, tail: 2 })).output)).toBe(runs);
      expect(await mountsUnder(join(dir, 'root', 'containers'))).toEqual([]);
    }
    await engine.removeContainer(kept.Id);
    expect(await mountsUnder(dir)).toEqual([]);
  });
});
