import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { dockerHubDomain } from '@berth/oci';
import { RegistryError, RegistryErrorCode } from './errors.js';

/** Where Docker Hub's registry API lives; `docker.io` in a reference means this host. */
export const dockerHubRegistryHost = 'registry-1.docker.io';

/** The key docker uses for Docker Hub in config.json and with credential helpers. */
export const dockerHubCredentialKey = 'https://index.docker.io/v1/';

/** The host the registry API of `domain` is served from. */
export function registryApiHost(domain: string): string {
  return domain === dockerHubDomain ? dockerHubRegistryHost : domain;
}

/**
 * The registry named by a login/logout argument or a config.json key, as a reference domain:
 * scheme and path stripped, Docker Hub's names folded to `docker.io` (docker's ConvertToHostname).
 */
export function normalizeRegistryName(input: string): string {
  let host = input.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(host);
  if (scheme) host = host.slice(scheme[0].length);
  const slash = host.indexOf('/');
  if (slash >= 0) host = host.slice(0, slash);
  host = host.toLowerCase();
  if (host === '' || host === 'index.docker.io' || host === 'registry-1.docker.io' || host === 'docker.io' || host === 'registry.hub.docker.com') {
    return dockerHubDomain;
  }
  return host;
}

/** The config.json / credential-helper key of a registry: Docker Hub's URL, otherwise `host[:port]`. */
export function credentialKey(domain: string): string {
  const name = normalizeRegistryName(domain);
  return name === dockerHubDomain ? dockerHubCredentialKey : name;
}

function splitHostPort(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colons = host.split(':').length - 1;
  if (colons === 1) return host.slice(0, host.indexOf(':'));
  return host;
}

/** Options of `InsecureRegistries`. */
export interface InsecureRegistriesOptions {
  /** `--insecure-registry` values: `host[:port]` (matched exactly, as docker does) or CIDRs (`10.0.0.0/8`). */
  readonly registries?: readonly string[];
  /** Resolves a host name to addresses (default: the system resolver); injectable for hosts without DNS. */
  readonly resolve?: (host: string) => Promise<readonly string[]>;
}

async function systemResolve(host: string): Promise<readonly string[]> {
  const found = await lookup(host, { all: true });
  return found.map((a) => a.address);
}

/**
 * Docker's rule for which registries may be spoken to without verified TLS: those named with
 * `--insecure-registry` and every host that resolves into an insecure CIDR, which always
 * include loopback (127.0.0.0/8 and ::1). For them docker tries HTTPS without verification
 * first and falls back to plain HTTP.
 */
export class InsecureRegistries {
  readonly #names = new Set<string>();
  readonly #cidrs = new BlockList();
  readonly #resolve: (host: string) => Promise<readonly string[]>;
  readonly #cache = new Map<string, Promise<boolean>>();

  constructor(options: InsecureRegistriesOptions = {}) {
    this.#resolve = options.resolve ?? systemResolve;
    this.#cidrs.addSubnet('127.0.0.0', 8, 'ipv4');
    this.#cidrs.addSubnet('::1', 128, 'ipv6');
    for (const entry of options.registries ?? []) {
      const value = entry.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/$/, '');
      const slash = value.indexOf('/');
      if (slash > 0 && isIP(value.slice(0, slash))) {
        const prefix = Number(value.slice(slash + 1));
        const address = value.slice(0, slash);
        const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
        if (!Number.isInteger(prefix) || prefix < 0 || prefix > (type === 'ipv4' ? 32 : 128)) {
          throw new RegistryError(`insecure registry ${JSON.stringify(entry)}: bad CIDR prefix`, {
            code: RegistryErrorCode.InvalidOption,
            kind: 'InvalidArgument',
          });
        }
        this.#cidrs.addSubnet(address, prefix, type);
      } else if (value !== '' && !value.includes('/')) {
        this.#names.add(value.toLowerCase());
      } else {
        throw new RegistryError(`insecure registry ${JSON.stringify(entry)}: want host[:port] or a CIDR`, {
          code: RegistryErrorCode.InvalidOption,
          kind: 'InvalidArgument',
        });
      }
    }
  }

  /** True when `host` (`name[:port]`, as in a reference) may use plain HTTP or unverified TLS. */
  isInsecure(host: string): Promise<boolean> {
    const key = host.toLowerCase();
    let cached = this.#cache.get(key);
    if (!cached) {
      cached = this.#decide(key);
      this.#cache.set(key, cached);
    }
    return cached;
  }

  async #decide(host: string): Promise<boolean> {
    if (this.#names.has(host)) return true;
    const name = splitHostPort(host);
    let addresses: readonly string[];
    if (isIP(name)) {
      addresses = [name];
    } else {
      // A name that does not resolve is treated as secure: nothing is lost, the connection fails anyway.
      addresses = await this.#resolve(name).catch(() => []);
    }
    return addresses.some((a) => this.#cidrs.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4'));
  }
}
