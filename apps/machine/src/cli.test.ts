import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runMachine, splitCommand } from './cli.js';
import { driverFromArgv } from './commands/create.js';
import { lsRow, parseFilters } from './commands/ls.js';
import { detectShell, renderEnv } from './format/shell-env.js';
import { alignColumns, parseFormat, renderTemplate, templateFields } from './format/template.js';

let store: string;
beforeEach(async () => {
  store = await mkdtemp(join(tmpdir(), 'berth-cli-'));
});
afterEach(async () => {
  await rm(store, { recursive: true, force: true });
});

async function machine(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await runMachine({
    stdin: new PassThrough(),
    stdout,
    stderr,
    env: { MACHINE_STORAGE_PATH: store, ...env },
    platform: 'linux',
    argv0: 'machine',
    args,
    signal: new AbortController().signal,
  });
  return { code, stdout: out, stderr: err };
}

describe('the machine command line', () => {
  it('prints results on stdout, and exits 2 on a usage error, 1 on a failure', async () => {
    expect(await machine(['version'])).toEqual({ code: 0, stdout: 'machine version 0.1.0\n', stderr: '' });
    expect((await machine(['ls'])).stdout).toBe('NAME   ACTIVE   DRIVER   STATE   URL   CPU   MEMORY   DOCKER   ERRORS\n');
    const usage = await machine(['ls', '--bogus']);
    expect(usage.code).toBe(2);
    expect(usage.stdout).toBe('');
    expect(usage.stderr).toMatch(/^machine: Unknown argument: bogus/);
    const missing = await machine(['status', 'nope']);
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toBe('machine: host "nope" does not exist\n');
    const driverless = await machine(['create', '-d', 'nope', 'h1']);
    expect(driverless.code).toBe(1);
    expect(driverless.stderr).toContain('driver "nope" not found (available: generic, virtualbox, aws (amazonec2), gcp (google), azure)');
    expect((await machine(['create', '-d', 'generic', 'h1'])).stderr).toContain('--generic-ip-address is required');
    expect((await machine(['env', '-u', 'h1'])).code).toBe(2);
    expect((await machine(['ip'])).stderr).toContain('no host named "default"');
  });

  it('lists a driver and its flags, with env vars and aliases, under create --help', async () => {
    const help = await machine(['create', '-d', 'generic', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--generic-ssh-port');
    expect(help.stdout).toMatch(/SSH port \[default: 22\] \[env: GENERIC_SSH_PORT\]/);
    expect(help.stdout).toContain('Drivers: generic, virtualbox, aws (amazonec2), gcp (google), azure');
  });

  it('finds the command and the driver before parsing', () => {
    expect(splitCommand(['-s', '/x', '--debug', 'ssh', 'h1', 'ls', '-l'])).toEqual({ globals: ['-s', '/x', '--debug'], command: 'ssh', rest: ['h1', 'ls', '-l'] });
    expect(driverFromArgv(['--driver=aws', 'h'], {})).toBe('aws');
    expect(driverFromArgv(['-d', 'gcp', 'h'], {})).toBe('gcp');
    expect(driverFromArgv(['-dazure', 'h'], {})).toBe('azure');
    expect(driverFromArgv(['h'], { MACHINE_DRIVER: 'generic' })).toBe('generic');
    expect(driverFromArgv(['h'], {})).toBe('virtualbox');
  });
});

describe('formats', () => {
  it('renders Go-template-like formats and tables', () => {
    const format = parseFormat('table {{.Name}}\\t{{.State}}\\t{{json .Labels}}');
    expect(format.table).toBe(true);
    expect(templateFields(format.template)).toEqual(['Name', 'State', 'Labels']);
    expect(renderTemplate(format.template, { Name: 'h1', State: 'Running', Labels: ['a=b'] })).toBe('h1\tRunning\t["a=b"]');
    expect(renderTemplate('{{.driver.ipAddress}} {{upper .s}} {{.missing}}', { driver: { ipAddress: '10.0.0.1' }, s: 'x' })).toBe('10.0.0.1 X <no value>');
    expect(() => renderTemplate('{{range .}}', {})).toThrow(/cannot evaluate/);
    expect(alignColumns(['NAME\tSTATE', 'a-long-name\tRunning'])).toBe('NAME          STATE\na-long-name   Running\n');
  });

  it('shows ls rows as docker-machine does, with used/total CPU and memory', () => {
    const row = lsRow(
      { name: 'h1', driverName: 'generic', state: 'Running', url: 'tcp://1.2.3.4:2376', engineVersion: 'v0.1.0', error: '', labels: ['a=b'], cpu: { used: 0.5, total: 2 }, memory: { used: 512 * 1024 ** 2, total: 2 * 1024 ** 3 } },
      'tcp://1.2.3.4:2376',
      12,
    );
    expect(row).toMatchObject({ Active: '*', CPU: '0.50/2', Memory: '512MiB/2.0GiB', DockerVersion: 'v0.1.0', ResponseTime: '12ms' });
    expect(lsRow({ name: 'h2', driverName: 'generic', state: 'Stopped', url: '', engineVersion: '', error: '', labels: [] }, 'tcp://1.2.3.4:2376', 1)).toMatchObject({ Active: '-', CPU: '-', Memory: '-', DockerVersion: '' });
    expect(parseFilters(['state=Running', 'state=stopped', 'label=a=b'])).toEqual(new Map([['state', ['Running', 'stopped']], ['label', ['a=b']]]));
    expect(() => parseFilters(['swarm=x'])).toThrow(/unknown filter/);
  });

  it('writes env for each shell, with the hint that repeats the command', () => {
    const vars = [{ name: 'DOCKER_HOST', value: 'tcp://1.2.3.4:2376' }, { name: 'DOCKER_CERT_PATH', value: 'C:\\Users\\me "x"' }];
    const argv = ['machine', 'env', 'h1'];
    expect(renderEnv('bash', vars, argv)).toBe(
      'export DOCKER_HOST="tcp://1.2.3.4:2376"\nexport DOCKER_CERT_PATH="C:\\\\Users\\\\me \\"x\\""\n# Run this command to configure your shell: \n# eval $(machine env h1)\n',
    );
    expect(renderEnv('fish', vars, argv)).toContain('set -gx DOCKER_HOST "tcp://1.2.3.4:2376";\n');
    expect(renderEnv('fish', vars, argv)).toContain('# eval (machine env h1)');
    expect(renderEnv('powershell', vars, argv)).toContain('$Env:DOCKER_HOST = "tcp://1.2.3.4:2376"\n');
    expect(renderEnv('powershell', vars, argv)).toContain('# & machine env h1 | Invoke-Expression');
    expect(renderEnv('cmd', vars, argv)).toContain("SET DOCKER_HOST=tcp://1.2.3.4:2376\nSET DOCKER_CERT_PATH=C:\\Users\\me \"x\"\nREM Run this command to configure your shell: \nREM @FOR /f \"tokens=*\" %i IN ('machine env h1') DO @%i");
    expect(renderEnv('bash', [{ name: 'DOCKER_HOST', value: undefined }], ['machine', 'env', '-u'])).toContain('unset DOCKER_HOST\n');
    expect(renderEnv('powershell', [{ name: 'DOCKER_HOST', value: undefined }], ['machine'])).toContain('Remove-Item Env:\\\\DOCKER_HOST');
    expect(detectShell({ SHELL: '/usr/bin/zsh' }, 'linux')).toBe('zsh');
    expect(detectShell({ PSModulePath: 'x' }, 'win32')).toBe('powershell');
    expect(detectShell({}, 'win32')).toBe('cmd');
    expect(() => detectShell({}, 'linux')).toThrow(/--shell/);
  });
});
