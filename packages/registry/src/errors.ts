import { BerthError, ErrorKind } from '@berth/errors';

/** Errors of the registry client. Branch on `code` or `kind`, never on the message. */
export class RegistryError extends BerthError {
  /** The HTTP status the registry answered with, when the error came from a response. */
  readonly status: number | undefined;
  /** The registry's own error codes (`MANIFEST_UNKNOWN`, `DENIED`, ...) from its JSON body. */
  readonly registryCodes: readonly string[];

  constructor(
    message: string,
    options: { code: string; kind: ErrorKind; cause?: unknown; status?: number; registryCodes?: readonly string[] },
  ) {
    super(message, options);
    this.status = options.status;
    this.registryCodes = options.registryCodes ?? [];
  }
}

export const RegistryErrorCode = {
  /** Credentials missing or refused (HTTP 401). */
  Unauthorized: 'ERR_REGISTRY_UNAUTHORIZED',
  /** Authenticated, but not allowed to do this (HTTP 403, `DENIED`). */
  Denied: 'ERR_REGISTRY_DENIED',
  ManifestUnknown: 'ERR_MANIFEST_UNKNOWN',
  BlobUnknown: 'ERR_BLOB_UNKNOWN',
  NameUnknown: 'ERR_NAME_UNKNOWN',
  /** The registry cannot be reached, or keeps failing with 5xx/429 after the retries. */
  Unavailable: 'ERR_REGISTRY_UNAVAILABLE',
  /** The registry refused what was sent (400: invalid manifest, digest, name or tag). */
  Rejected: 'ERR_REGISTRY_REJECTED',
  /** The registry answered in a way the distribution protocol does not allow. */
  Protocol: 'ERR_REGISTRY_PROTOCOL',
  DigestMismatch: 'ERR_DIGEST_MISMATCH',
  NoMatchingPlatform: 'ERR_NO_MATCHING_PLATFORM',
  /** Content a push needs is neither in the local store nor in the target repository. */
  MissingContent: 'ERR_MISSING_CONTENT',
  /** A `docker-credential-*` helper failed or is missing. */
  CredentialHelper: 'ERR_CREDENTIAL_HELPER',
  /** The Docker config file cannot be read or written. */
  Config: 'ERR_DOCKER_CONFIG',
  InvalidOption: 'ERR_INVALID_OPTION',
} as const;
export type RegistryErrorCode = (typeof RegistryErrorCode)[keyof typeof RegistryErrorCode];

/** One entry of the distribution error body `{"errors":[{code,message,detail}]}`. */
export interface DistributionError {
  readonly code: string;
  readonly message?: string;
  readonly detail?: unknown;
}

/** The errors of a distribution error body, or none when the body is not one. */
export function parseDistributionErrors(body: string): DistributionError[] {
  try {
    const parsed = JSON.parse(body) as { errors?: unknown };
    if (!Array.isArray(parsed.errors)) return [];
    return parsed.errors.filter(
      (e): e is DistributionError => typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string',
    );
  } catch {
    return [];
  }
}

/**
 * The errors as docker prints them: `manifest unknown: manifest unknown` (the code in lower
 * case with spaces, then the message), several joined with "; ".
 */
export function describeDistributionErrors(errors: readonly DistributionError[]): string {
  return errors.map((e) => `${e.code.toLowerCase().replaceAll('_', ' ')}${e.message ? `: ${e.message}` : ''}`).join('; ');
}

/** What the client was doing when the registry answered with an error, for the message. */
export interface ResponseContext {
  /** `GET https://host/v2/...`. */
  readonly request: string;
  /** The registry as the user named it (`docker.io`, `127.0.0.1:5000`). */
  readonly registry: string;
  /** What was asked for, for NotFound messages: `manifest for busybox:nope`, `blob sha256:...`. */
  readonly subject?: string;
}

/** Maps an error response of a registry to a RegistryError with a stable code. */
export function responseError(status: number, body: string, context: ResponseContext): RegistryError {
  const errors = parseDistributionErrors(body);
  const codes = errors.map((e) => e.code);
  const described = describeDistributionErrors(errors) || `HTTP ${status}${body.trim() ? `: ${body.trim().slice(0, 200)}` : ''}`;
  const base = { status, registryCodes: codes };
  const has = (code: string) => codes.includes(code);
  if (status === 401 || has('UNAUTHORIZED')) {
    return new RegistryError(`${context.request}: ${described} (registry ${context.registry}; log in with the right credentials)`, {
      ...base, code: RegistryErrorCode.Unauthorized, kind: ErrorKind.PermissionDenied,
    });
  }
  if (status === 403 || has('DENIED')) {
    return new RegistryError(`${context.request}: ${described} (registry ${context.registry})`, {
      ...base, code: RegistryErrorCode.Denied, kind: ErrorKind.PermissionDenied,
    });
  }
  if (has('MANIFEST_UNKNOWN') || (status === 404 && context.subject?.startsWith('manifest'))) {
    return new RegistryError(`${context.subject ?? 'manifest'} not found: ${described}`, {
      ...base, code: RegistryErrorCode.ManifestUnknown, kind: ErrorKind.NotFound,
    });
  }
  if (has('NAME_UNKNOWN')) {
    return new RegistryError(`${context.subject ? `${context.subject} not found: ` : ''}${described}`, {
      ...base, code: RegistryErrorCode.NameUnknown, kind: ErrorKind.NotFound,
    });
  }
  if (has('BLOB_UNKNOWN') || status === 404) {
    return new RegistryError(`${context.subject ?? context.request} not found: ${described}`, {
      ...base, code: RegistryErrorCode.BlobUnknown, kind: ErrorKind.NotFound,
    });
  }
  if (status === 429 || status >= 500) {
    return new RegistryError(`${context.request}: ${described} (registry ${context.registry})`, {
      ...base, code: RegistryErrorCode.Unavailable, kind: ErrorKind.Unavailable,
    });
  }
  if (status >= 400 && status < 500) {
    return new RegistryError(`${context.request}: ${described}`, { ...base, code: RegistryErrorCode.Rejected, kind: ErrorKind.InvalidArgument });
  }
  return new RegistryError(`${context.request}: unexpected HTTP ${status}${described ? `: ${described}` : ''}`, {
    ...base, code: RegistryErrorCode.Protocol, kind: ErrorKind.Internal,
  });
}
