import type { AuthConfig } from '../types/common.js';

/**
 * `X-Registry-Auth` (one AuthConfig) and `X-Registry-Config` (registry → AuthConfig) are base64url
 * JSON. Docker treats an undecodable header as no credentials, and so does Berth.
 */
export function decodeRegistryAuth(header: string | string[] | undefined): AuthConfig | undefined {
  const value = decodeJsonHeader(header);
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const auth = pickAuth(value as Record<string, unknown>);
  return Object.keys(auth).length ? auth : undefined;
}

/** Decodes `X-Registry-Config`. */
export function decodeRegistryConfig(header: string | string[] | undefined): Record<string, AuthConfig> | undefined {
  const value = decodeJsonHeader(header);
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const out: Record<string, AuthConfig> = {};
  for (const [registry, auth] of Object.entries(value as Record<string, unknown>)) {
    if (auth && typeof auth === 'object') out[registry] = pickAuth(auth as Record<string, unknown>);
  }
  return out;
}

/** base64url JSON of a header value. */
export function encodeAuthHeader(value: AuthConfig | Readonly<Record<string, AuthConfig>>): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodeJsonHeader(header: string | string[] | undefined): unknown {
  const text = Array.isArray(header) ? header[0] : header;
  if (!text) return undefined;
  try {
    // base64url and standard base64 both decode with the base64 decoder once normalised.
    return JSON.parse(Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
}

const authFields = ['username', 'password', 'auth', 'email', 'serveraddress', 'identitytoken', 'registrytoken'] as const;

function pickAuth(value: Record<string, unknown>): AuthConfig {
  const auth: Record<string, string> = {};
  for (const field of authFields) {
    const v = value[field];
    if (typeof v === 'string' && v !== '') auth[field] = v;
  }
  return auth;
}
