import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalContentStore } from '@berth/store';
import { startRegistry, type RegistryRig, type RegistryRigOptions } from '@berth/tools/registry-rig';
import { pushBusyboxImage, type TestImage } from '@berth/tools/test-images';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DockerConfigCredentials, RegistryClient, StaticCredentials, type CredentialStore } from './index.js';

let dir: string;
let originalPath: string | undefined;
const rigs: RegistryRig[] = [];
const clients: RegistryClient[] = [];
const images: TestImage[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-auth-test-'));
  originalPath = process.env.PATH;
});

afterEach(async () => {
  process.env.PATH = originalPath;
  for (const c of clients.splice(0)) await c.close();
  for (const r of rigs.splice(0)) await r.stop();
  for (const i of images.splice(0)) await i.remove();
  await rm(dir, { recursive: true, force: true });
});

async function rig(options: RegistryRigOptions): Promise<RegistryRig> {
  const r = await startRegistry(options);
  rigs.push(r);
  images.push(await pushBusyboxImage(r, 'private/busybox:latest', { layers: 2 }));
  return r;
}

function client(credentials?: CredentialStore): RegistryClient {
  const c = new RegistryClient({ retryDelayMs: 10, ...(credentials ? { credentials } : {}) });
  clients.push(c);
  return c;
}

function store(name = 'store'): LocalContentStore {
  return new LocalContentStore({ root: join(dir, name) });
}

const userPass = (r: RegistryRig) => {
  const [username, password] = r.creds!.split(':') as [string, string];
  return { username, password };
};

/**
 * Installs `docker-credential-berthtest` on PATH: a helper keeping credentials in a JSON file,
 * answering as docker-credential-helpers do, and logging each call.
 */
async function installHelper(): Promise<{ storeFile: string; callsFile: string }> {
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  const storeFile = join(dir, 'helper-store.json');
  const callsFile = join(dir, 'helper-calls.log');
  await writeFile(storeFile, '{}');
  const script = `#!${process.execPath}
const fs = require('node:fs');
const action = process.argv[2];
const input = fs.readFileSync(0, 'utf8');
const db = JSON.parse(fs.readFileSync(${JSON.stringify(storeFile)}, 'utf8'));
fs.appendFileSync(${JSON.stringify(callsFile)}, action + ' ' + (action === 'store' ? JSON.parse(input).ServerURL : input) + '\\n');
if (action === 'get') {
  if (!db[input]) { process.stdout.write('credentials not found in native keychain'); process.exit(1); }
  process.stdout.write(JSON.stringify({ ServerURL: input, Username: db[input].Username, Secret: db[input].Secret }));
} else if (action === 'store') {
  const c = JSON.parse(input);
  db[c.ServerURL] = { Username: c.Username, Secret: c.Secret };
  fs.writeFileSync(${JSON.stringify(storeFile)}, JSON.stringify(db));
} else if (action === 'erase') {
  if (!db[input]) { process.stdout.write('credentials not found in native keychain'); process.exit(1); }
  delete db[input];
  fs.writeFileSync(${JSON.stringify(storeFile)}, JSON.stringify(db));
} else { process.stderr.write('unknown action ' + action); process.exit(2); }
`;
  const path = join(bin, 'docker-credential-berthtest');
  await writeFile(path, script);
  // CommonJS for `require`, whatever the nearest package.json says.
  await writeFile(join(bin, 'package.json'), '{"type":"commonjs"}');
  await chmod(path, 0o755);
  process.env.PATH = `${bin}:${process.env.PATH}`;
  return { storeFile, callsFile };
}

describe('basic auth (htpasswd)', () => {
  it('refuses anonymous pulls with an error naming the registry', async () => {
    const r = await rig({ auth: 'basic' });
    const err = await client().pull(`${r.host}/private/busybox`, { content: store() }).result.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_REGISTRY_UNAUTHORIZED', kind: 'PermissionDenied', status: 401 });
    expect((err as Error).message).toContain(`no credentials for ${r.host}; run 'engine login ${r.host}'`);
  });

  it('pulls with the right password and refuses a wrong one', async () => {
    const r = await rig({ auth: 'basic' });
    const ok = await client(new StaticCredentials({ entries: { [r.host]: userPass(r) } })).pull(`${r.host}/private/busybox`, { content: store() }).result;
    expect(ok.manifest.layers).toHaveLength(2);
    const wrong = new StaticCredentials({ entries: { [r.host]: { username: userPass(r).username, password: 'wrong' } } });
    await expect(client(wrong).pull(`${r.host}/private/busybox`, { content: store('wrong') }).result).rejects.toMatchObject({
      code: 'ERR_REGISTRY_UNAUTHORIZED',
      message: expect.stringContaining(`registry ${r.host}`),
    });
  });

  it('checks credentials at login as docker login does', async () => {
    const r = await rig({ auth: 'basic' });
    await expect(client().login(r.host, userPass(r))).resolves.toEqual({});
    await expect(client().login(r.host, { username: 'berth', password: 'nope' })).rejects.toMatchObject({ code: 'ERR_REGISTRY_UNAUTHORIZED' });
  });
});

describe('bearer tokens (token server)', () => {
  it('asks for pull scope to pull and pull,push to push', async () => {
    const r = await rig({ auth: 'token' });
    const creds = new StaticCredentials({ entries: { [r.host]: userPass(r) } });
    const c = client(creds);
    const content = store();
    const pulled = await c.pull(`${r.host}/private/busybox:latest`, { content }).result;
    await c.push(`${r.host}/team/copy:1`, { content, manifestDigest: pulled.manifestDescriptor.digest }).result;
    const user = userPass(r).username;
    const scopes = r.tokenRequests.filter((t) => t.user === user).map((t) => t.scopes.join(' '));
    expect(scopes).toContain('repository:private/busybox:pull');
    // The push mounts from the repository it pulled from, so it asks for pull there too.
    expect(scopes).toContain('repository:team/copy:pull,push repository:private/busybox:pull');
    // Tokens are cached: one per scope set, not one per request.
    expect(new Set(scopes).size).toBe(scopes.length);
  });

  it('refuses anonymous pulls and wrong passwords, and pushes without push access', async () => {
    const r = await rig({
      auth: 'token',
      users: { writer: 'write-pass', reader: 'read-pass' },
      grant: (user, _repo, requested) => (user === 'writer' ? requested : user === 'reader' ? requested.filter((a) => a === 'pull') : []),
    });
    const anonymous = await client().pull(`${r.host}/private/busybox`, { content: store() }).result.catch((e: unknown) => e);
    expect(anonymous).toMatchObject({ code: 'ERR_REGISTRY_UNAUTHORIZED', kind: 'PermissionDenied' });
    expect((anonymous as Error).message).toContain(r.host);

    const wrong = new StaticCredentials({ entries: { [r.host]: { username: 'reader', password: 'bad' } } });
    await expect(client(wrong).pull(`${r.host}/private/busybox`, { content: store('w') }).result).rejects.toMatchObject({
      code: 'ERR_REGISTRY_UNAUTHORIZED',
    });

    const reader = client(new StaticCredentials({ entries: { [r.host]: { username: 'reader', password: 'read-pass' } } }));
    const content = store('r');
    const pulled = await reader.pull(`${r.host}/private/busybox`, { content }).result;
    await expect(reader.push(`${r.host}/private/busybox:copy`, { content, manifestDigest: pulled.manifestDescriptor.digest }).result).rejects.toMatchObject({
      code: 'ERR_REGISTRY_UNAUTHORIZED',
    });
    const writer = client(new StaticCredentials({ entries: { [r.host]: { username: 'writer', password: 'write-pass' } } }));
    await writer.push(`${r.host}/private/busybox:copy`, { content, manifestDigest: pulled.manifestDescriptor.digest }).result;
  });

  it('keeps the identity token a login gets and uses it with the OAuth2 POST', async () => {
    const r = await rig({ auth: 'token' });
    const login = await client().login(r.host, userPass(r));
    expect(login.identityToken).toMatch(/^[0-9a-f]{32}$/);
    const config = new DockerConfigCredentials({ configFile: join(dir, 'docker', 'config.json') });
    await config.store(r.host, { username: userPass(r).username, identityToken: login.identityToken! });
    const before = r.tokenRequests.length;
    await client(config).pull(`${r.host}/private/busybox`, { content: store() }).result;
    const used = r.tokenRequests.slice(before);
    expect(used.map((t) => [t.method, t.user])).toContainEqual(['POST', userPass(r).username]);
  });
});

describe('docker config.json', () => {
  it('reads auths, as docker login writes them, for basic and token registries', async () => {
    const basic = await rig({ auth: 'basic' });
    const token = await rig({ auth: 'token' });
    const configFile = join(dir, 'config.json');
    const auth = (r: RegistryRig) => ({ auth: Buffer.from(r.creds!).toString('base64') });
    // docker accepts keys written with a scheme too.
    await writeFile(configFile, JSON.stringify({ auths: { [basic.host]: auth(basic), [`https://${token.host}`]: auth(token) } }));
    const c = client(new DockerConfigCredentials({ configFile }));
    await c.pull(`${basic.host}/private/busybox`, { content: store('a') }).result;
    await c.pull(`${token.host}/private/busybox`, { content: store('b') }).result;
  });

  it('writes logins as docker does: base64 auth, tab indent, mode 0600, other fields kept; logout removes them', async () => {
    const configFile = join(dir, 'dot-docker', 'config.json');
    await mkdir(join(dir, 'dot-docker'));
    await writeFile(configFile, JSON.stringify({ psFormat: 'table {{.ID}}', auths: { 'https://index.docker.io/v1/': { auth: 'aHViOnB3' } } }));
    const config = new DockerConfigCredentials({ configFile });
    await config.store('127.0.0.1:5000', { username: 'me', password: 's3cret' });
    const text = await readFile(configFile, 'utf8');
    expect(text).toContain('\n\t"auths": {');
    expect(JSON.parse(text)).toEqual({
      psFormat: 'table {{.ID}}',
      auths: { 'https://index.docker.io/v1/': { auth: 'aHViOnB3' }, '127.0.0.1:5000': { auth: Buffer.from('me:s3cret').toString('base64') } },
    });
    expect((await stat(configFile)).mode & 0o777).toBe(0o600);
    expect(await config.get('127.0.0.1:5000')).toEqual({ username: 'me', password: 's3cret' });
    expect(await config.get('docker.io')).toEqual({ username: 'hub', password: 'pw' });
    expect(await config.erase('127.0.0.1:5000')).toBe(true);
    expect(await config.erase('127.0.0.1:5000')).toBe(false);
    expect(JSON.parse(await readFile(configFile, 'utf8')).auths).toEqual({ 'https://index.docker.io/v1/': { auth: 'aHViOnB3' } });
  });

  it('creates the file on first login and reports a broken one by name', async () => {
    const configFile = join(dir, 'new', 'config.json');
    const config = new DockerConfigCredentials({ configFile });
    expect(await config.get('docker.io')).toBeUndefined();
    await config.store('docker.io', { username: 'me', password: 'pw' });
    expect(JSON.parse(await readFile(configFile, 'utf8'))).toEqual({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('me:pw').toString('base64') } } });
    await writeFile(configFile, '{ not json');
    await expect(config.get('docker.io')).rejects.toMatchObject({ code: 'ERR_DOCKER_CONFIG', message: `${configFile} is not valid JSON` });
  });

  it('uses a credHelpers helper for its registry, for get, login (store) and logout (erase)', async () => {
    const r = await rig({ auth: 'token' });
    const { storeFile, callsFile } = await installHelper();
    const configFile = join(dir, 'config.json');
    await writeFile(configFile, JSON.stringify({ credHelpers: { [r.host]: 'berthtest' } }, null, '\t'));
    const config = new DockerConfigCredentials({ configFile });

    await expect(client(config).pull(`${r.host}/private/busybox`, { content: store('a') }).result).rejects.toMatchObject({
      code: 'ERR_REGISTRY_UNAUTHORIZED',
    });
    await config.store(r.host, userPass(r));
    expect(JSON.parse(await readFile(storeFile, 'utf8'))).toEqual({ [r.host]: { Username: userPass(r).username, Secret: userPass(r).password } });
    expect(JSON.parse(await readFile(configFile, 'utf8'))).toEqual({ credHelpers: { [r.host]: 'berthtest' }, auths: { [r.host]: {} } });

    const pulled = await client(config).pull(`${r.host}/private/busybox`, { content: store('b') }).result;
    expect(pulled.manifest.layers).toHaveLength(2);
    expect(await config.erase(r.host)).toBe(true);
    expect(JSON.parse(await readFile(storeFile, 'utf8'))).toEqual({});
    expect((await readFile(callsFile, 'utf8')).trim().split('\n')).toEqual([`get ${r.host}`, `store ${r.host}`, `get ${r.host}`, `erase ${r.host}`]);
  });

  it('uses credsStore for every registry, storing identity tokens under <token>', async () => {
    const { storeFile } = await installHelper();
    const configFile = join(dir, 'config.json');
    await writeFile(configFile, JSON.stringify({ credsStore: 'berthtest' }));
    const config = new DockerConfigCredentials({ configFile });
    await config.store('docker.io', { username: 'me', identityToken: 'refresh' });
    expect(JSON.parse(await readFile(storeFile, 'utf8'))).toEqual({ 'https://index.docker.io/v1/': { Username: '<token>', Secret: 'refresh' } });
    expect(await config.get('index.docker.io')).toEqual({ identityToken: 'refresh' });
    expect(await config.get('other.example')).toBeUndefined();
  });

  it('reports a missing helper program by name', async () => {
    const configFile = join(dir, 'config.json');
    await writeFile(configFile, JSON.stringify({ credsStore: 'berth-absent-helper' }));
    await expect(new DockerConfigCredentials({ configFile }).get('docker.io')).rejects.toMatchObject({
      code: 'ERR_CREDENTIAL_HELPER',
      message: 'credential helper docker-credential-berth-absent-helper not found in PATH',
    });
  });
});
