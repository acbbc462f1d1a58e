import { parseDigest, type Digest } from './digest.js';
import { OciError, OciErrorCode } from './errors.js';

/** A normalised image reference: `docker.io/library/busybox:latest`, `localhost:5000/a/b@sha256:...`. */
export interface ImageReference {
  /** Registry host with optional port, `docker.io` for Docker Hub. */
  readonly domain: string;
  /** Repository path inside the registry, `library/busybox` for official images. */
  readonly path: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

export const dockerHubDomain = 'docker.io';
export const defaultTag = 'latest';

const maxNameLength = 255;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainRe = new RegExp(`^(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const pathComponentRe = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const tagRe = /^[\w][\w.-]{0,127}$/;
const imageIdRe = /^[a-f0-9]{64}$/;

function invalid(input: string, why: string): OciError {
  return new OciError(`invalid reference ${JSON.stringify(input)}: ${why}`, { code: OciErrorCode.InvalidReference, kind: 'InvalidArgument' });
}

// Docker's rule: the first component is a registry only if it looks like a host (has a dot or
// a port, is localhost, or has capitals, which a repository may not).
function splitDomain(name: string): [string, string] {
  const slash = name.indexOf('/');
  const first = name.slice(0, slash);
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    return [dockerHubDomain, name];
  }
  return [first === 'index.docker.io' ? dockerHubDomain : first, name.slice(slash + 1)];
}

/**
 * Parses and normalises a reference as docker does: `busybox` is
 * `docker.io/library/busybox:latest`; `host:port/a/b:tag@sha256:...` keeps both tag and digest.
 * With `defaultTag: false`, a reference without tag or digest keeps neither (for "all tags").
 */
export function parseReference(input: string, options: { defaultTag?: boolean } = {}): ImageReference {
  if (input.length === 0) throw invalid(input, 'empty');
  if (imageIdRe.test(input)) throw invalid(input, 'cannot specify 64-byte hexadecimal strings as a reference');

  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    try {
      parseDigest(d);
    } catch (err) {
      throw new OciError(`invalid reference ${JSON.stringify(input)}: bad digest`, { code: OciErrorCode.InvalidReference, kind: 'InvalidArgument', cause: err });
    }
    digest = d as Digest;
    rest = rest.slice(0, at);
  }

  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!tagRe.test(tag)) throw invalid(input, `bad tag ${JSON.stringify(tag)} (letters, digits, _ . - up to 128, not starting with . or -)`);
  }

  const [domain, path] = splitDomain(rest);
  if (!domainRe.test(domain)) throw invalid(input, `bad registry host ${JSON.stringify(domain)}`);
  if (path.length === 0) throw invalid(input, 'missing repository name');
  for (const component of path.split('/')) {
    if (component !== component.toLowerCase()) throw invalid(input, 'repository name must be lowercase');
    if (!pathComponentRe.test(component)) throw invalid(input, `bad path component ${JSON.stringify(component)}`);
  }
  const fullPath = domain === dockerHubDomain && !path.includes('/') ? `library/${path}` : path;
  if (`${domain}/${fullPath}`.length > maxNameLength) throw invalid(input, `repository name longer than ${maxNameLength} characters`);

  if (tag === undefined && digest === undefined && options.defaultTag !== false) tag = defaultTag;
  return { domain, path: fullPath, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** `docker.io/library/busybox`: the repository without tag or digest. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The full normalised form, `docker.io/library/busybox:latest@sha256:...`. */
export function formatReference(ref: ImageReference): string {
  return repositoryName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}

/** The repository as docker prints it: `busybox`, `me/app`, `localhost:5000/app`. */
export function familiarName(ref: ImageReference): string {
  if (ref.domain !== dockerHubDomain) return repositoryName(ref);
  return ref.path.startsWith('library/') && ref.path.split('/').length === 2 ? ref.path.slice('library/'.length) : ref.path;
}

/** The reference as docker prints it: `busybox:latest`, `me/app@sha256:...`. */
export function familiarReference(ref: ImageReference): string {
  return familiarName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}

/** A copy of `ref` with another tag and no digest. */
export function withTag(ref: ImageReference, tag: string): ImageReference {
  if (!tagRe.test(tag)) throw invalid(tag, 'bad tag');
  return { domain: ref.domain, path: ref.path, tag };
}

/** A copy of `ref` pinned to `digest`, without its tag. */
export function withDigest(ref: ImageReference, digest: Digest): ImageReference {
  parseDigest(digest);
  return { domain: ref.domain, path: ref.path, digest };
}
