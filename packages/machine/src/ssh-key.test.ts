import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SshKeyPair } from './ssh-key.js';

const run = promisify(execFile);
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-sshkey-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('SshKeyPair', () => {
  for (const type of ['ed25519', 'rsa'] as const) {
    it(`makes ${type} keys that OpenSSH reads, with the same fingerprint`, async () => {
      const pair = await SshKeyPair.generate({ type, bits: 2048, comment: 'berth-test' });
      const path = join(dir, `id_${type}`);
      await pair.write(path);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      const { stdout: pub } = await run('ssh-keygen', ['-y', '-f', path]);
      expect(pair.publicKey.startsWith(pub.trim().split(' ').slice(0, 2).join(' '))).toBe(true);
      const { stdout: fp } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${path}.pub`]);
      expect(fp.split(' ')[1]).toBe(pair.fingerprint());
      const back = await SshKeyPair.read(path);
      expect(back.type).toBe(type);
      expect(back.publicKey).toBe(pair.publicKey);
    });
  }

  it('reads a key made by ssh-keygen without its .pub file', async () => {
    const path = join(dir, 'k');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path]);
    await rm(`${path}.pub`);
    const pair = await SshKeyPair.read(path);
    expect(pair.type).toBe('ed25519');
    expect(pair.publicKey).toMatch(/^ssh-ed25519 AAAA/);
  });

  it('names the file when a key is missing or not a key', async () => {
    await expect(SshKeyPair.read(join(dir, 'nope'))).rejects.toMatchObject({ kind: 'NotFound', message: expect.stringContaining('nope') });
    await expect(SshKeyPair.generate({ type: 'rsa', bits: 512 })).rejects.toMatchObject({ code: 'ERR_SSH_KEY_TYPE' });
  });
});
