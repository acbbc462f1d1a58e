import { readFileSync } from 'node:fs';
import { mkdir, writeFile, copyFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import Docker from 'dockerode';
import * as pty from 'node-pty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRegistry, type RegistryRig } from '@berth/tools/registry-rig';
import { pushBusyboxImage } from '@berth/tools/test-images';
import { makeTestCertificates, type TestCertificates } from '@berth/tools/tls-certs';
import { docker, engine, engineUnavailable, makeEngineHome, startServe, type EngineHome, type ServeProcess } from './engine-harness.js';

// The real docker CLI and dockerode drive `engine serve` (the local engine behind the Docker
// Engine API) unmodified: on a unix socket, and on TCP with mutual TLS.
let skip: string | undefined;
let home: EngineHome | undefined;
let serve: ServeProcess | undefined;
let registry: RegistryRig | undefined;
let certs: TestCertificates;
let host: string;
let tcp: string;

beforeAll(async () => {
  skip = engineUnavailable();
  if (skip) return;
  home = await makeEngineHome({ busyboxTag: 'busybox:latest' });
  certs = await makeTestCertificates(await mkdirIn(home.dir, 'certs'));
  const port = await freePort();
  tcp = `tcp://127.0.0.1:${port}`;
  serve = await startServe(home, ['-H', tcp, '--tlsverify', '--tlscacert', certs.ca, '--tlscert', certs.serverCert, '--tlskey', certs.serverKey, '--label', 'e2e=yes']);
  host = `unix://${serve.socket}`;
  registry = await startRegistry();
}, 180_000);

afterAll(async () => {
  await serve?.stop();
  await registry?.stop();
  await home?.destroy();
});

async function mkdirIn(dir: string, name: string): Promise<string> {
  await mkdir(join(dir, name), { recursive: true });
  return join(dir, name);
}

const d = (args: readonly string[], input?: string) => docker(host, args, { home: home!.home, ...(input === undefined ? {} : { input }) });

describe('docker CLI against engine serve', () => {
  it('negotiates and reports the engine', async (ctx) => {
    if (skip) ctx.skip(skip);
    const version = await d(['version', '--format', '{{.Server.APIVersion}} {{.Server.Os}}']);
    expect(version).toMatchObject({ code: 0, stdout: '1.47 linux\n' });
    const info = await d(['info', '--format', '{{.OSType}} {{.Labels}} {{.ServerVersion}}']);
    expect(info.stdout).toMatch(/^linux \[e2e=yes\] \S+\n$/);
  });

  it('runs attached containers: output, stderr, exit code, stdin', async (ctx) => {
    if (skip) ctx.skip(skip);
    expect(await d(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect(await d(['run', '--rm', '-i', '--network', 'none', 'busybox', 'sh', '-c', 'cat; echo end'], 'piped\n')).toMatchObject({ code: 0, stdout: 'piped\nend\n' });
    expect((await d(['run', '--rm', '--network', 'none', 'busybox', 'no-such-command'])).code).toBe(127);
  });

  it('runs detached containers with logs, exec, inspect, ps, stop and rm', async (ctx) => {
    if (skip) ctx.skip(skip);
    const started = await d(['run', '-d', '--name', 'e2e-web', '--network', 'none', 'busybox', 'sh', '-c', 'echo up; echo warn >&2; exec sleep 300']);
    expect(started.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    expect((await d(['ps', '--format', '{{.Names}} {{.Status}}'])).stdout).toMatch(/^e2e-web Up /m);
    let logs = await d(['logs', 'e2e-web']);
    for (let i = 0; i < 50 && !logs.stdout.includes('up'); i++) logs = await d(['logs', 'e2e-web']);
    expect(logs).toMatchObject({ stdout: 'up\n', stderr: 'warn\n' });
    expect(await d(['exec', 'e2e-web', 'sh', '-c', 'echo $((2+3)); exit 6'])).toMatchObject({ code: 6, stdout: '5\n' });
    expect((await d(['exec', '-i', 'e2e-web', 'wc', '-l'], 'a\nb\nc\n')).stdout.trim()).toBe('3');
    expect((await d(['inspect', '-f', '{{.State.Running}} {{.Config.Image}}', 'e2e-web'])).stdout).toBe('true busybox\n');
    expect((await d(['stop', '-t', '1', 'e2e-web'])).code).toBe(0);
    expect((await d(['inspect', '-f', '{{.State.Status}}', 'e2e-web'])).stdout).toBe('exited\n');
    expect((await d(['rm', 'e2e-web'])).code).toBe(0);
    expect((await d(['ps', '-a', '-q', '--filter', 'name=e2e-web'])).stdout).toBe('');
  });

  it('gives `run -it` a terminal', async (ctx) => {
    if (skip) ctx.skip(skip);
    const term = pty.spawn('docker', ['-H', host, 'run', '--rm', '-it', '--network', 'none', 'busybox', 'sh'], { cols: 90, rows: 30, env: { PATH: process.env['PATH'] ?? '', HOME: home!.home, TERM: 'xterm' } });
    let screen = '';
    term.onData((s) => (screen += s));
    const exited = new Promise<number>((resolve) => term.onExit((e) => resolve(e.exitCode)));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 200 && !re.test(screen); i++) await new Promise((r) => setTimeout(r, 50));
      expect(screen).toMatch(re);
    };
    await waitFor(/# /);
    term.write('stty size; tty\r');
    await waitFor(/30 90\r\n\/dev\/pts\/\d+/);
    term.resize(120, 40);
    await new Promise((r) => setTimeout(r, 300));
    term.write('stty size\r');
    await waitFor(/40 120/);
    term.write('exit 4\r');
    expect(await exited).toBe(4);
  });

  it('pulls, tags, pushes, lists and removes images', async (ctx) => {
    if (skip) ctx.skip(skip);
    await pushBusyboxImage(registry!, 'e2e/base:1');
    const ref = `${registry!.host}/e2e/base:1`;
    const pull = await d(['pull', ref]);
    expect(pull.code).toBe(0);
    expect(pull.stdout).toContain(`Status: Downloaded newer image for ${ref}`);
    expect((await d(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout).toContain(ref);
    expect((await d(['tag', ref, `${registry!.host}/e2e/copy:2`])).code).toBe(0);
    const push = await d(['push', `${registry!.host}/e2e/copy:2`]);
    expect(push.code).toBe(0);
    expect(push.stdout).toMatch(/2: digest: sha256:[0-9a-f]{64} size: \d+/);
    expect((await d(['rmi', `${registry!.host}/e2e/copy:2`])).stdout).toBe(`Untagged: ${registry!.host}/e2e/copy:2\n`);
    expect((await d(['run', '--rm', '--network', 'none', `${registry!.host}/e2e/copy:2`, 'echo', 'pulled again'])).stdout).toBe('pulled again\n');
  });

  it('builds with the classic builder API', async (ctx) => {
    if (skip) ctx.skip(skip);
    const context = join(home!.dir, 'build-ctx');
    await mkdir(context, { recursive: true });
    await copyFile('/bin/busybox', join(context, 'busybox'));
    await writeFile(join(context, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nRUN echo built > /built.txt\nCMD ["cat", "/built.txt"]\n');
    const build = await d(['build', '-t', 'e2e-built:1', context]);
    expect(build.code).toBe(0);
    expect(build.stdout).toMatch(/Successfully built [0-9a-f]{12}/);
    expect(build.stdout).toContain('Successfully tagged e2e-built:1');
    expect((await d(['run', '--rm', '--network', 'none', 'e2e-built:1'])).stdout).toBe('built\n');
  });

  it('manages volumes', async (ctx) => {
    if (skip) ctx.skip(skip);
    expect((await d(['volume', 'create', 'e2e-vol'])).stdout).toBe('e2e-vol\n');
    expect((await d(['run', '--rm', '--network', 'none', '-v', 'e2e-vol:/v', 'busybox', 'sh', '-c', 'echo data > /v/f'])).code).toBe(0);
    expect((await d(['run', '--rm', '--network', 'none', '-v', 'e2e-vol:/v', 'busybox', 'cat', '/v/f'])).stdout).toBe('data\n');
    expect((await d(['volume', 'ls', '--format', '{{.Name}}'])).stdout).toContain('e2e-vol');
    expect((await d(['volume', 'rm', 'e2e-vol'])).code).toBe(0);
  });

  it('serves dockerode', async (ctx) => {
    if (skip) ctx.skip(skip);
    const client = new Docker({ socketPath: serve!.socket });
    expect((await client.version()).ApiVersion).toBe('1.47');
    const container = await client.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo dockerode; exit 2'], HostConfig: { NetworkMode: 'none' } });
    await container.start();
    expect((await container.wait()).StatusCode).toBe(2);
    const logs = (await container.logs({ stdout: true })) as unknown as Buffer;
    expect(logs.subarray(8).toString()).toBe('dockerode\n');
    await container.remove();
    const exec = await client.createContainer({ Image: 'busybox', Cmd: ['sleep', '60'], HostConfig: { NetworkMode: 'none' } });
    await exec.start();
    const e = await exec.exec({ Cmd: ['sh', '-c', 'echo in-exec'], AttachStdout: true, AttachStderr: true });
    const stream = await e.start({ hijack: true, stdin: false });
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).subarray(8).toString()).toBe('in-exec\n');
    expect((await e.inspect()).ExitCode).toBe(0);
    await exec.remove({ force: true });
  });

  it('serves TCP with mutual TLS only to clients the CA signed', async (ctx) => {
    if (skip) ctx.skip(skip);
    const tlsEnv = { DOCKER_HOST: tcp, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs.clientDir };
    const ok = await docker(tcp, ['--tlsverify', 'run', '--rm', '--network', 'none', 'busybox', 'echo', 'over tls'], { home: home!.home, env: tlsEnv });
    expect(ok).toMatchObject({ code: 0, stdout: 'over tls\n' });
    const viaEngine = await engine(home!, ['ps', '-a', '--format', '{{.Names}}'], { env: { ...tlsEnv, BERTH_ROOT: '/nonexistent' } });
    expect(viaEngine.code).toBe(0);
    const rogue = await docker(tcp, ['--tlsverify', 'version'], { home: home!.home, env: { ...tlsEnv, DOCKER_CERT_PATH: certs.rogueClientDir } });
    expect(rogue.code).not.toBe(0);
    const port = Number(tcp.split(':').pop());
    const noCert = await new Promise<string>((resolve) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/_ping', ca: readFileSync(certs.ca) }, (res) => resolve(`answered ${res.statusCode}`));
      req.on('error', (e) => resolve(`refused ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      req.end();
    });
    expect(noCert).toMatch(/^refused/);
    const overTls = new Docker({
      protocol: 'https',
      host: '127.0.0.1',
      port,
      ca: readFileSync(certs.ca),
      cert: readFileSync(join(certs.clientDir, 'cert.pem')),
      key: readFileSync(join(certs.clientDir, 'key.pem')),
    });
    expect((await overTls.version()).ApiVersion).toBe('1.47');
    const c = await overTls.createContainer({ Image: 'busybox', Cmd: ['true'], HostConfig: { NetworkMode: 'none' } });
    await c.start();
    expect((await c.wait()).StatusCode).toBe(0);
    await c.remove();
    const uncertified = new Docker({ protocol: 'https', host: '127.0.0.1', port, ca: readFileSync(certs.ca) });
    await expect(uncertified.version()).rejects.toThrow();
  });
});
