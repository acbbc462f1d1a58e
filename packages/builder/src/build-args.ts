import { formatPlatform, hostPlatform, type Platform } from '@berth/oci';
import type { ArgInstruction } from './dockerfile-ast.js';
import { DockerfileError, BuilderErrorCode, ExpansionError } from './errors.js';
import { expandWord, type EscapeToken } from './word-expansion.js';

/**
 * Build args docker passes to RUN without an ARG instruction. They stay out of the cache key
 * and the image history unless the Dockerfile declares them.
 */
export const proxyBuildArgs: ReadonlySet<string> = new Set([
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
]);

/** The platforms a build runs on and builds for; both default to this host's. */
export interface BuildPlatforms {
  readonly build?: Platform;
  readonly target?: Platform;
}

/**
 * The automatic platform args (`BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`, `BUILDVARIANT` and the
 * `TARGET*` set), which are in the global scope without being declared.
 */
export function platformArgs(platforms: BuildPlatforms = {}): Map<string, string> {
  const build = platforms.build ?? hostPlatform();
  const target = platforms.target ?? build;
  const args = new Map<string, string>();
  for (const [prefix, p] of [
    ['BUILD', build],
    ['TARGET', target],
  ] as const) {
    args.set(`${prefix}PLATFORM`, formatPlatform(p));
    args.set(`${prefix}OS`, p.os);
    args.set(`${prefix}ARCH`, p.architecture);
    args.set(`${prefix}VARIANT`, p.variant ?? '');
  }
  return args;
}

/** What `resolveMetaArgs` needs. */
export interface MetaArgOptions {
  readonly file?: string;
  readonly escapeToken?: EscapeToken;
  readonly buildArgs?: Readonly<Record<string, string>>;
  readonly platforms?: BuildPlatforms;
}

/**
 * The global scope of a Dockerfile: the automatic platform args, then each ARG before the
 * first FROM in order, its value taken from the build args when given, else its default
 * expanded against the args before it. An ARG declared without a value and not given stays
 * unset. FROM lines expand against this scope.
 */
export function resolveMetaArgs(metaArgs: readonly ArgInstruction[], options: MetaArgOptions = {}): Map<string, string> {
  const scope = platformArgs(options.platforms);
  const given = options.buildArgs ?? {};
  for (const instruction of metaArgs) {
    for (const def of instruction.definitions) {
      if (Object.hasOwn(given, def.key)) scope.set(def.key, given[def.key]!);
      else if (def.value !== undefined) {
        try {
          scope.set(def.key, expandWord(def.value, scope, options.escapeToken ? { escapeToken: options.escapeToken } : {}).value);
        } catch (err) {
          if (!(err instanceof ExpansionError)) throw err;
          throw new DockerfileError({
            file: options.file ?? 'Dockerfile',
            line: instruction.startLine,
            reason: err.message,
            code: BuilderErrorCode.DockerfileExpansion,
            cause: err,
          });
        }
      }
    }
  }
  return scope;
}
