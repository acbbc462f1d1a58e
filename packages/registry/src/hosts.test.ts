import { describe, expect, it } from 'vitest';
import { parseChallenges, pickChallenge, tokenRequest } from './auth.js';
import { InsecureRegistries, credentialKey, normalizeRegistryName, registryApiHost } from './hosts.js';

describe('registry names', () => {
  it('maps Docker Hub to its API host and config key, as docker does', () => {
    expect(registryApiHost('docker.io')).toBe('registry-1.docker.io');
    expect(registryApiHost('127.0.0.1:5000')).toBe('127.0.0.1:5000');
    expect(credentialKey('docker.io')).toBe('https://index.docker.io/v1/');
    expect(credentialKey('localhost:5000')).toBe('localhost:5000');
    for (const hub of ['https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io', 'docker.io', '']) {
      expect(normalizeRegistryName(hub)).toBe('docker.io');
    }
    expect(normalizeRegistryName('https://Registry.Example.com:5000/v2/')).toBe('registry.example.com:5000');
    expect(normalizeRegistryName('http://127.0.0.1:5000')).toBe('127.0.0.1:5000');
  });
});

describe('insecure registries', () => {
  const resolve = async (host: string) => {
    const table: Record<string, string[]> = { localhost: ['127.0.0.1', '::1'], 'lan.example': ['10.1.2.3'], 'public.example': ['93.184.216.34'] };
    if (!table[host]) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return table[host]!;
  };

  it('treats loopback as insecure always, by address or by what a name resolves to', async () => {
    const insecure = new InsecureRegistries({ resolve });
    expect(await insecure.isInsecure('127.0.0.1:5000')).toBe(true);
    expect(await insecure.isInsecure('127.9.9.9')).toBe(true);
    expect(await insecure.isInsecure('[::1]:5000')).toBe(true);
    expect(await insecure.isInsecure('localhost:5000')).toBe(true);
    expect(await insecure.isInsecure('public.example')).toBe(false);
    expect(await insecure.isInsecure('unresolvable.example:443')).toBe(false);
    expect(await insecure.isInsecure('docker.io')).toBe(false);
  });

  it('adds --insecure-registry names (matched with their port) and CIDRs', async () => {
    const insecure = new InsecureRegistries({ resolve, registries: ['public.example:5000', '10.0.0.0/8', 'http://other.example'] });
    expect(await insecure.isInsecure('public.example:5000')).toBe(true);
    expect(await insecure.isInsecure('public.example')).toBe(false);
    expect(await insecure.isInsecure('lan.example:443')).toBe(true);
    expect(await insecure.isInsecure('10.200.0.1:5000')).toBe(true);
    expect(await insecure.isInsecure('other.example')).toBe(true);
    expect(() => new InsecureRegistries({ registries: ['10.0.0.0/40'] })).toThrow(/bad CIDR prefix/);
    expect(() => new InsecureRegistries({ registries: ['host/path'] })).toThrow(/want host\[:port\] or a CIDR/);
  });
});

describe('WWW-Authenticate', () => {
  it('parses Docker Hub bearer challenges with quoted commas and colons', () => {
    const header = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push",error="insufficient_scope"';
    expect(parseChallenges(header)).toEqual([
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull,push', error: 'insufficient_scope' },
      },
    ]);
  });

  it('parses several challenges in one header and prefers bearer', () => {
    const challenges = parseChallenges(['Basic realm="Registry Realm", Bearer realm="http://t/token", service=reg']);
    expect(challenges.map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(challenges[1]!.params).toEqual({ realm: 'http://t/token', service: 'reg' });
    expect(pickChallenge(challenges)?.scheme).toBe('bearer');
    expect(parseChallenges(undefined)).toEqual([]);
  });

  it('builds docker-style token requests: GET with scopes and account, POST with a refresh token', () => {
    const challenge = { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io' } };
    const get = tokenRequest(challenge, ['repository:library/busybox:pull'], { username: 'me', password: 'pw' });
    expect(get.method).toBe('GET');
    expect(get.url.href).toBe('https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fbusybox%3Apull&account=me');
    expect(get.headers.authorization).toBe(`Basic ${Buffer.from('me:pw').toString('base64')}`);
    const anonymous = tokenRequest(challenge, ['repository:library/busybox:pull'], undefined);
    expect(anonymous.headers.authorization).toBeUndefined();
    const post = tokenRequest(challenge, ['repository:a:pull', 'repository:b:pull'], { identityToken: 'refresh-me' });
    expect(post.method).toBe('POST');
    expect(Object.fromEntries(new URLSearchParams(post.body))).toMatchObject({
      grant_type: 'refresh_token',
      refresh_token: 'refresh-me',
      service: 'registry.docker.io',
      scope: 'repository:a:pull repository:b:pull',
    });
  });
});
