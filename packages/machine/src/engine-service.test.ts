import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  engineEnvFile,
  engineServeArgs,
  openrcScript,
  rcLocalWithEngine,
  rcLocalWithoutEngine,
  serviceScripts,
  supervisorScript,
  systemdUnit,
  writeFileScript,
} from './engine-service.js';

const run = promisify(execFile);
const engine = { env: [], labels: ['team=a b'], opts: ['debug', 'log-level=warn'], insecureRegistries: ['10.0.0.1:5000'], registryMirrors: [] };
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-service-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('engine service', () => {
  it('serves TLS on the port with the labels and engine options', () => {
    expect(engineServeArgs(engine, { port: 2376, provider: 'generic' })).toEqual([
      'serve',
      '--host',
      'tcp://0.0.0.0:2376',
      '--host',
      'unix:///run/berth/berth.sock',
      '--tlsverify',
      '--tlscacert',
      '/etc/berth/ca.pem',
      '--tlscert',
      '/etc/berth/server.pem',
      '--tlskey',
      '/etc/berth/server-key.pem',
      '--label',
      'provider=generic',
      '--label',
      'team=a b',
      '--insecure-registry',
      '10.0.0.1:5000',
      '--debug',
      '--log-level=warn',
    ]);
    expect(() => engineServeArgs({ ...engine, labels: ['nolabel'] }, { port: 1, provider: 'x' })).toThrow(/not key=value/);
    expect(() => engineServeArgs({ ...engine, opts: ['; rm -rf /'] }, { port: 1, provider: 'x' })).toThrow(/engine opt/);
  });

  it('writes an env file that a shell reads back exactly', async () => {
    const values = ['HTTP_PROXY=http://p:3128', 'WEIRD=a "quoted" $HOME `x` \\ end', 'EMPTY='];
    const file = join(dir, 'env');
    await writeFile(file, engineEnvFile(values));
    const { stdout } = await run('sh', ['-c', `set -a; . ${file}; printf '%s\\n' "$HTTP_PROXY" "$WEIRD" "[$EMPTY]"`], { env: {} });
    expect(stdout).toBe('http://p:3128\na "quoted" $HOME `x` \\ end\n[]\n');
    expect(() => engineEnvFile(['1BAD=x'])).toThrow(/NAME=value/);
  });

  it('makes a systemd unit that systemd accepts, keeping containers on stop', async () => {
    const unit = systemdUnit(engineServeArgs(engine, { port: 2376, provider: 'generic' }));
    expect(unit).toContain('KillMode=process');
    expect(unit).toContain('ExecStart=/opt/berth/bin/engine serve --host tcp://0.0.0.0:2376');
    expect(unit).toContain('--label "team=a b"');
    const verify = await run('sh', ['-c', 'command -v systemd-analyze']).then(
      () => true,
      () => false,
    );
    if (!verify) return;
    const path = join(dir, 'berth-engine.service');
    // systemd-analyze checks the unit's syntax and that ExecStart's binary exists.
    await writeFile(path, unit.replace('/opt/berth/bin/engine', '/bin/true'));
    const result = await run('systemd-analyze', ['verify', '--man=no', path]).then(
      (r) => r.stderr,
      (err: { stderr?: string }) => err.stderr ?? 'failed',
    );
    expect(result.split('\n').filter((l) => l.includes('berth-engine.service') && !l.includes('Failed to create') && !l.includes('Unit is bound'))).toEqual([]);
  });

  it('makes shell scripts that parse, and quotes arguments in them', async () => {
    const args = engineServeArgs(engine, { port: 2376, provider: 'generic' });
    for (const [name, text] of [
      ['supervise', supervisorScript(args)],
      ['openrc', openrcScript(args)],
      ['install-supervised', serviceScripts('supervised', args, undefined).install],
      ['install-systemd', serviceScripts('systemd', args, undefined).install],
      ['uninstall', serviceScripts('supervised', args, '#!/bin/sh\necho mine\n').uninstall],
    ] as const) {
      const file = join(dir, name);
      await writeFile(file, text);
      await expect(run('sh', ['-n', file]), name).resolves.toBeDefined();
    }
    expect(supervisorScript(args)).toContain("'team=a b'");
  });

  it('adds the boot line to rc.local once, before exit 0, and takes it out again', () => {
    const original = '#!/bin/sh -e\necho mine\nexit 0\n';
    const added = rcLocalWithEngine(original);
    expect(added.indexOf('berth-engine begin')).toBeLessThan(added.indexOf('exit 0'));
    expect(rcLocalWithEngine(added)).toBe(added);
    expect(rcLocalWithoutEngine(added)).toBe(original);
    expect(rcLocalWithEngine(undefined)).toMatch(/^#!\/bin\/sh\n# berth-engine begin/);
  });

  it('writes files with a heredoc that survives any content', async () => {
    const target = join(dir, 'out');
    const content = "line with 'quotes' and $VARS and `ticks`\nEOF\nBERTH_\n";
    await run('sh', ['-c', writeFileScript(target, content, '640')]);
    expect(await readFile(target, 'utf8')).toBe(content);
    expect((await stat(target)).mode & 0o777).toBe(0o640);
  });
});
