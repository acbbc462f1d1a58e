import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerdUnavailable, startDockerd, type DockerdRig } from '@berth/tools/dockerd-rig';
import { runCaptured, type CapturedRun } from './cli/captured-run.js';

// The CLI in remote mode against a real Docker-API server (a private dockerd), side by side with
// the docker CLI on the same daemon: same objects, same output, same exit codes.
let skip: string | undefined;
let rig: DockerdRig | undefined;
let home: string;
const prefix = `cli${process.pid}`;

beforeAll(async () => {
  skip = await dockerdUnavailable();
  if (skip) return;
  home = await mkdtemp(join(tmpdir(), 'berth-cli-'));
  rig = await startDockerd({ busyboxTag: 'busybox:latest' });
}, 120_000);

afterAll(async () => {
  await rig?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

function engine(args: readonly string[], input?: string | Buffer): Promise<CapturedRun> {
  return runCaptured(['-H', rig!.host, ...args], { env: { HOME: home, ...(input === undefined ? {} : {}) }, ...(input === undefined ? {} : { input }) });
}

function docker(args: readonly string[], input?: string): Promise<CapturedRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', ['-H', rig!.host, ...args], { env: { PATH: process.env['PATH'], HOME: home } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('engine CLI against a Docker-API server', () => {
  it('runs containers with docker’s exit codes: the container’s, 125, 126, 127', async (ctx) => {
    if (skip) ctx.skip(skip);
    expect(await engine(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect((await engine(['run', '--rm', 'busybox', 'no-such-command'])).code).toBe(127);
    expect((await engine(['run', '--rm', 'busybox', '/etc'])).code).toBe(126);
    const unknownImage = await engine(['run', '--rm', '--pull', 'never', 'no-such-image-here']);
    expect(unknownImage.code).toBe(125);
    expect(unknownImage.stderr).toMatch(/^engine: .*no-such-image-here/);
    const badFlag = await engine(['run', '--no-such-flag', 'busybox']);
    expect(badFlag.code).toBe(125);
    expect(badFlag.stderr).toMatch(/no-such-flag/);
    expect(await engine(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'tr a-z A-Z'], 'shout\n')).toMatchObject({ code: 0, stdout: 'SHOUT\n' });
    expect(await engine(['run', '--rm', '-e', 'A=1', '-w', '/tmp', '-u', '1000', '--entrypoint', 'sh', 'busybox', '-c', 'echo $A $(pwd) $(id -u)'])).toMatchObject({ stdout: '1 /tmp 1000\n' });
  });

  it("exits with a failed build's RUN code, as the docker CLI does", async (ctx) => {
    if (skip) ctx.skip(skip);
    const context = join(home, 'failing-build');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), 'FROM busybox\nRUN exit 6\n');
    const ours = await engine(['build', context]);
    expect(ours.stderr).toContain("The command '/bin/sh -c exit 6' returned a non-zero code: 6");
    expect(ours.code).toBe(6);
    expect((await docker(['build', context])).code).toBe(6);
  });

  it('prints the image ID of a quiet build, which dockerd sends as a stream line without an aux', async (ctx) => {
    if (skip) ctx.skip(skip);
    const context = join(home, 'quiet-build');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), 'FROM busybox\nLABEL quiet=yes\n');
    const ours = await engine(['build', '-q', context]);
    expect(ours).toMatchObject({ code: 0, stderr: '' });
    expect(ours.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect((await engine(['inspect', '-f', '{{index .Config.Labels "quiet"}}', ours.stdout.trim()])).stdout).toBe('yes\n');
  });

  it('lists, inspects and formats as the docker CLI does', async (ctx) => {
    if (skip) ctx.skip(skip);
    const name = `${prefix}-ps`;
    expect((await engine(['run', '-d', '--name', name, '-l', 'team=core', 'busybox', 'sleep', '300'])).code).toBe(0);
    try {
      const format = '{{.Names}}|{{.Image}}|{{.Command}}|{{.State}}|{{.Label "team"}}|{{.Labels}}';
      const ours = await engine(['ps', '--filter', `name=${name}`, '--format', format]);
      const theirs = await docker(['ps', '--filter', `name=${name}`, '--format', format]);
      expect(ours.stdout).toBe(theirs.stdout);
      expect(ours.stdout).toBe(`${name}|busybox|"sleep 300"|running|core|team=core\n`);
      // The headers' titles and order; their widths follow the longest cell, and "Less than a
      // second ago" from one call can be "1 second ago" from the next.
      const header = (out: string) => out.split('\n')[0]!.trim().split(/ {2,}/);
      expect(header((await engine(['ps', '-a'])).stdout)).toEqual(header((await docker(['ps', '-a'])).stdout));
      expect((await engine(['ps', '-q', '--no-trunc', '--filter', `label=team=core`])).stdout).toBe((await docker(['ps', '-q', '--no-trunc', '--filter', 'label=team=core'])).stdout);
      const inspectOurs = JSON.parse((await engine(['inspect', name])).stdout);
      const inspectTheirs = JSON.parse((await docker(['inspect', name])).stdout);
      expect(inspectOurs).toEqual(inspectTheirs);
      const tmpl = '{{.Name}} {{.State.Running}} {{json .Config.Labels}} {{range .Config.Cmd}}<{{.}}>{{end}}';
      expect((await engine(['inspect', '-f', tmpl, name])).stdout).toBe((await docker(['inspect', '-f', tmpl, name])).stdout);
      expect((await engine(['container', 'inspect', '--format', '{{.State.Status}}', name])).stdout).toBe('running\n');
      const images = await engine(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}']);
      expect(images.stdout).toBe((await docker(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}'])).stdout);
      expect((await engine(['images'])).stdout.split('\n')[0]).toMatch(/^REPOSITORY {3}TAG {7}IMAGE ID {7}CREATED {2,}SIZE$/);
      const top = await engine(['top', name]);
      expect(top.stdout.split('\n')[0]).toMatch(/^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
      expect(top.stdout).toContain('sleep 300');
      const missing = await engine(['inspect', 'no-such-thing']);
      expect(missing).toMatchObject({ code: 1, stderr: 'Error: No such object: no-such-thing\n' });
    } finally {
      await engine(['rm', '-f', name]);
    }
  });

  it('handles logs, exec, stop, kill, wait, rename, restart and rm', async (ctx) => {
    if (skip) ctx.skip(skip);
    const name = `${prefix}-life`;
    await engine(['run', '-d', '--name', name, 'busybox', 'sh', '-c', 'trap "echo bye; exit 9" TERM; echo one; echo two >&2; while true; do sleep 0.1; done']);
    try {
      let logs = await engine(['logs', name]);
      for (let i = 0; i < 50 && !logs.stdout.includes('one'); i++) logs = await engine(['logs', name]);
      expect(logs).toMatchObject({ code: 0, stdout: 'one\n', stderr: 'two\n' });
      const tail = await engine(['logs', '--tail', '1', '-t', name]);
      expect(tail.stdout + tail.stderr).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z (one|two)\n$/);
      expect(await engine(['exec', name, 'sh', '-c', 'echo in; exit 7'])).toMatchObject({ code: 7, stdout: 'in\n' });
      expect(await engine(['exec', '-i', '-e', 'X=y', '-w', '/etc', name, 'sh', '-c', 'cat; echo $X $(pwd)'], 'fed\n')).toMatchObject({ code: 0, stdout: 'fed\ny /etc\n' });
      expect((await engine(['exec', '-d', name, 'touch', '/tmp/detached'])).code).toBe(0);
      expect((await engine(['exec', name, 'no-such-binary'])).code).toBe((await docker(['exec', name, 'no-such-binary'])).code);
      expect(await engine(['rename', name, `${name}-2`])).toMatchObject({ code: 0 });
      expect(await engine(['stop', '-t', '5', `${name}-2`])).toMatchObject({ code: 0, stdout: `${name}-2\n` });
      expect((await engine(['wait', `${name}-2`])).stdout).toBe('9\n');
      expect((await engine(['logs', `${name}-2`])).stdout).toBe('one\nbye\n');
      expect((await engine(['start', `${name}-2`])).stdout).toBe(`${name}-2\n`);
      expect((await engine(['kill', '-s', 'KILL', `${name}-2`])).code).toBe(0);
      expect((await engine(['wait', `${name}-2`])).stdout).toBe('137\n');
      const killStopped = await engine(['kill', `${name}-2`]);
      expect(killStopped.code).toBe(1);
      expect(killStopped.stderr).toMatch(/is not running/);
      expect((await engine(['restart', '-t', '1', `${name}-2`])).code).toBe(0);
      expect((await engine(['inspect', '-f', '{{.State.Running}}', `${name}-2`])).stdout).toBe('true\n');
      const rmRunning = await engine(['rm', `${name}-2`]);
      expect(rmRunning.code).toBe(1);
      expect((await engine(['rm', '-f', `${name}-2`, 'no-such-ctr'])).code).toBe(1);
      expect((await engine(['ps', '-a', '-q', '--filter', `name=${name}`])).stdout).toBe('');
    } finally {
      await engine(['rm', '-f', name, `${name}-2`]);
    }
  });

  it('copies files both ways, diffs, exports and commits', async (ctx) => {
    if (skip) ctx.skip(skip);
    const name = `${prefix}-fs`;
    const work = join(home, 'cp');
    await mkdir(join(work, 'dir', 'sub'), { recursive: true });
    await writeFile(join(work, 'dir', 'sub', 'f.txt'), 'payload\n');
    await engine(['run', '-d', '--name', name, 'busybox', 'sleep', '300']);
    try {
      expect((await engine(['cp', join(work, 'dir'), `${name}:/tmp/copied`])).code).toBe(0);
      expect((await engine(['exec', name, 'cat', '/tmp/copied/sub/f.txt'])).stdout).toBe('payload\n');
      expect((await engine(['cp', join(work, 'dir', 'sub', 'f.txt'), `${name}:/tmp/`])).code).toBe(0);
      expect((await engine(['exec', name, 'cat', '/tmp/f.txt'])).stdout).toBe('payload\n');
      expect((await engine(['cp', `${name}:/etc/passwd`, join(work, 'passwd')])).code).toBe(0);
      expect(await readFile(join(work, 'passwd'), 'utf8')).toMatch(/^root:/);
      expect((await engine(['cp', `${name}:/tmp/copied`, join(work, 'back')])).code).toBe(0);
      expect(await readFile(join(work, 'back', 'sub', 'f.txt'), 'utf8')).toBe('payload\n');
      expect((await engine(['cp', `${name}:/tmp/copied`, work])).code).toBe(0);
      expect(await readdir(join(work, 'copied'))).toEqual(['sub']);
      const missing = await engine(['cp', `${name}:/no/such/path`, work]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/Could not find the file \/no\/such\/path/);
      const diff = await engine(['diff', name]);
      expect(diff.stdout).toContain('A /tmp/copied');
      expect(diff.stdout).toContain('C /tmp');
      expect(diff.stdout.split('\n').sort()).toEqual((await docker(['diff', name])).stdout.split('\n').sort());
      expect((await engine(['export', '-o', join(work, 'fs.tar'), name])).code).toBe(0);
      expect((await readFile(join(work, 'fs.tar'))).length).toBeGreaterThan(1_000_000);
      const commit = await engine(['commit', '-c', 'CMD ["cat","/tmp/f.txt"]', '-m', 'snapshot', name, `${prefix}-img:v1`]);
      expect(commit.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
      expect(await engine(['run', '--rm', `${prefix}-img:v1`])).toMatchObject({ code: 0, stdout: 'payload\n' });
      const history = await engine(['history', '--format', '{{.Comment}}', `${prefix}-img:v1`]);
      expect(history.stdout.split('\n')[0]).toBe('snapshot');
    } finally {
      await engine(['rm', '-f', name]);
      await engine(['rmi', '-f', `${prefix}-img:v1`]);
    }
  });

  it('tags, saves, loads and removes images', async (ctx) => {
    if (skip) ctx.skip(skip);
    const work = await mkdtemp(join(home, 'img-'));
    expect((await engine(['tag', 'busybox', `${prefix}/tagged:one`])).code).toBe(0);
    expect((await engine(['images', '-q', `${prefix}/tagged`])).stdout).toBe((await docker(['images', '-q', `${prefix}/tagged`])).stdout);
    expect((await engine(['save', '-o', join(work, 'img.tar'), `${prefix}/tagged:one`])).code).toBe(0);
    expect(await engine(['rmi', `${prefix}/tagged:one`])).toMatchObject({ code: 0, stdout: `Untagged: ${prefix}/tagged:one\n` });
    const load = await engine(['load', '-i', join(work, 'img.tar')]);
    expect(load.stdout).toBe(`Loaded image: ${prefix}/tagged:one\n`);
    const rmi = await engine(['rmi', `${prefix}/tagged:one`, 'no-such-image:x']);
    expect(rmi.code).toBe(1);
    expect(rmi.stdout).toBe(`Untagged: ${prefix}/tagged:one\n`);
    expect(rmi.stderr).toMatch(/no-such-image/);
  });

  it('manages volumes and reports the system', async (ctx) => {
    if (skip) ctx.skip(skip);
    const vol = `${prefix}-vol`;
    expect(await engine(['volume', 'create', '--label', 'k=v', vol])).toMatchObject({ code: 0, stdout: `${vol}\n` });
    expect((await engine(['volume', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Label "k"}}', '--filter', `name=${vol}`])).stdout).toBe(`${vol} local v\n`);
    expect((await engine(['volume', 'ls'])).stdout.split('\n')[0]).toBe((await docker(['volume', 'ls'])).stdout.split('\n')[0]);
    expect(await engine(['run', '--rm', '-v', `${vol}:/data`, 'busybox', 'sh', '-c', 'echo kept > /data/f'])).toMatchObject({ code: 0 });
    expect((await engine(['run', '--rm', '-v', `${vol}:/data:ro`, 'busybox', 'cat', '/data/f'])).stdout).toBe('kept\n');
    expect((await engine(['volume', 'inspect', '-f', '{{.Name}} {{.Labels}}', vol])).stdout).toBe(`${vol} map[k:v]\n`);
    expect(await engine(['volume', 'rm', vol])).toMatchObject({ code: 0, stdout: `${vol}\n` });
    const df = await engine(['system', 'df']);
    expect(df.stdout.split('\n')[0]).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/);
    expect(df.stdout).toMatch(/^Images\s+\d+\s+\d+\s+\S+\s+\S+/m);
    expect((await engine(['info', '--format', '{{.OSType}}/{{.ClientInfo.ApiVersion}}'])).stdout).toBe('linux/1.47\n');
    expect((await engine(['version', '--format', '{{.Server.ApiVersion}}'])).stdout).toBe('1.41\n');
    expect((await engine(['network', 'ls', '--format', '{{.Name}}'])).stdout.split('\n').sort()).toEqual((await docker(['network', 'ls', '--format', '{{.Name}}'])).stdout.split('\n').sort());
  });

  it('replays events for a time window', async (ctx) => {
    if (skip) ctx.skip(skip);
    const since = Math.floor(Date.now() / 1000) - 1;
    const name = `${prefix}-ev`;
    await engine(['run', '--name', name, 'busybox', 'true']);
    await engine(['rm', name]);
    const until = Math.ceil(Date.now() / 1000) + 1;
    const events = await engine(['events', '--since', String(since), '--until', String(until), '--filter', `container=${name}`, '--format', '{{.Type}} {{.Action}}']);
    expect(events.code).toBe(0);
    expect(events.stdout.split('\n').filter(Boolean)).toEqual(expect.arrayContaining(['container create', 'container start', 'container die', 'container destroy']));
    const plain = await engine(['events', '--since', String(since), '--until', String(until), '--filter', `container=${name}`, '--filter', 'event=destroy']);
    expect(plain.stdout).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}(Z|[+-]\\d\\d:\\d\\d) container destroy [0-9a-f]{64} \\(.*name=${name}.*\\)\\n$`));
    // docker's Go fields of the JSON's scope, time and timeNano; the JSON itself as docker's.
    const window = ['events', '--since', String(since), '--until', String(until), '--filter', `container=${name}`, '--filter', 'event=destroy'];
    const timed = await engine([...window, '--format', '{{.Scope}} {{.Time}} {{.TimeNano}}']);
    const [scope, seconds, nanos] = timed.stdout.trim().split(' ');
    expect(scope).toBe('local');
    expect(Number(seconds)).toBeGreaterThanOrEqual(since);
    expect(Math.floor(Number(nanos) / 1e9)).toBe(Number(seconds));
    const json = JSON.parse((await engine([...window, '--format', 'json'])).stdout) as Record<string, unknown>;
    expect(Object.keys(json)).toEqual(expect.arrayContaining(['scope', 'time', 'timeNano']));
    expect(json).not.toHaveProperty('TimeNano');
  });
});
