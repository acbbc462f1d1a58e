import { posix } from 'node:path';
import { ErrorKind } from '@berth/errors';
import { BuildContextError, BuilderErrorCode } from './errors.js';

/** Go's filepath.Clean for slash paths: `.`/`..` resolved, doubled and trailing slashes dropped. */
export function cleanPath(path: string): string {
  const normalized = posix.normalize(path);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

/**
 * The patterns of a `.dockerignore` file, as docker reads them: a BOM and `#` comment lines
 * dropped, each line trimmed, paths cleaned (`.` and `..` resolved, trailing `/` dropped),
 * a leading `/` removed, `!` kept in front of exceptions.
 */
export function parseDockerignore(text: string): string[] {
  const patterns: string[] = [];
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  for (const line of body.split(/\r?\n/)) {
    if (line.startsWith('#')) continue;
    let pattern = line.trim();
    if (pattern === '') continue;
    const exception = pattern.startsWith('!');
    if (exception) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push(exception ? '!' + pattern : pattern);
  }
  return patterns;
}

interface CompiledPattern {
  readonly text: string;
  readonly exception: boolean;
  readonly regex: RegExp;
  readonly literal: boolean;
}

// moby/patternmatcher's translation: `**` any number of directories (even none), `*` and `?`
// within one path element, `[...]` classes, `\` escapes the next character.
function compile(pattern: string): RegExp {
  let re = '^';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (inClass) {
      if (ch === '\\' && i + 1 < pattern.length) re += '\\' + pattern[++i];
      else re += ch;
      if (ch === ']') inClass = false;
    } else if (ch === '[') {
      inClass = true;
      re += ch;
    } else if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        re += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '\\') {
      if (i + 1 < pattern.length) re += '\\' + pattern[++i];
      else re += '\\\\';
    } else if ('.+()|{}$^'.includes(ch)) re += '\\' + ch;
    else re += ch;
  }
  return new RegExp(re + '$');
}

/** Options of an IgnoreMatcher. */
export interface IgnoreMatcherOptions {
  /** Patterns as `parseDockerignore` returns them; exceptions start with `!`. */
  readonly patterns: readonly string[];
}

/**
 * Decides which context paths `.dockerignore` excludes, with docker's rules: patterns apply in
 * order and the last one that matches a path or one of its parent directories wins, so an
 * exception re-includes a file inside an excluded directory.
 */
export class IgnoreMatcher {
  readonly #patterns: CompiledPattern[];
  readonly #hasExceptions: boolean;

  constructor(options: IgnoreMatcherOptions) {
    this.#patterns = [];
    for (const raw of options.patterns) {
      const trimmed = raw.trim();
      if (trimmed === '') continue;
      const exception = trimmed.startsWith('!');
      if (exception && trimmed.length === 1) {
        throw new BuildContextError('illegal exclusion pattern: "!" in .dockerignore', { code: BuilderErrorCode.InvalidContext, kind: ErrorKind.InvalidArgument });
      }
      const text = cleanPath(exception ? trimmed.slice(1) : trimmed);
      let regex: RegExp;
      try {
        regex = compile(text);
      } catch (err) {
        throw new BuildContextError(`invalid .dockerignore pattern ${JSON.stringify(raw)}`, { code: BuilderErrorCode.InvalidContext, kind: ErrorKind.InvalidArgument, cause: err });
      }
      this.#patterns.push({ text, exception, regex, literal: !/[*?[\\]/.test(text) });
    }
    this.#hasExceptions = this.#patterns.some((p) => p.exception);
  }

  /** True when `path` (relative to the context root, `/`-separated) is excluded. */
  ignores(path: string): boolean {
    if (this.#patterns.length === 0) return false;
    const file = cleanPath(path);
    const slash = file.lastIndexOf('/');
    const parents = slash < 0 ? [] : file.slice(0, slash).split('/');
    let matched = false;
    for (const pattern of this.#patterns) {
      // An exclusion cannot change an excluded path, nor an exception an included one.
      if (pattern.exception !== matched) continue;
      let match = pattern.regex.test(file);
      for (let i = 1; !match && i <= parents.length; i++) match = pattern.regex.test(parents.slice(0, i).join('/'));
      if (match) matched = !pattern.exception;
    }
    return matched;
  }

  /**
   * Whether a walk must still look inside the excluded directory `dir`, because an exception
   * might re-include something below it. Exceptions with wildcards always might.
   */
  mayReincludeUnder(dir: string): boolean {
    if (!this.#hasExceptions) return false;
    const prefix = cleanPath(dir) + '/';
    return this.#patterns.some((p) => p.exception && (!p.literal || (p.text + '/').startsWith(prefix)));
  }
}
