import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured, type CapturedRun } from '../../cli/captured-run.js';

const run = promisify(execFile);

/** What a server received for POST /containers/create. */
interface Recorded {
  readonly url: string;
  readonly body: unknown;
}

let dir: string;
let socket: string;
let server: Server;
const recorded: Recorded[] = [];
let dockerMissing: string | undefined;

// A server that records create requests: both CLIs talk to it, and the test compares what they sent.
beforeAll(async () => {
  try {
    await run('docker', ['--version']);
  } catch {
    dockerMissing = 'the docker CLI is not installed';
  }
  dir = await mkdtemp(join(tmpdir(), 'berth-create-'));
  socket = join(dir, 'api.sock');
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const headers = { 'Api-Version': '1.47', Ostype: 'linux', 'Content-Type': 'application/json' };
      if (req.url?.endsWith('/_ping')) {
        res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : 'OK');
      } else if (req.url?.includes('/containers/create')) {
        recorded.push({ url: req.url, body: JSON.parse(body) });
        res.writeHead(201, headers).end(JSON.stringify({ Id: 'c'.repeat(64), Warnings: [] }));
      } else {
        res.writeHead(404, headers).end(JSON.stringify({ message: `page not found: ${req.url}` }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

function engineCli(args: string[]): Promise<CapturedRun> {
  return runCaptured(args, { env: { HOME: dir, KEPT: 'v' } });
}

async function bothCreate(flags: string[]): Promise<[Recorded, Recorded]> {
  recorded.length = 0;
  await run('docker', ['-H', `unix://${socket}`, 'create', ...flags], { env: { PATH: process.env['PATH'], HOME: dir, KEPT: 'v' } });
  const ours = await engineCli(['-H', `unix://${socket}`, 'create', ...flags]);
  expect(ours.stderr).toBe('');
  expect(ours.stdout).toBe(`${'c'.repeat(64)}\n`);
  expect(recorded).toHaveLength(2);
  return [recorded[0]!, recorded[1]!];
}

// The docker CLI collects -v binds in a Go map, and now and then puts an `-e NAME` it could not
// resolve ahead of the others, so their order changes from run to run; Berth keeps the command
// line's order. The comparison is of the sets.
function sortedBinds(body: unknown): unknown {
  const b = body as { Env?: string[] | null; HostConfig?: { Binds?: string[] | null } };
  const env = b.Env ? { Env: [...b.Env].sort() } : {};
  if (!b.HostConfig?.Binds) return { ...b, ...env };
  return { ...b, ...env, HostConfig: { ...b.HostConfig, Binds: [...b.HostConfig.Binds].sort() } };
}

const cases: Record<string, string[]> = {
  'no flags': ['busybox'],
  'run flags of the issue': [
    '--name', 'web', '-e', 'A=1', '-e', 'KEPT', '-e', 'UNSET', '-p', '8080:80', '-p', '127.0.0.1:9000-9001:90-91/udp', '-v', '/tmp:/data:ro', '-v', 'named:/n', '-v', '/anon',
    '--rm', '-m', '512m', '--cpus', '1.5', '--pids-limit', '100', '--read-only', '--cap-add', 'net_admin', '--cap-drop', 'MKNOD', '--init',
    '--stop-signal', 'SIGUSR1', '--stop-timeout', '5', '--health-cmd', 'true', '--health-interval', '5s', '--health-retries', '2', '-l', 'a=b', '--label', 'c',
    '--log-driver', 'none', '--tmpfs', '/run:size=64m', '-w', '/w', '-u', '1000:1000', '--entrypoint', 'sh', '--hostname', 'h', '-it',
    'busybox', '-c', 'echo hi; ls -la',
  ],
  'restart, privileged, mounts, networks, limits': [
    '--network', 'n1', '--network-alias', 'al', '--ip', '10.1.0.5', '--mount', 'type=volume,source=v,target=/v,readonly', '--mount', 'type=tmpfs,target=/t,tmpfs-size=1m',
    '--mount', 'type=bind,src=/tmp,dst=/b,bind-propagation=rslave', '--ulimit', 'nofile=10:20', '--device', '/dev/null:/dev/n', '--dns', '1.1.1.1', '--add-host', 'a:1.2.3.4',
    '--cap-add', 'ALL', '--sysctl', 'net.ipv4.ip_forward=1', '--privileged', '--memory-swap', '-1', '--oom-kill-disable', '--restart', 'on-failure:3', '--no-healthcheck',
    '--env-file', '/dev/null', '--platform', 'linux/amd64', 'busybox', 'sleep', '1',
  ],
  'detached keys and unless-stopped': ['-d', '--restart', 'unless-stopped', '--expose', '7000-7001', '-P', 'busybox'],
};

describe('create body', () => {
  for (const [name, flags] of Object.entries(cases)) {
    it(`is what the docker CLI sends: ${name}`, async (ctx) => {
      if (dockerMissing) ctx.skip(dockerMissing);
      // `create -d` is not a docker flag; `run -d` is: compare run's detached body through create's flags instead.
      const usable = flags.filter((f) => f !== '-d');
      const [docker, ours] = await bothCreate(usable);
      expect(ours.url).toBe(docker.url);
      expect(sortedBinds(ours.body)).toEqual(sortedBinds(docker.body));
    });
  }

  it('refuses what docker refuses, with a usage status', async () => {
    const r = await engineCli(['-H', `unix://${socket}`, 'create', '--rm', '--restart', 'always', 'busybox']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/Conflicting options: --restart and --rm/);
    const bad = await engineCli(['-H', `unix://${socket}`, 'create', '-p', '80:80:80:80', 'busybox']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/invalid port format/);
  });
});
