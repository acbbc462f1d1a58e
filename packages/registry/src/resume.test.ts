import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Digest } from '@berth/oci';
import { LocalContentStore } from '@berth/store';
import { startRegistry, type RegistryRig } from '@berth/tools/registry-rig';
import { buildBusyboxImage, pushImage, type TestImage } from '@berth/tools/test-images';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RegistryClient, type ProgressEvent } from './index.js';

// The child that gets killed runs the built packages, as the engine would.
const registryDist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const storeDist = fileURLToPath(new URL('../../store/dist/index.js', import.meta.url));
const distMissing = [registryDist, storeDist].find((p) => !existsSync(p));

interface Proxy {
  readonly host: string;
  /** Request heads seen, lower-cased. */
  readonly requests: string[];
  /** Lets stalled responses flow again. */
  resume(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of the registry that can stall responses after some bytes (so that a
 * pull is caught mid-layer), drop the connection once, or hide Range headers from the
 * registry (as a registry without range support would ignore them).
 */
async function startProxy(upstream: string, behaviour: { stallAfter?: number; dropAfter?: number; stripRange?: boolean }): Promise<Proxy> {
  const [upHost, upPort] = upstream.split(':') as [string, string];
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const paused: Socket[] = [];
  let stalled = false;
  let dropped = false;
  let received = 0;
  const server: Server = createServer((client) => {
    const up = connect(Number(upPort), upHost);
    sockets.add(client).add(up);
    const close = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', close).on('close', close);
    up.on('error', close).on('close', close);
    client.on('data', (chunk: Buffer) => {
      let text = chunk.toString('latin1');
      if (/^(GET|HEAD|PUT|POST|PATCH) /.test(text)) requests.push(text.split('\r\n\r\n')[0]!.toLowerCase());
      if (behaviour.stripRange) text = text.replace(/\r\nrange:/gi, '\r\nx-hidden-range:');
      up.write(Buffer.from(text, 'latin1'));
    });
    up.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (behaviour.dropAfter !== undefined && !dropped && received > behaviour.dropAfter) {
        dropped = true;
        close();
        return;
      }
      client.write(chunk);
      if (behaviour.stallAfter !== undefined && !stalled && received > behaviour.stallAfter) stalled = true;
      if (stalled) {
        up.pause();
        paused.push(up);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const address = server.address() as { port: number };
  return {
    host: `127.0.0.1:${address.port}`,
    requests,
    resume() {
      stalled = false;
      for (const s of paused.splice(0)) s.resume();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

let image: TestImage;
let registry: RegistryRig;
let dir: string;
const proxies: Proxy[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  image = await buildBusyboxImage({ layers: 2, layerBytes: 40 << 20, seed: 'resume' });
});
afterAll(async () => {
  await image?.remove();
});
beforeEach(async () => {
  registry = await startRegistry();
  await pushImage(registry, image, 'big:1');
  dir = await mkdtemp(join(tmpdir(), 'berth-resume-test-'));
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const p of proxies.splice(0)) await p.close();
  await registry.stop();
  await rm(dir, { recursive: true, force: true });
});

async function proxy(behaviour: Parameters<typeof startProxy>[1]): Promise<Proxy> {
  const p = await startProxy(registry.host, behaviour);
  proxies.push(p);
  return p;
}

const big = () => image.manifests[0]!.layers[1]!;
const partialPath = (root: string, digest: Digest) => join(root, 'ingest', `sha256-${digest.slice(7)}.data`);

/** Pulls in a child process until its partial file of the big layer holds at least `bytes`, then kills it with SIGKILL. */
async function pullAndKill(root: string, host: string, bytes: number): Promise<number> {
  const script = `
    import { RegistryClient } from ${JSON.stringify(registryDist)};
    import { LocalContentStore } from ${JSON.stringify(storeDist)};
    const client = new RegistryClient({});
    const content = new LocalContentStore({ root: ${JSON.stringify(root)} });
    for await (const e of client.pull(${JSON.stringify(`${host}/big:1`)}, { content })) process.stdout.write(JSON.stringify(e) + '\\n');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const exited = new Promise((r) => child.once('exit', r));
  const lines = createInterface({ input: child.stdout });
  const id = big().digest.slice(7, 19);
  for await (const line of lines) {
    const event = JSON.parse(line) as ProgressEvent;
    if (event.id === id && event.status === 'Downloading' && (event.current ?? 0) >= bytes) break;
  }
  // Wait until the bytes are in the file, not only through the pipe.
  const partial = partialPath(root, big().digest);
  for (let i = 0; i < 400; i++) {
    if (((await stat(partial).catch(() => undefined))?.size ?? 0) >= bytes) break;
    await sleep(10);
  }
  child.kill('SIGKILL');
  await exited;
  return (await stat(partial)).size;
}

describe.skipIf(distMissing)(`interrupted pulls${distMissing ? ` (skipped: ${distMissing} is not built; run nx build)` : ''}`, () => {
  it('resumes a pull killed with SIGKILL mid-layer with a Range request, and the store verifies', async () => {
    const root = join(dir, 'store');
    const stalling = await proxy({ stallAfter: 8 << 20 });
    const kept = await pullAndKill(root, stalling.host, 4 << 20);
    expect(kept).toBeGreaterThanOrEqual(4 << 20);
    expect(kept).toBeLessThan(big().size);
    const content = new LocalContentStore({ root });
    expect(await content.stat(big().digest)).toBeUndefined();
    const m = image.manifests[0]!;
    expect(await content.stat(m.descriptor.digest)).toBeUndefined();

    const recording = await proxy({});
    const client = new RegistryClient({});
    try {
      const result = await client.pull(`${recording.host}/big:1`, { content }).result;
      expect(result.manifestDescriptor.digest).toBe(m.descriptor.digest);
    } finally {
      await client.close();
    }
    const blobRequests = recording.requests.filter((r) => r.startsWith(`get /v2/big/blobs/${big().digest}`));
    expect(blobRequests).toHaveLength(1);
    expect(blobRequests[0]).toContain(`range: bytes=${kept}-`);
    for (const d of [m.descriptor, m.config, ...m.layers]) expect(await sha256File(content.blobPath(d.digest))).toBe(d.digest);
    expect((await readdir(join(root, 'ingest'))).filter((n) => n.endsWith('.data'))).toEqual([]);
  });

  it('completes the kept blob from a full response when the registry ignores Range', async () => {
    const root = join(dir, 'store');
    const stalling = await proxy({ stallAfter: 8 << 20 });
    await pullAndKill(root, stalling.host, 4 << 20);
    const noRanges = await proxy({ stripRange: true });
    const content = new LocalContentStore({ root });
    const client = new RegistryClient({});
    try {
      await client.pull(`${noRanges.host}/big:1`, { content }).result;
    } finally {
      await client.close();
    }
    expect(noRanges.requests.some((r) => r.startsWith(`get /v2/big/blobs/${big().digest}`) && r.includes('range: bytes='))).toBe(true);
    expect(await sha256File(content.blobPath(big().digest))).toBe(big().digest);
  });

  it('resumes by itself when the connection drops mid-layer', async () => {
    const dropping = await proxy({ dropAfter: 6 << 20 });
    const content = new LocalContentStore({ root: join(dir, 'store') });
    const client = new RegistryClient({ retryDelayMs: 10 });
    const events: ProgressEvent[] = [];
    try {
      for await (const e of client.pull(`${dropping.host}/big:1`, { content })) events.push(e);
    } finally {
      await client.close();
    }
    expect(events.some((e) => e.status.startsWith('Retrying in'))).toBe(true);
    expect(dropping.requests.some((r) => /range: bytes=[1-9]\d*-/.test(r))).toBe(true);
    for (const l of image.manifests[0]!.layers) expect(await sha256File(content.blobPath(l.digest))).toBe(l.digest);
  });
});
