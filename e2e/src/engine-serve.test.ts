import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile, copyFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import Docker from 'dockerode';
import * as pty from 'node-pty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRegistry, type RegistryRig } from '@berth/tools/registry-rig';
import { pushBusyboxImage } from '@berth/tools/test-images';
import { makeTestCertificates, type TestCertificates } from '@berth/tools/tls-certs';
import { docker, engine, engineUnavailable, makeEngineHome, startServe, type EngineHome, type ServeProcess } from './engine-harness.js';

/** A non-loopback IPv4 address of this host (one no registry client treats as insecure on its own), if any. */
function hostAddress(): string | undefined {
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (/^(lo|berth|be2e|bt|docker)/.test(name)) continue;
    const found = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (found) return found.address;
  }
  return undefined;
}

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

  it('runs on the default network (NetworkMode "default") and reports a --rm container\'s exit code', async (ctx) => {
    if (skip) ctx.skip(skip);
    const r = await d(['run', '--rm', 'busybox', 'sh', '-c', 'cat /sys/class/net/eth0/operstate; exit 3']);
    expect(r).toEqual({ code: 3, stdout: 'up\n', stderr: '' });
    expect((await d(['ps', '-aq'])).stdout).toBe('');
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

  it('detaches on ctrl-p ctrl-q and on --detach-keys, leaving the container running (run -it, attach, and the API alone)', async (ctx) => {
    if (skip) ctx.skip(skip);
    const session = async (args: readonly string[], keys: string) => {
      const term = pty.spawn('docker', ['-H', host, ...args], { cols: 80, rows: 24, env: { PATH: process.env['PATH'] ?? '', HOME: home!.home, TERM: 'xterm' } });
      let screen = '';
      term.onData((s) => (screen += s));
      const exited = new Promise<number>((resolve) => term.onExit((e) => resolve(e.exitCode)));
      term.write('echo attached-$((40+2))\r');
      for (let i = 0; i < 200 && !screen.includes('attached-42'); i++) await new Promise((r) => setTimeout(r, 50));
      term.write(keys);
      const status = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still attached after 10 s'), 10_000))]);
      if (typeof status === 'string') term.kill();
      return { status, screen };
    };
    const running = async () => (await d(['inspect', '-f', '{{.State.Running}}', 'e2e-detach'])).stdout;
    try {
      const run = await session(['run', '-it', '--name', 'e2e-detach', '--network', 'none', 'busybox', 'sh'], '\x10\x11');
      expect(run.screen).toContain('attached-42');
      expect(run.status).toBe(0);
      expect(await running()).toBe('true\n');
      // docker attach reports a detach as "read escape sequence" (status 1), against dockerd too.
      const attach = await session(['attach', '--detach-keys', 'ctrl-x', 'e2e-detach'], '\x18');
      expect(attach.screen).toContain('attached-42');
      expect(attach.status).not.toBe('still attached after 10 s');
      expect(await running()).toBe('true\n');
      // A client that leaves the keys to the server: the server ends the stream, the process lives on.
      const client = new Docker({ socketPath: serve!.socket });
      const stream = (await client.getContainer('e2e-detach').attach({ stream: true, stdin: true, stdout: true, hijack: true, detachKeys: 'ctrl-a,d' })) as unknown as NodeJS.ReadWriteStream;
      const ended = new Promise<void>((resolve) => stream.on('end', () => resolve()));
      stream.on('data', () => undefined);
      stream.write('\x01d');
      expect(await Promise.race([ended.then(() => 'ended'), new Promise((r) => setTimeout(() => r('still attached after 10 s'), 10_000))])).toBe('ended');
      expect(await running()).toBe('true\n');
    } finally {
      await d(['rm', '-f', 'e2e-detach']);
    }
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
    // One image, two names: a reference filter lists only the name it matches, as docker.
    expect((await d(['images', '--filter', `reference=${registry!.host}/e2e/copy`, '--format', '{{.Repository}}:{{.Tag}}'])).stdout).toBe(`${registry!.host}/e2e/copy:2\n`);
    expect((await d(['images', '--filter', 'reference=*/e2e/base:*', '--format', '{{.Repository}}:{{.Tag}}'])).stdout).toBe(`${ref}\n`);
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
    // A failing RUN: the docker CLI exits with its code, as against dockerd.
    await writeFile(join(context, 'Dockerfile'), 'FROM e2e-built:1\nRUN echo failing; exit 9\n');
    const failed = await d(['build', context]);
    expect(failed.stderr).toContain("The command '/bin/sh -c echo failing; exit 9' returned a non-zero code: 9");
    expect(failed.code).toBe(9);
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
    // A detached exec (docker exec -d): its exit code once it has ended, not null.
    const bg = await exec.exec({ Cmd: ['sh', '-c', 'sleep 0.2; exit 5'] });
    await bg.start({ Detach: true });
    let state = await bg.inspect();
    for (let i = 0; state.Running && i < 100; i++) state = await new Promise((r) => setTimeout(r, 50)).then(() => bg.inspect());
    expect(state).toMatchObject({ Running: false, ExitCode: 5 });
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

describe('engine serve with the dockerd options a provisioned host gets', () => {
  it('honours --registry-mirror, --insecure-registry, --dns, --log-opt, --storage-driver, --mtu and --pidfile, on a fresh root', async (ctx) => {
    if (skip) ctx.skip(skip);
    const address = hostAddress();
    if (!address) ctx.skip('this host has no non-loopback IPv4 address to reach a registry as an insecure one');
    const fresh = await makeEngineHome();
    const mirror = await startRegistry();
    const plain = await startRegistry();
    const forwardPort = await freePort();
    // The plain-HTTP registry on this host's own address: only --insecure-registry lets a client use it.
    const forward = spawn('socat', [`TCP-LISTEN:${forwardPort},bind=${address},fork,reuseaddr`, `TCP:${plain.host}`], { stdio: 'ignore' });
    const plainHost = `${address}:${forwardPort}`;
    try {
      await pushBusyboxImage(mirror, 'library/busybox:mirrored');
      await pushBusyboxImage(plain, 'e2e/plain:1');
      // Without the flag (the first server) the registry is refused: HTTPS is all it may speak.
      const refused = await d(['pull', `${plainHost}/e2e/plain:1`]);
      expect(refused.code).not.toBe(0);
      const pidfile = join(fresh.dir, 'engine.pid');
      const flagged = await startServe(fresh, [
        `--registry-mirror=${mirror.url}`,
        '--insecure-registry', plainHost,
        '--dns', '192.0.2.53',
        '--dns-search', 'example.test',
        '--log-opt', 'max-size=1k',
        '--log-opt', 'max-file=2',
        '--storage-driver', 'vfs',
        '--mtu', '1400',
        '--pidfile', pidfile,
        '--live-restore',
      ]);
      const f = (args: readonly string[]) => docker(`unix://${flagged.socket}`, args, { home: fresh.home });
      expect((await readFile(pidfile, 'utf8')).trim()).toBe(String(flagged.child.pid));
      // docker.io/library/busybox:mirrored exists only on the mirror (and Docker Hub is out of reach).
      const pulled = await f(['pull', 'busybox:mirrored']);
      expect(pulled.stderr).toBe('');
      expect(pulled.stdout).toContain('Status: Downloaded newer image for busybox:mirrored');
      expect((await f(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout).toBe('busybox:mirrored\n');
      expect((await f(['pull', `${plainHost}/e2e/plain:1`])).code).toBe(0);
      const info = await f(['info', '--format', '{{.Driver}} {{json .RegistryConfig.Mirrors}}']);
      expect(info.stdout).toBe(`vfs ["${mirror.url}/"]\n`);
      // The first container of this root, on the default network: the engine's DNS, MTU and log options.
      const run = await f(['run', '--name', 'flagged', 'busybox:mirrored', 'sh', '-c', 'grep -v "^#" /etc/resolv.conf; cat /sys/class/net/eth0/mtu']);
      expect(run).toMatchObject({ code: 0, stdout: 'nameserver 192.0.2.53\nsearch example.test\n1400\n' });
      expect((await f(['inspect', '-f', '{{json .HostConfig.LogConfig}}', 'flagged'])).stdout).toBe('{"Type":"json-file","Config":{"max-file":"2","max-size":"1k"}}\n');
      await flagged.stop();
      await expect(readFile(pidfile)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      forward.kill();
      await mirror.stop();
      await plain.stop();
      await fresh.destroy();
    }
  });

  it('refuses dockerd options Berth cannot honour, naming them', async (ctx) => {
    if (skip) ctx.skip(skip);
    for (const [option, reason] of [
      ['--iptables=false', "--iptables is a dockerd option that Berth does not support: Berth's default bridge takes --bridge, --bip and --mtu"],
      ['--userns-remap=default', '--userns-remap is a dockerd option that Berth does not support'],
      ['--live-restore=false', '--live-restore=false is not available'],
      ['--storage-driver=btrfs', 'storage driver "btrfs" is not available: Berth has overlay2 and vfs'],
    ] as const) {
      const r = await engine(home!, ['serve', '-H', `unix://${join(home!.dir, 'refused.sock')}`, option]);
      expect(r.code, option).toBe(2);
      expect(r.stderr, option).toContain(reason);
    }
  });
});
