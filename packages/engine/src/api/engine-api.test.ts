import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import * as pty from 'node-pty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerdUnavailable, startDockerd, type DockerdRig } from '@berth/tools/dockerd-rig';
import { makeTestCertificates, type TestCertificates } from '@berth/tools/tls-certs';
import { tarOfDirectory } from '@berth/tools/test-images';
import { RemoteEngine } from '../remote/remote-engine.js';
import type { OutputChunk } from '../types/stream.js';
import { listenEngineApi, type EngineApiServer } from './engine-api-server.js';

const execFileAsync = promisify(execFile);

// The server is tested with a real engine behind it: a private dockerd reached through
// RemoteEngine. The docker CLI, dockerode and RemoteEngine then talk to the server, so every
// byte of negotiation, hijacking and framing goes through Berth's code both ways.
let skip: string | undefined;
let rig: DockerdRig | undefined;
let dir: string;
let server: EngineApiServer | undefined;
let backend: RemoteEngine | undefined;
let socket: string;
let tcp: string;
let certs: TestCertificates;

beforeAll(async () => {
  skip = await dockerdUnavailable();
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'berth-api-'));
  certs = await makeTestCertificates(dir);
  rig = await startDockerd({ busyboxTag: 'busybox:latest' });
  backend = new RemoteEngine({ host: rig.host });
  socket = join(dir, 'run', 'berth.sock');
  server = await listenEngineApi({
    engine: backend,
    serverVersion: '0.0.0-test',
    hosts: [`unix://${socket}`, 'tcp://127.0.0.1:0'],
    tls: { cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey), ca: readFileSync(certs.ca), verifyClients: true },
  });
  tcp = server.addresses.find((a) => a.startsWith('tcp://'))!;
}, 120_000);

afterAll(async () => {
  await server?.close();
  await backend?.close();
  await rig?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function docker(args: readonly string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, { env: { PATH: process.env['PATH'], HOME: dir, DOCKER_HOST: `unix://${socket}`, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input);
  });
}

function raw(method: string, path: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath: socket, method, path }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Docker Engine API server', () => {
  it('answers the ping and version negotiation as dockerd does', async (ctx) => {
    if (skip) ctx.skip(skip);
    const head = await raw('HEAD', '/_ping');
    expect(head.status).toBe(200);
    expect(head.headers['api-version']).toBe('1.47');
    expect(head.headers['ostype']).toBe('linux');
    expect(head.headers['server']).toBe('Berth/0.0.0-test (linux)');
    expect(head.headers['builder-version']).toBe('1');
    const get = await raw('GET', '/v1.43/_ping');
    expect(get.body).toBe('OK');
    const old = await raw('GET', '/v1.20/info');
    expect(old.status).toBe(400);
    expect(JSON.parse(old.body).message).toBe('client version 1.20 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version');
    const future = await raw('GET', '/v1.99/version');
    expect(future.status).toBe(400);
    expect(JSON.parse(future.body).message).toMatch(/too new. Maximum supported API version is 1.47/);
    const missing = await raw('GET', '/v1.43/no/such/endpoint');
    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toBe('application/json');
    expect(JSON.parse(missing.body).message).toBe('page not found');
    const version = await docker(['version', '--format', '{{.Client.APIVersion}} {{.Server.APIVersion}}']);
    expect(version.stdout.trim()).toBe('1.47 1.41');
  });

  it('runs attached containers for the docker CLI: output split, exit code, stdin', async (ctx) => {
    if (skip) ctx.skip(skip);
    const r = await docker(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    const cat = await docker(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'cat; echo done'], { input: 'line one\nline two\n' });
    expect(cat).toMatchObject({ code: 0, stdout: 'line one\nline two\ndone\n' });
    const missing = await docker(['run', '--rm', 'busybox', 'no-such-command']);
    expect(missing.code).toBe(127);
  });

  it('serves detached containers, logs, exec, inspect, stop and rm', async (ctx) => {
    if (skip) ctx.skip(skip);
    const name = `api-${process.pid}`;
    const started = await docker(['run', '-d', '--name', name, 'busybox', 'sh', '-c', 'echo hello; echo oops >&2; sleep 300']);
    expect(started.code).toBe(0);
    expect(started.stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
    try {
      const ps = await docker(['ps', '--format', '{{.Names}} {{.State}}']);
      expect(ps.stdout).toContain(`${name} running`);
      let logs = await docker(['logs', name]);
      for (let i = 0; i < 50 && !logs.stdout.includes('hello'); i++) logs = await docker(['logs', name]);
      expect(logs).toMatchObject({ stdout: 'hello\n', stderr: 'oops\n' });
      const stamped = await docker(['logs', '-t', '--tail', '1', name]);
      expect(stamped.stdout + stamped.stderr).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (hello|oops)\n$/);
      const exec = await docker(['exec', name, 'sh', '-c', 'echo in-exec; exit 7']);
      expect(exec).toMatchObject({ code: 7, stdout: 'in-exec\n' });
      const execIn = await docker(['exec', '-i', name, 'wc', '-c'], { input: '12345' });
      expect(execIn.stdout.trim()).toBe('5');
      const inspect = await docker(['inspect', '-f', '{{.State.Status}} {{json .Config.Cmd}}', name]);
      expect(inspect.stdout.trim()).toBe('running ["sh","-c","echo hello; echo oops >&2; sleep 300"]');
      expect((await docker(['stop', '-t', '1', name])).code).toBe(0);
      const exited = await docker(['ps', '-a', '--filter', `name=${name}`, '--format', '{{.Status}}']);
      expect(exited.stdout).toMatch(/^Exited \(137\)/);
    } finally {
      await docker(['rm', '-f', name]);
    }
    const gone = await docker(['inspect', name]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/No such object/);
  });

  it('gives `run -it` a terminal whose size follows the window', async (ctx) => {
    if (skip) ctx.skip(skip);
    const term = pty.spawn('docker', ['run', '--rm', '-it', 'busybox', 'sh'], {
      cols: 80,
      rows: 24,
      env: { PATH: process.env['PATH'] ?? '', HOME: dir, DOCKER_HOST: `unix://${socket}`, TERM: 'xterm' },
    });
    let screen = '';
    term.onData((d) => (screen += d));
    const exited = new Promise<number>((resolve) => term.onExit((e) => resolve(e.exitCode)));
    const waitFor = async (pattern: RegExp) => {
      for (let i = 0; i < 200 && !pattern.test(screen); i++) await new Promise((r) => setTimeout(r, 50));
      expect(screen).toMatch(pattern);
    };
    await waitFor(/\/ # /);
    term.write('echo $((6*7))\r');
    await waitFor(/\r\n42\r\n/);
    term.resize(100, 40);
    await new Promise((r) => setTimeout(r, 300));
    term.write('stty size\r');
    await waitFor(/40 100/);
    term.write('exit 5\r');
    expect(await exited).toBe(5);
  });

  it("passes a failed build's RUN exit code on, so the docker CLI exits with it as with dockerd", async (ctx) => {
    if (skip) ctx.skip(skip);
    const context = join(dir, 'failing-build');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), 'FROM busybox\nRUN echo about to fail; exit 7\n');
    const build = await docker(['build', context], { env: { DOCKER_BUILDKIT: '0' } });
    expect(build.stdout).toContain('about to fail');
    expect(build.stderr).toContain("returned a non-zero code: 7");
    expect(build.code).toBe(7);
    // RemoteEngine keeps the code as the error's exitCode (the engine CLI exits with it).
    const client = new RemoteEngine({ host: `unix://${socket}` });
    try {
      const tar = tarOfDirectory(context);
      const failure = await (async () => {
        for await (const _ of client.buildImage(tar, {})) void _;
      })().catch((e: unknown) => e);
      expect(failure).toMatchObject({ exitCode: 7, message: "The command '/bin/sh -c echo about to fail; exit 7' returned a non-zero code: 7" });
    } finally {
      await client.close();
    }
  });

  it('speaks the same API to dockerode', async (ctx) => {
    if (skip) ctx.skip(skip);
    const client = new Docker({ socketPath: socket });
    const info = await client.info();
    expect(info.OSType).toBe('linux');
    const container = await client.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo from-dockerode; echo e >&2'] });
    try {
      await container.start();
      expect((await container.wait()).StatusCode).toBe(0);
      const logs = (await container.logs({ stdout: true, stderr: true })) as unknown as Buffer;
      // stdout and stderr lines written at once may come in either order: read every frame.
      const frames: string[] = [];
      for (let at = 0; at < logs.length; at += 8 + logs.readUInt32BE(at + 4)) frames.push(`${logs[at]}:${logs.subarray(at + 8, at + 8 + logs.readUInt32BE(at + 4)).toString()}`);
      expect(frames.sort()).toEqual(['1:from-dockerode\n', '2:e\n']);
    } finally {
      await container.remove({ force: true });
    }
    const images = await client.listImages();
    expect(images.some((i) => i.RepoTags?.includes('busybox:latest'))).toBe(true);
  });

  it('lets RemoteEngine attach and exec with framing kept, and errors keep their kind', async (ctx) => {
    if (skip) ctx.skip(skip);
    const client = new RemoteEngine({ host: `unix://${socket}` });
    try {
      const created = await client.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'read line; echo "got $line"; echo bad >&2; exit 4'], OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true });
      const stream = await client.attachContainer(created.Id, { stream: true, stdin: true, stdout: true, stderr: true });
      const wait = await client.waitContainer(created.Id, { condition: 'next-exit' });
      await client.startContainer(created.Id);
      stream.stdin!.end('hello\n');
      const chunks: OutputChunk[] = [];
      for await (const c of stream.output) chunks.push(c);
      expect(chunks.filter((c) => c.stream === 'stdout').map((c) => c.data.toString()).join('')).toBe('got hello\n');
      expect(chunks.filter((c) => c.stream === 'stderr').map((c) => c.data.toString()).join('')).toBe('bad\n');
      expect((await wait.result).StatusCode).toBe(4);
      const exec = await client.createExec(created.Id, { Cmd: ['true'], AttachStdout: true }).catch((e: unknown) => e);
      expect(exec).toMatchObject({ kind: 'Conflict' });
      await client.removeContainer(created.Id, { force: true });
      const err = await client.inspectContainer('no-such-container-here').catch((e: unknown) => e);
      expect(err).toMatchObject({ kind: 'NotFound', message: 'No such container: no-such-container-here' });
    } finally {
      await client.close();
    }
  });

  it('requires a client certificate signed by the CA over TCP', async (ctx) => {
    if (skip) ctx.skip(skip);
    const tlsEnv = { DOCKER_HOST: tcp, DOCKER_CERT_PATH: certs.clientDir, DOCKER_TLS_VERIFY: '1' };
    const ok = await docker(['--tlsverify', 'version', '--format', '{{.Server.Os}}'], { env: tlsEnv });
    expect(ok).toMatchObject({ code: 0, stdout: 'linux\n' });
    // Without -i the CLI half-closes at once (a TLS close_notify); the output must still come.
    const attached = await docker(['--tlsverify', 'run', '--rm', 'busybox', 'sh', '-c', 'sleep 0.3; echo late; exit 2'], { env: tlsEnv });
    expect(attached).toMatchObject({ code: 2, stdout: 'late\n' });
    const piped = await docker(['--tlsverify', 'run', '--rm', '-i', 'busybox', 'cat'], { env: tlsEnv, input: 'in over tls\n' });
    expect(piped.stdout).toBe('in over tls\n');
    const port = Number(tcp.split(':').pop());
    const attempt = (cert: Buffer | undefined, key: Buffer | undefined) =>
      new Promise<string>((resolve) => {
        const req = httpsRequest({ host: '127.0.0.1', port, path: '/_ping', ca: readFileSync(certs.ca), ...(cert ? { cert, key } : {}) }, (res) => {
          res.resume();
          resolve(`status ${res.statusCode}`);
        });
        req.on('error', (e) => resolve(`refused: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
        req.end();
      });
    expect(await attempt(undefined, undefined)).toMatch(/^refused/);
    expect(await attempt(readFileSync(join(certs.rogueClientDir, 'cert.pem')), readFileSync(join(certs.rogueClientDir, 'key.pem')))).toMatch(/^refused/);
    expect(await attempt(readFileSync(join(certs.clientDir, 'cert.pem')), readFileSync(join(certs.clientDir, 'key.pem')))).toBe('status 200');
    const rogue = await docker(['--tlsverify', 'version'], { env: { DOCKER_HOST: tcp, DOCKER_CERT_PATH: certs.rogueClientDir, DOCKER_TLS_VERIFY: '1' } });
    expect(rogue.code).not.toBe(0);
    const secured = new RemoteEngine({
      host: tcp,
      tls: { verify: true, ca: readFileSync(certs.ca), cert: readFileSync(join(certs.clientDir, 'cert.pem')), key: readFileSync(join(certs.clientDir, 'key.pem')) },
    });
    try {
      expect((await secured.ping()).apiVersion).toBe('1.47');
    } finally {
      await secured.close();
    }
    await execFileAsync('true');
  });
});
