import { DockerfileError } from './errors.js';
import { expandWord, type EscapeToken } from './word-expansion.js';

/** The parser directives of a Dockerfile (`# syntax=`, `# escape=`, `# check=`). */
export interface ParserDirectives {
  readonly escape: EscapeToken;
  readonly syntax?: string;
  readonly check?: string;
}

/**
 * A here-document attached to an instruction: `<<EOF` (expanded), `<<"EOF"`/`<<'EOF'`
 * (not expanded), `<<-EOF` (leading tabs stripped, `chomp`), optionally with a file
 * descriptor (`3<<EOF`). `content` is the body as written, each line with its newline.
 */
export interface Heredoc {
  readonly name: string;
  readonly content: string;
  readonly expand: boolean;
  readonly chomp: boolean;
  readonly fileDescriptor: number;
}

/** How an instruction's arguments were written. */
export type ArgumentForm = 'json' | 'words' | 'string' | 'keyvalue' | 'none';

/**
 * One instruction as the line parser sees it, before it is typed: the keyword as written,
 * the `--flags`, and the arguments split the way docker's line parser splits that keyword.
 */
export interface SyntaxNode {
  readonly keyword: string;
  readonly flags: readonly string[];
  /** The text after the keyword and flags, trimmed. */
  readonly rest: string;
  readonly args: readonly string[];
  readonly form: ArgumentForm;
  /** For ENV and LABEL: whether each pair was written `k=v` (true) or the legacy `k v` (false). */
  readonly equals?: readonly boolean[];
  /** ONBUILD's trigger instruction. */
  readonly child?: SyntaxNode;
  readonly heredocs: readonly Heredoc[];
  readonly startLine: number;
  readonly endLine: number;
  /** The instruction's logical line: continuations joined, comments dropped. */
  readonly original: string;
}

/** The result of the line-level parse. */
export interface DockerfileSyntax {
  readonly directives: ParserDirectives;
  readonly nodes: readonly SyntaxNode[];
  readonly warnings: readonly string[];
}

const directivePattern = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const knownDirectives = new Set(['escape', 'syntax', 'check']);
const whitespace = /[\t\v\f\r ]+/;
const heredocPattern = /^(\d*)<<(-?)([^<]*)$/;
const leadingSpace = /^\s+/u;

function trimNewline(line: string): string {
  let end = line.length;
  while (end > 0 && (line[end - 1] === '\n' || line[end - 1] === '\r')) end--;
  return line.slice(0, end);
}

function isComment(line: string): boolean {
  return trimNewline(line).replace(leadingSpace, '').startsWith('#');
}

// Lines with their endings kept, because heredoc bodies keep them.
function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', start)) {
    lines.push(text.slice(start, i + 1));
    start = i + 1;
  }
  if (start < text.length) lines.push(text.slice(start));
  return lines;
}

class DirectiveReader {
  escape: EscapeToken = '\\';
  syntax: string | undefined;
  check: string | undefined;
  private done = false;
  private readonly seen = new Set<string>();
  continuation = continuationPattern('\\');

  // Directives must come first: the first line that is not one (a comment, a blank line or an
  // instruction) ends them, as in docker.
  consider(line: string): string | undefined {
    if (this.done) return undefined;
    const match = directivePattern.exec(line);
    const key = match?.[1]?.toLowerCase();
    if (!match || !key || !knownDirectives.has(key)) {
      this.done = true;
      return undefined;
    }
    if (this.seen.has(key)) return `only one ${key} parser directive can be used`;
    this.seen.add(key);
    const value = match[2]!;
    if (key === 'escape') {
      if (value !== '`' && value !== '\\') return `invalid escape token '${value}' does not match \` or \\`;
      this.escape = value;
      this.continuation = continuationPattern(value);
    } else if (key === 'syntax') this.syntax = value;
    else this.check = value;
    return undefined;
  }
}

// The escape character ends a line when it is the last non-blank character, unless it is
// itself escaped.
function continuationPattern(escape: EscapeToken): RegExp {
  const e = escape === '\\' ? '\\\\' : '`';
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

/** Splits a Dockerfile into instructions with their line ranges, flags, arguments and heredocs. */
export function scanDockerfile(text: string, file: string): DockerfileSyntax {
  const lines = splitLines(text.startsWith('\uFEFF') ? text.slice(1) : text);
  const directives = new DirectiveReader();
  const nodes: SyntaxNode[] = [];
  const warnings: string[] = [];
  const fail = (reason: string, line: number, endLine = line): never => {
    throw new DockerfileError({ file, line, endLine, reason });
  };

  let index = 0;
  let lineNo = 0;
  const processLine = (raw: string, first: boolean): string => {
    let token = trimNewline(raw);
    if (first) token = token.replace(leadingSpace, '');
    const problem = directives.consider(token);
    if (problem) fail(problem, lineNo + 1);
    return token.startsWith('#') ? '' : token;
  };
  const trimContinuation = (line: string): [string, boolean] => {
    if (directives.continuation.test(line)) return [line.replace(directives.continuation, '$1'), false];
    return [line, true];
  };

  while (index < lines.length) {
    const processed = processLine(lines[index++]!, true);
    lineNo++;
    const startLine = lineNo;
    let [line, endOfLine] = trimContinuation(processed);
    if (endOfLine && line === '') continue;

    let emptyContinuation = false;
    while (!endOfLine && index < lines.length) {
      const raw = lines[index++]!;
      const next = processLine(raw, false);
      lineNo++;
      if (isComment(raw)) continue;
      if (next.replace(leadingSpace, '') === '') {
        emptyContinuation = true;
        continue;
      }
      let part: string;
      [part, endOfLine] = trimContinuation(next);
      line += part;
    }
    if (emptyContinuation) warnings.push(`${file}:${startLine}: empty continuation line found in: ${line}`);

    let node: SyntaxNode;
    try {
      node = nodeFromLine(line, directives.escape, startLine, lineNo);
    } catch (err) {
      return fail(err instanceof Error ? err.message : String(err), startLine, lineNo);
    }

    const heredocs: Heredoc[] = [];
    if (canContainHeredoc(node)) {
      for (const doc of heredocsFromLine(line, directives.escape)) {
        let content = '';
        let terminated = false;
        while (index < lines.length) {
          const raw = lines[index++]!;
          lineNo++;
          let candidate = trimNewline(raw);
          if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
          content += raw;
        }
        if (!terminated) fail(`unterminated heredoc ${doc.name}`, startLine, lineNo);
        heredocs.push({ ...doc, content });
      }
    }
    nodes.push({ ...node, heredocs, endLine: lineNo });
  }

  return {
    directives: {
      escape: directives.escape,
      ...(directives.syntax !== undefined ? { syntax: directives.syntax } : {}),
      ...(directives.check !== undefined ? { check: directives.check } : {}),
    },
    nodes,
    warnings,
  };
}

function canContainHeredoc(node: SyntaxNode): boolean {
  const target = node.keyword.toLowerCase() === 'onbuild' && node.child ? node.child : node;
  return ['run', 'copy', 'add'].includes(target.keyword.toLowerCase()) && target.form !== 'json';
}

type HeredocHead = Omit<Heredoc, 'content'>;

/** The heredoc that `word` opens (`<<EOF`, `<<-"EOF"`, `3<<EOF`), or undefined when it opens none. */
export function parseHeredocWord(word: string): HeredocHead | undefined {
  const match = heredocPattern.exec(word);
  if (!match || match[3] === '') return undefined;
  const rest = match[3]!;
  const empty = new Map<string, string>();
  let words: readonly string[];
  let rawWords: readonly string[];
  try {
    words = expandWord(rest, empty, { skipUnset: true }).words;
    rawWords = expandWord(rest, empty, { skipUnset: true, rawQuotes: true }).words;
  } catch {
    return undefined;
  }
  if (words.length !== 1 || rawWords.length !== 1) return undefined;
  const quotes = (s: string): number => s.split(/['"]/).length - 1;
  // Any quoting of the delimiter turns expansion of the body off, as in sh.
  return {
    name: words[0]!,
    expand: quotes(words[0]!) === quotes(rawWords[0]!),
    chomp: match[2] === '-',
    fileDescriptor: match[1] ? Number(match[1]) : 0,
  };
}

function heredocsFromLine(line: string, escapeToken: EscapeToken): HeredocHead[] {
  let words: readonly string[];
  try {
    words = expandWord(line, new Map(), { escapeToken, rawQuotes: true, rawEscapes: true, skipUnset: true }).words;
  } catch {
    return [];
  }
  return words.map(parseHeredocWord).filter((d): d is HeredocHead => d !== undefined);
}

type LineParser = (rest: string, escape: EscapeToken) => Pick<SyntaxNode, 'args' | 'form'> & { equals?: boolean[] };

const parseNone: LineParser = () => ({ args: [], form: 'none' });

function parseJsonArray(rest: string): string[] | undefined {
  const text = rest.replace(leadingSpace, '');
  if (!text.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  if (!value.every((v): v is string => typeof v === 'string')) {
    throw new Error('when using JSON array syntax, arrays must be comprised of strings only');
  }
  return value;
}

const parseMaybeJson: LineParser = (rest) => {
  if (rest === '') return { args: [], form: 'none' };
  const json = parseJsonArray(rest);
  return json ? { args: json, form: 'json' } : { args: [rest], form: 'string' };
};

const parseWhitespaceDelimited: LineParser = (rest) => (rest === '' ? { args: [], form: 'none' } : { args: rest.split(whitespace), form: 'words' });

const parseMaybeJsonToList: LineParser = (rest, escape) => {
  const json = parseJsonArray(rest);
  return json ? { args: json, form: 'json' } : parseWhitespaceDelimited(rest, escape);
};

const parseString: LineParser = (rest) => (rest === '' ? { args: [], form: 'none' } : { args: [rest], form: 'string' });

/** Words split on unquoted whitespace, quotes and escapes kept for the expansion step. */
export function splitQuotedWords(rest: string, escape: EscapeToken): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote = '';
  let blankOk = false;
  const chars = [...rest];
  for (let i = 0; i < chars.length; i++) {
    let ch = chars[i]!;
    if (!inWord && !quote) {
      if (/\s/u.test(ch)) continue;
      inWord = true;
    }
    if (quote) {
      if (ch === quote) quote = '';
      else if (ch === escape && quote !== "'") {
        if (i + 1 === chars.length) {
          quote = '';
          continue;
        }
        word += ch;
        ch = chars[++i]!;
      }
      word += ch;
      continue;
    }
    if (/\s/u.test(ch)) {
      if (blankOk || word.length > 0) words.push(word);
      word = '';
      blankOk = false;
      inWord = false;
      continue;
    }
    if (ch === "'" || ch === '"') {
      quote = ch;
      blankOk = true;
    } else if (ch === escape) {
      if (i + 1 === chars.length) continue;
      word += ch;
      ch = chars[++i]!;
    }
    word += ch;
  }
  if ((inWord || quote) && (blankOk || word.length > 0)) words.push(word);
  return words;
}

// ENV and LABEL: `k=v k2="v 2"`, or the legacy `k the value`.
const parseNameValue =
  (keyword: string): LineParser =>
  (rest, escape) => {
    const words = splitQuotedWords(rest, escape);
    if (words.length === 0) return { args: [], form: 'none' };
    if (!words[0]!.includes('=')) {
      const gap = whitespace.exec(rest);
      if (!gap) throw new Error(`${keyword} must have two arguments`);
      return { args: [rest.slice(0, gap.index), rest.slice(gap.index + gap[0].length)], form: 'keyvalue', equals: [false] };
    }
    const args: string[] = [];
    for (const word of words) {
      const eq = word.indexOf('=');
      if (eq < 0) throw new Error(`Syntax error - can't find = in ${JSON.stringify(word)}. Must be of the form: name=value`);
      args.push(word.slice(0, eq), word.slice(eq + 1));
    }
    return { args, form: 'keyvalue', equals: words.map(() => true) };
  };

const parseNameOrNameValue: LineParser = (rest, escape) => {
  const words = splitQuotedWords(rest, escape);
  return words.length === 0 ? { args: [], form: 'none' } : { args: words, form: 'words' };
};

const parseHealthConfig: LineParser = (rest, escape) => {
  const match = /^(\S+)\s*/u.exec(rest);
  if (!match) return { args: [], form: 'none' };
  const command = parseMaybeJson(rest.slice(match[0].length), escape);
  return { args: [match[1]!, ...command.args], form: command.form };
};

const lineParsers: Record<string, LineParser> = {
  add: parseMaybeJsonToList,
  arg: parseNameOrNameValue,
  cmd: parseMaybeJson,
  copy: parseMaybeJsonToList,
  entrypoint: parseMaybeJson,
  env: parseNameValue('ENV'),
  expose: parseWhitespaceDelimited,
  from: parseWhitespaceDelimited,
  healthcheck: parseHealthConfig,
  label: parseNameValue('LABEL'),
  maintainer: parseString,
  run: parseMaybeJson,
  shell: parseMaybeJson,
  stopsignal: parseString,
  user: parseString,
  volume: parseMaybeJsonToList,
  workdir: parseString,
};

// `--flag=value` words at the start of the arguments; quotes and backslashes in them are
// removed here (always backslash, whatever the escape directive says, as in docker).
function extractFlags(line: string): { rest: string; flags: string[] } {
  const flags: string[] = [];
  let pos = 0;
  for (;;) {
    while (pos < line.length && /\s/u.test(line[pos]!)) pos++;
    if (!line.startsWith('--', pos)) return { rest: line.slice(pos), flags };
    let word = '';
    let quote = '';
    let blankOk = false;
    for (; pos < line.length; pos++) {
      let ch = line[pos]!;
      if (quote) {
        if (ch === quote) {
          quote = '';
          continue;
        }
      } else if (/\s/u.test(ch)) break;
      else if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        ch = line[++pos]!;
      }
      word += ch;
    }
    if (word === '--') return { rest: line.slice(pos).replace(leadingSpace, ''), flags };
    if (blankOk || word.length > 0) flags.push(word);
    if (pos >= line.length) return { rest: '', flags };
  }
}

function nodeFromLine(line: string, escape: EscapeToken, startLine: number, endLine: number): SyntaxNode {
  const trimmed = line.trim();
  const split = /[\t\v\f\r ]+/.exec(trimmed);
  const keyword = split ? trimmed.slice(0, split.index) : trimmed;
  const after = split ? trimmed.slice(split.index + split[0].length) : '';
  const { rest: restRaw, flags } = after ? extractFlags(after) : { rest: '', flags: [] };
  const rest = restRaw.trim();
  const lower = keyword.toLowerCase();
  const base = { keyword, flags, rest, heredocs: [], startLine, endLine, original: line };
  if (lower === 'onbuild') {
    if (rest === '') return { ...base, args: [], form: 'none' };
    const child = nodeFromLine(rest, escape, startLine, endLine);
    return { ...base, args: [child.keyword, ...child.args], form: child.form, child };
  }
  const parser = lineParsers[lower] ?? parseNone;
  return { ...base, ...parser(rest, escape) };
}
