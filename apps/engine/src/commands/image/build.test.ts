import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { list } from 'tar';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../cli/captured-run.js';

const run = promisify(execFile);

interface RecordedBuild {
  readonly query: [string, string][];
  readonly contentType: string | undefined;
  readonly entries: string[];
}

let dir: string;
let socket: string;
let server: Server;
const recorded: RecordedBuild[] = [];
let dockerMissing: string | undefined;

async function tarEntries(body: Buffer): Promise<string[]> {
  const names: string[] = [];
  const parser = list({ onReadEntry: (e) => names.push(e.path.replace(/^\.\//, '')) });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', () => resolve());
    parser.on('error', reject);
    Readable.from([body]).pipe(parser as unknown as NodeJS.WritableStream);
  });
  return names.filter((n) => !n.endsWith('/') || n === '').sort();
}

// A server that records POST /build: both CLIs send to it, and the test compares the requests.
beforeAll(async () => {
  try {
    await run('docker', ['--version']);
  } catch {
    dockerMissing = 'the docker CLI is not installed';
  }
  dir = await mkdtemp(join(tmpdir(), 'berth-build-args-'));
  socket = join(dir, 'api.sock');
  server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', async () => {
      const headers = { 'Api-Version': '1.47', Ostype: 'linux', 'Content-Type': 'application/json' };
      if (req.url?.endsWith('/_ping')) return res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : 'OK');
      if (req.url?.includes('/build')) {
        const url = new URL(req.url, 'http://x');
        recorded.push({ query: [...url.searchParams.entries()].sort(), contentType: req.headers['content-type'], entries: await tarEntries(Buffer.concat(parts)) });
        return res.writeHead(200, headers).end(`${JSON.stringify({ stream: 'Step 1/1 : FROM scratch\n' })}\n${JSON.stringify({ aux: { ID: `sha256:${'b'.repeat(64)}` } })}\n`);
      }
      res.writeHead(404, headers).end(JSON.stringify({ message: `page not found: ${req.url}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  const context = join(dir, 'ctx');
  await mkdir(join(context, 'sub'), { recursive: true });
  await writeFile(join(context, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
  await writeFile(join(context, 'other.Dockerfile'), 'FROM scratch\n');
  await writeFile(join(context, 'sub', 'kept.txt'), 'kept');
  await writeFile(join(context, 'ignored.log'), 'ignored');
  await writeFile(join(context, '.dockerignore'), '*.log\n');
  await writeFile(join(dir, 'outside.Dockerfile'), 'FROM scratch\n');
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

async function bothBuild(flags: string[]): Promise<[RecordedBuild, RecordedBuild]> {
  recorded.length = 0;
  const env = { PATH: process.env['PATH'], HOME: dir, FROM_ENV: 'env-value' };
  await run('docker', ['-H', `unix://${socket}`, 'build', '-q', ...flags, join(dir, 'ctx')], { env, cwd: dir });
  const previous = process.cwd();
  process.chdir(dir);
  try {
    const ours = await runCaptured(['-H', `unix://${socket}`, 'build', '-q', ...flags, join(dir, 'ctx')], { env });
    expect(ours.stderr).toBe('');
    expect(ours.stdout).toBe(`sha256:${'b'.repeat(64)}\n`);
  } finally {
    process.chdir(previous);
  }
  expect(recorded).toHaveLength(2);
  return [recorded[0]!, recorded[1]!];
}

describe('build request', () => {
  it('carries docker’s build flags as docker’s CLI sends them', async (ctx) => {
    if (dockerMissing) ctx.skip(dockerMissing);
    const flags = ['-t', 'a:1', '-t', 'b', '--build-arg', 'X=1', '--build-arg', 'FROM_ENV', '--target', 't', '--label', 'k=v', '--no-cache', '--pull', '--platform', 'linux/amd64', '--network', 'none', '--add-host', 'h:1.2.3.4'];
    const [docker, ours] = await bothBuild(flags);
    expect(ours.query).toEqual(docker.query);
    expect(ours.contentType).toBe(docker.contentType);
    expect(ours.entries).toEqual(docker.entries);
    expect(ours.entries).toEqual(['.dockerignore', 'Dockerfile', 'other.Dockerfile', 'sub/kept.txt']);
  });

  it('sends a -f file from the context by its name, and one from outside as an injected file', async (ctx) => {
    if (dockerMissing) ctx.skip(dockerMissing);
    const [docker, ours] = await bothBuild(['-f', join('ctx', 'other.Dockerfile')]);
    expect(ours.query).toEqual(docker.query);
    const [outsideDocker, outsideOurs] = await bothBuild(['-f', 'outside.Dockerfile']);
    const dockerfileOf = (r: RecordedBuild) => r.query.find(([k]) => k === 'dockerfile')?.[1] ?? '';
    expect(dockerfileOf(outsideDocker)).toMatch(/^\.dockerfile\.[0-9a-f]{20}$/);
    expect(dockerfileOf(outsideOurs)).toMatch(/^\.dockerfile\.[0-9a-f]{20}$/);
    expect(outsideOurs.entries).toContain(dockerfileOf(outsideOurs));
  });
});
