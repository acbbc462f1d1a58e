import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStore } from '@berth/store';
import { buildBusyboxImage } from '@berth/tools/test-images';
import { createTextLogger } from '@berth/log';
import { LocalEngine } from './local-engine.js';

let dir = '';
let engine: LocalEngine;

async function collect(output: AsyncIterable<{ stream: string; data: Buffer }>): Promise<{ stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  for await (const c of output) {
    if (c.stream === 'stdout') stdout += c.data.toString();
    else stderr += c.data.toString();
  }
  return { stdout, stderr };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-le-'));
  const image = await buildBusyboxImage();
  const store = new ImageStore({ root: join(dir, 'root') });
  await store.init();
  for (const m of image.manifests) {
    for (const d of [m.config, ...m.layers]) await store.content.put(await readFile(image.blobPath(d.digest)), d);
  }
  await store.content.put(image.targetBytes, image.target);
  await store.add({ target: image.target, names: ['busybox:latest'] });
  await image.remove();
  engine = new LocalEngine({ ...(process.env['BERTH_TEST_DEBUG'] ? { logger: createTextLogger({ write: (l) => process.stderr.write(l), level: 'debug' }) } : {}), root: join(dir, 'root'), runRoot: join(dir, 'run'), network: { defaultBridge: 'btle0', ruleTag: 'tle', defaultSubnet: '10.231.7.0/24', bridgePrefix: 'btle', vethPrefix: 'vtle' } });
});

afterAll(async () => {
  await engine?.close();
});

describe('LocalEngine containers', () => {
  it('runs a container to its exit and keeps its log', { timeout: 15000 }, async () => {
    const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo hello; echo err >&2; exit 3'], HostConfig: { NetworkMode: 'none' } }, { name: 'first' });
    const wait = await engine.waitContainer(Id, { condition: 'next-exit' });
    expect(await engine.startContainer(Id)).toBe(true);
    expect((await wait.result).StatusCode).toBe(3);
    const logs = await engine.containerLogs('first', { stdout: true, stderr: true });
    expect(await collect(logs.output)).toEqual({ stdout: 'hello\n', stderr: 'err\n' });
    const info = await engine.inspectContainer(Id);
    expect(info.State.Status).toBe('exited');
    expect(info.State.ExitCode).toBe(3);
    await engine.removeContainer(Id);
    await expect(engine.inspectContainer(Id)).rejects.toMatchObject({ message: `No such container: ${Id}` });
  });
});
