import { ErrorKind } from '@berth/errors';
import { EngineErrorCode, engineError } from '../engine.js';

/** A Docker Hub mirror (dockerd's `--registry-mirror`): the registry host, and whether it speaks plain HTTP. */
export interface RegistryMirror {
  /** `host[:port]`, as a reference's domain names a registry. */
  readonly host: string;
  /** An `http://` mirror: reached without TLS, as an insecure registry is. */
  readonly insecure: boolean;
}

/**
 * Reads a mirror as dockerd takes it: an `http://` or `https://` URL of a host, with no path
 * (a trailing `/` aside), query or credentials.
 */
export function parseRegistryMirror(text: string): RegistryMirror {
  const invalid = (why: string) =>
    engineError(`invalid registry mirror ${JSON.stringify(text)}: ${why}`, EngineErrorCode.InvalidParameter, ErrorKind.InvalidArgument);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid('want a URL such as https://mirror.example.com');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('the scheme must be http or https');
  if (url.pathname !== '/' && url.pathname !== '') throw invalid('a mirror is a host: it cannot have a path');
  if (url.search || url.hash || url.username || url.password) throw invalid('a mirror is a host: no query, fragment or credentials');
  return { host: url.host, insecure: url.protocol === 'http:' };
}
