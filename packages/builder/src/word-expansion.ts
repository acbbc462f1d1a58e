import { ExpansionError } from './errors.js';

/** The escape characters a Dockerfile may choose with `# escape=`. */
export type EscapeToken = '\\' | '`';

/** How `expandWord` treats quotes, escapes and unset variables. */
export interface ExpansionOptions {
  /** The Dockerfile's escape character (default backslash). */
  readonly escapeToken?: EscapeToken;
  /** Leave `$name` and `${name...}` as written when `name` is unset, instead of expanding to ''. */
  readonly skipUnset?: boolean;
  /** Keep quote characters in the result (they still group words). */
  readonly rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  readonly rawEscapes?: boolean;
  /**
   * Treat the word as a heredoc body: quotes are ordinary characters and a backslash only
   * escapes `$`, a backquote, itself and a newline, as in sh.
   */
  readonly heredoc?: boolean;
}

/** What an expansion produced, and which variables it read. */
export interface ExpansionResult {
  /** The word with quotes removed and variables substituted, spaces kept. */
  readonly value: string;
  /** The same, split into words on unquoted whitespace after substitution. */
  readonly words: readonly string[];
  /** Variables that were read and set. */
  readonly used: ReadonlySet<string>;
  /** Variables that were read but unset. */
  readonly unset: ReadonlySet<string>;
}

const isSpace = (ch: string): boolean => /^\s$/u.test(ch);
const isNameChar = (ch: string): boolean => ch === '_' || /^[\p{L}\p{N}]$/u.test(ch);
const isDigit = (ch: string): boolean => /^\p{Nd}$/u.test(ch);
const specialParams = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

class WordCollector {
  readonly words: string[] = [];
  private buf = '';
  private inWord = false;

  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.buf.length > 0) {
        this.words.push(this.buf);
        this.buf = '';
        this.inWord = false;
      }
      return;
    }
    this.addRaw(ch);
  }

  addRaw(text: string): void {
    this.buf += text;
    this.inWord = true;
  }

  addExpanded(text: string): void {
    for (const ch of text) this.addChar(ch);
  }

  finish(): string[] {
    if (this.buf.length > 0) {
      this.words.push(this.buf);
      this.buf = '';
      this.inWord = false;
    }
    return this.words;
  }
}

/**
 * Docker's shell-like word processing (moby/buildkit `shell.Lex`): quotes, the escape
 * character, `$v`, `${v}`, `${v:-x}`, `${v-x}`, `${v:+x}`, `${v+x}`, `${v:?msg}`, `${v?msg}`,
 * `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}` and `${v//p/r}`. It never runs commands:
 * backquotes and `$(...)` stay as they are.
 */
class ShellWord {
  private pos = 0;
  private rawEscapes: boolean;
  readonly used = new Set<string>();
  readonly unset = new Set<string>();

  private readonly src: string;
  private readonly vars: ReadonlyMap<string, string>;
  private readonly options: ExpansionOptions;
  private readonly escape: string;

  constructor(src: string, vars: ReadonlyMap<string, string>, options: ExpansionOptions) {
    this.src = src;
    this.vars = vars;
    this.options = options;
    this.escape = options.escapeToken ?? '\\';
    this.rawEscapes = options.rawEscapes ?? false;
  }

  private peek(): string | undefined {
    return this.pos < this.src.length ? this.src[this.pos] : undefined;
  }

  private next(): string | undefined {
    return this.pos < this.src.length ? this.src[this.pos++] : undefined;
  }

  run(): { value: string; words: string[] } {
    return this.processUntil(undefined, this.rawEscapes);
  }

  private processUntil(stop: string | undefined, rawEscapes: boolean): { value: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let result = '';
      const words = new WordCollector();
      for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
        if (stop !== undefined && ch === stop) {
          this.pos++;
          return { value: result, words: words.finish() };
        }
        if (ch === '$') {
          const expanded = this.processDollar();
          result += expanded;
          words.addExpanded(expanded);
          continue;
        }
        if (this.options.heredoc && ch === '\\') {
          this.pos++;
          const following = this.peek();
          if (following === '$' || following === '`' || following === '\\') {
            this.pos++;
            result += following;
            words.addRaw(following);
          } else if (following === '\n') this.pos++;
          else {
            result += ch;
            words.addRaw(ch);
          }
          continue;
        }
        if (!this.options.heredoc && (ch === "'" || ch === '"')) {
          const quoted = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
          result += quoted;
          words.addRaw(quoted);
          continue;
        }
        this.pos++;
        if (ch === this.escape) {
          if (this.rawEscapes) {
            words.addRaw(ch);
            result += ch;
          }
          const escaped = this.next();
          if (escaped === undefined) break;
          words.addRaw(escaped);
          result += escaped;
          continue;
        }
        words.addChar(ch);
        result += ch;
      }
      if (stop !== undefined) throw new Error(`unexpected end of statement while looking for matching ${stop}`);
      return { value: result, words: words.finish() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    // Nothing is special between single quotes, not even the escape character.
    let result = this.options.rawQuotes ? "'" : '';
    this.pos++;
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new Error('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return this.options.rawQuotes ? result + ch : result;
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    // As in sh: inside double quotes the escape character only escapes `"`, `$` and itself.
    let result = this.options.rawQuotes ? '"' : '';
    this.pos++;
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw new Error('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.pos++;
        return this.options.rawQuotes ? result + ch : result;
      }
      if (ch === '$') {
        result += this.processDollar();
        continue;
      }
      this.pos++;
      if (ch === this.escape) {
        const following = this.peek();
        if (following === undefined) continue;
        if (following === '"' || following === '$' || following === this.escape) {
          this.pos++;
          result += this.rawEscapes ? ch + following : following;
          continue;
        }
      }
      result += ch;
    }
  }

  private lookup(name: string): string | undefined {
    const value = this.vars.get(name);
    if (value === undefined) this.unset.add(name);
    else this.used.add(name);
    return value;
  }

  private processDollar(): string {
    this.pos++;
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.lookup(name);
      if (value === undefined && this.options.skipUnset) return '$' + name;
      return value ?? '';
    }
    this.pos++;
    const first = this.peek();
    if (first === undefined) throw new Error("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new Error('syntax error: bad substitution');
    const name = this.processName();
    let modifier = this.next();
    if (modifier === undefined) throw new Error("syntax error: missing '}'");
    if (modifier === '}') {
      const value = this.lookup(name);
      if (value === undefined && this.options.skipUnset) return `\${${name}}`;
      return value ?? '';
    }
    if (modifier === '/') return this.processReplace(name);
    let written = modifier ?? '';
    let nullIsUnset = false;
    if (modifier === ':') {
      nullIsUnset = true;
      modifier = this.next();
      written += modifier ?? '';
    }
    if (modifier === undefined || !['+', '-', '?', '#', '%'].includes(modifier)) {
      throw new Error(`unsupported modifier (${written}) in substitution`);
    }
    const patternModifier = modifier === '#' || modifier === '%';
    if (nullIsUnset && patternModifier) throw new Error(`unsupported modifier (${written}) in substitution`);
    const word = this.processNested('}', patternModifier, "syntax error: missing '}'");
    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnset) return `\${${name}${written}${word}}`;
    const empty = value === undefined || (nullIsUnset && value === '');
    switch (modifier) {
      case '-':
        return empty ? word : value!;
      case '+':
        return empty ? '' : word;
      case '?':
        if (value === undefined) throw new Error(`${name}: ${word || 'is not allowed to be unset'}`);
        if (empty) throw new Error(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
      default: {
        const greedy = word.startsWith(modifier);
        const pattern = greedy ? word.slice(1) : word;
        return modifier === '%' ? trimSuffix(pattern, value ?? '', greedy) : trimPrefix(pattern, value ?? '', greedy);
      }
    }
  }

  private processReplace(name: string): string {
    const all = this.peek() === '/';
    if (all) this.pos++;
    const pattern = this.processNested('/', true, "syntax error: missing '/' in ${}");
    const replacement = this.processNested('}', true, "syntax error: missing '}'");
    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnset) return `\${${name}/${all ? '/' : ''}${pattern}/${replacement}}`;
    return (value ?? '').replace(shellPatternToRegex(pattern, true, false, all), () => replacement);
  }

  private processNested(stop: string, rawEscapes: boolean, missing: string): string {
    try {
      return this.processUntil(stop, rawEscapes).value;
    } catch (err) {
      if (this.peek() === undefined) throw new Error(missing, { cause: err });
      throw err;
    }
  }

  private processName(): string {
    let name = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === '' && isDigit(ch)) {
        while (this.peek() !== undefined && isDigit(this.peek()!)) name += this.next();
        return name;
      }
      if (name === '' && specialParams.has(ch)) {
        this.pos++;
        return ch;
      }
      if (!isNameChar(ch)) break;
      name += ch;
      this.pos++;
    }
    return name;
  }
}

// A shell pattern (`?` one character, `*` any run, `\` escapes) as a regular expression;
// bracket expressions are not supported, as in docker.
function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  let out = anchored ? '^' : '';
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '*') out += greedy ? '.*' : '.*?';
    else if (ch === '?') out += '.';
    else if (ch === '\\') {
      const next = chars[i + 1];
      // `}` and `/` are escaped only to get them past the ${...} syntax.
      if (next === '}' || next === '/') continue;
      if (next !== '*' && next !== '?' && next !== '\\') throw new Error(`invalid pattern (${pattern}) in substitution: invalid escape '\\${next ?? ''}'`);
      out += '\\' + next;
      i++;
    } else out += ch.replace(/[[\]{}.+()|^$/]/, '\\$&');
  }
  return new RegExp(out, global ? 'gu' : 'u');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const match = shellPatternToRegex(pattern, greedy, true).exec(value);
  return match ? value.slice(match[0].length) : value;
}

// Regular expressions cannot find the shortest rightmost match, so search the reversed value
// with the reversed pattern, keeping escapes in front of what they escape.
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  const chars = [...pattern];
  const tokens: string[] = [];
  for (let i = 0; i < chars.length; i++) {
    if (chars[i] === '\\' && i + 1 < chars.length) {
      tokens.push(chars[i]! + chars[i + 1]!);
      i++;
    } else tokens.push(chars[i]!);
  }
  const reversedPattern = tokens.reverse().join('');
  const reversedValue = [...value].reverse().join('');
  return [...trimPrefix(reversedPattern, reversedValue, greedy)].reverse().join('');
}

/**
 * Substitutes variables in `word` and removes quotes and escapes as docker does for the
 * instructions that expand (ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR
 * and ARG defaults). Throws ExpansionError for a bad substitution or a failed `${v:?msg}`.
 */
export function expandWord(word: string, vars: ReadonlyMap<string, string>, options: ExpansionOptions = {}): ExpansionResult {
  const shell = new ShellWord(word, vars, options);
  try {
    const { value, words } = shell.run();
    return { value, words, used: shell.used, unset: shell.unset };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new ExpansionError(`failed to process ${JSON.stringify(word)}: ${message}`);
  }
}
