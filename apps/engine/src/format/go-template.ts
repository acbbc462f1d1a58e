import { BerthError, ErrorKind } from '@berth/errors';

/**
 * docker's `--format`: a Go text/template subset of our own. Actions `{{...}}` with `{{-`/`-}}`
 * trimming and comments; pipelines with `|`; fields (`.A.B`), `$` and variables (`$x := ...`);
 * string, number, boolean and nil literals; parenthesised pipelines; `if`/`else if`/`else`,
 * `range` (with `$i, $v :=`), `with`; Go's builtins (`and or not len index print printf println
 * eq ne lt le gt ge slice`) and docker's (`json join split lower upper title truncate pad`).
 */

export class TemplateError extends BerthError {
  constructor(message: string) {
    super(`template: ${message}`, { code: 'ERR_TEMPLATE', kind: ErrorKind.InvalidArgument });
  }
}

/**
 * Marks an object whose fields are fixed (a row of `ps` or `images`): asking for another field is
 * an error, as for a Go struct. Plain JSON (inspect) answers `<no value>` instead, as for a Go map.
 */
export const strictFields = Symbol('strictFields');

type Node =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'action'; readonly pipe: Pipeline; readonly pos: number }
  | { readonly kind: 'if' | 'with'; readonly pipe: Pipeline; readonly then: Node[]; readonly else: Node[]; readonly pos: number }
  | { readonly kind: 'range'; readonly pipe: Pipeline; readonly body: Node[]; readonly else: Node[]; readonly pos: number };

interface Pipeline {
  readonly decl: readonly string[];
  readonly assign: boolean;
  readonly cmds: readonly Command[];
}

type Command = readonly Operand[];

type Operand =
  | { readonly kind: 'field'; readonly base: 'dot' | string; readonly path: readonly string[] }
  | { readonly kind: 'literal'; readonly value: unknown }
  | { readonly kind: 'ident'; readonly name: string }
  | { readonly kind: 'pipe'; readonly pipe: Pipeline; readonly path: readonly string[] };

type Token = { readonly t: 'str' | 'num' | 'word' | 'field' | 'var' | '(' | ')' | '|' | ':=' | '=' | ','; readonly v: string };

function tokenize(src: string, pos: number): Token[] {
  const out: Token[] = [];
  let i = 0;
  const fail = (why: string) => {
    throw new TemplateError(`:${pos}: ${why}`);
  };
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\') {
          const e = src[j + 1];
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e === '0' ? '\0' : (e ?? '');
          j += 2;
        } else {
          s += src[j++];
        }
      }
      if (j >= src.length) fail('unterminated quoted string');
      out.push({ t: 'str', v: s });
      i = j + 1;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) fail('unterminated raw quoted string');
      out.push({ t: 'str', v: src.slice(i + 1, j) });
      i = j + 1;
    } else if (c === '(' || c === ')' || c === '|' || c === ',') {
      out.push({ t: c, v: c });
      i++;
    } else if (c === ':' && src[i + 1] === '=') {
      out.push({ t: ':=', v: ':=' });
      i += 2;
    } else if (c === '=') {
      out.push({ t: '=', v: '=' });
      i++;
    } else if (c === '.' && !/[0-9]/.test(src[i + 1] ?? '')) {
      const m = /^(\.[A-Za-z0-9_]*)+/.exec(src.slice(i))!;
      out.push({ t: 'field', v: m[0] });
      i += m[0].length;
    } else if (c === '$') {
      const m = /^\$[A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*/.exec(src.slice(i))!;
      out.push({ t: 'var', v: m[0] });
      i += m[0].length;
    } else if (/[-+0-9.]/.test(c)) {
      const m = /^[-+]?(0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?)/.exec(src.slice(i));
      if (!m || m[0] === '') fail(`bad number syntax: ${src.slice(i, i + 8)}`);
      out.push({ t: 'num', v: m![0] });
      i += m![0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ t: 'word', v: m[0] });
      i += m[0].length;
    } else if (c === "'") {
      const m = /^'(\\.|[^'])'/.exec(src.slice(i));
      if (!m) fail('malformed character constant');
      out.push({ t: 'num', v: String(m![1]!.codePointAt(m![1]!.length - 1)) });
      i += m![0].length;
    } else {
      fail(`unexpected ${JSON.stringify(c)} in command`);
    }
  }
  return out;
}

class PipelineParser {
  #i = 0;
  readonly toks: readonly Token[];
  readonly pos: number;

  constructor(toks: readonly Token[], pos: number) {
    this.toks = toks;
    this.pos = pos;
  }

  parse(): Pipeline {
    const p = this.pipeline();
    if (this.#i < this.toks.length) this.fail(`unexpected ${JSON.stringify(this.toks[this.#i]!.v)} in operand`);
    return p;
  }

  fail(why: string): never {
    throw new TemplateError(`:${this.pos}: ${why}`);
  }

  pipeline(): Pipeline {
    const decl: string[] = [];
    let assign = false;
    // `$x := pipeline`, `$i, $v := pipeline` (range) or `$x = pipeline`.
    const save = this.#i;
    if (this.toks[this.#i]?.t === 'var') {
      const names = [this.toks[this.#i]!.v];
      let j = this.#i + 1;
      if (this.toks[j]?.t === ',' && this.toks[j + 1]?.t === 'var') {
        names.push(this.toks[j + 1]!.v);
        j += 2;
      }
      const op = this.toks[j]?.t;
      if (op === ':=' || op === '=') {
        decl.push(...names);
        assign = op === '=';
        this.#i = j + 1;
      } else {
        this.#i = save;
      }
    }
    const cmds: Command[] = [this.command()];
    while (this.toks[this.#i]?.t === '|') {
      this.#i++;
      cmds.push(this.command());
    }
    return { decl, assign, cmds };
  }

  command(): Command {
    const ops: Operand[] = [];
    while (this.#i < this.toks.length) {
      const t = this.toks[this.#i]!;
      if (t.t === '|' || t.t === ')') break;
      ops.push(this.operand());
    }
    if (ops.length === 0) this.fail('missing value for command');
    return ops;
  }

  operand(): Operand {
    const t = this.toks[this.#i++]!;
    switch (t.t) {
      case 'str':
        return { kind: 'literal', value: t.v };
      case 'num':
        return { kind: 'literal', value: Number(t.v) };
      case 'field':
        return { kind: 'field', base: 'dot', path: t.v === '.' ? [] : t.v.slice(1).split('.') };
      case 'var': {
        const [name, ...path] = t.v.split('.');
        return { kind: 'field', base: name!, path };
      }
      case 'word':
        if (t.v === 'true' || t.v === 'false') return { kind: 'literal', value: t.v === 'true' };
        if (t.v === 'nil') return { kind: 'literal', value: null };
        return { kind: 'ident', name: t.v };
      case '(': {
        const pipe = this.pipeline();
        if (this.toks[this.#i]?.t !== ')') this.fail('unclosed left paren');
        this.#i++;
        const next = this.toks[this.#i];
        let path: string[] = [];
        if (next?.t === 'field' && next.v !== '.') {
          path = next.v.slice(1).split('.');
          this.#i++;
        }
        return { kind: 'pipe', pipe, path };
      }
      default:
        return this.fail(`unexpected ${JSON.stringify(t.v)} in operand`);
    }
  }
}

interface Frame {
  readonly nodes: Node[];
  readonly kind: 'root' | 'if' | 'with' | 'range';
  readonly node?: { then?: Node[]; else: Node[]; body?: Node[] };
  inElse: boolean;
  /** `else if` chains close together at one `end`. */
  readonly chained: boolean;
}

function parse(src: string): Node[] {
  const root: Node[] = [];
  const stack: Frame[] = [{ nodes: root, kind: 'root', inElse: false, chained: false }];
  const top = () => stack[stack.length - 1]!;
  const target = (): Node[] => {
    const f = top();
    if (f.kind === 'root') return f.nodes;
    if (f.inElse) return f.node!.else;
    return f.kind === 'range' ? f.node!.body! : f.node!.then!;
  };
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = src.slice(i, open < 0 ? undefined : open);
    if (trimNext) text = text.replace(/^\s+/, '');
    trimNext = false;
    if (open < 0) {
      if (text) target().push({ kind: 'text', text });
      break;
    }
    const close = src.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateError(`:${open}: unclosed action`);
    let inner = src.slice(open + 2, close);
    if (inner.startsWith('- ') || inner === '-') {
      text = text.replace(/\s+$/, '');
      inner = inner.slice(1);
    }
    if (inner.endsWith(' -')) {
      trimNext = true;
      inner = inner.slice(0, -1);
    }
    if (text) target().push({ kind: 'text', text });
    i = close + 2;
    inner = inner.trim();
    if (inner.startsWith('/*')) continue;
    const toks = tokenize(inner, open);
    const head = toks[0];
    const word = head?.t === 'word' ? head.v : undefined;
    const pipeOf = (from: number) => new PipelineParser(toks.slice(from), open).parse();
    if (word === 'if' || word === 'with' || word === 'range') {
      const node =
        word === 'range'
          ? { kind: 'range' as const, pipe: pipeOf(1), body: [] as Node[], else: [] as Node[], pos: open }
          : { kind: word as 'if' | 'with', pipe: pipeOf(1), then: [] as Node[], else: [] as Node[], pos: open };
      target().push(node);
      stack.push({ nodes: [], kind: word, node, inElse: false, chained: false });
    } else if (word === 'else') {
      const f = top();
      if (f.kind === 'root' || f.inElse) throw new TemplateError(`:${open}: unexpected {{else}}`);
      f.inElse = true;
      if (toks[1]?.t === 'word' && (toks[1].v === 'if' || toks[1].v === 'with')) {
        const node = { kind: toks[1].v as 'if' | 'with', pipe: pipeOf(2), then: [] as Node[], else: [] as Node[], pos: open };
        target().push(node);
        stack.push({ nodes: [], kind: toks[1].v, node, inElse: false, chained: true });
      }
    } else if (word === 'end') {
      while (top().chained) stack.pop();
      if (top().kind === 'root') throw new TemplateError(`:${open}: unexpected {{end}}`);
      stack.pop();
    } else if (word === 'define' || word === 'template' || word === 'block' || word === 'break' || word === 'continue') {
      throw new TemplateError(`:${open}: {{${word}}} is not supported`);
    } else {
      target().push({ kind: 'action', pipe: pipeOf(0), pos: open });
    }
  }
  if (stack.length > 1) throw new TemplateError(`:${src.length}: unexpected EOF`);
  return root;
}

/** Go's `%v` of a JSON-shaped value. */
export function formatValue(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'function') return formatValue((v as () => unknown)());
  if (Array.isArray(v)) return `[${v.map(formatValue).join(' ')}]`;
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    // Docker-shaped objects are Go structs ({a b}); anything with other keys is a map.
    if (entries.length > 0 && entries.every(([k]) => /^[A-Z]/.test(k))) return `{${entries.map(([, x]) => formatValue(x)).join(' ')}}`;
    return `map[${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, x]) => `${k}:${formatValue(x)}`)
      .join(' ')}]`;
  }
  return String(v);
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

function jsonOf(v: unknown): string {
  return JSON.stringify(typeof v === 'function' ? (v as () => unknown)() : v ?? null) ?? 'null';
}

function goPrintf(format: string, args: readonly unknown[]): string {
  let n = 0;
  return format.replace(/%([-+ 0#]*)(\d+)?(?:\.(\d+))?([vsdqfxXtTgeb%])/g, (_all, flags: string, width: string | undefined, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    const a = args[n++];
    let s: string;
    switch (verb) {
      case 'd':
        s = String(Math.trunc(Number(a)));
        break;
      case 'f':
        s = Number(a).toFixed(prec === undefined ? 6 : Number(prec));
        break;
      case 'q':
        s = JSON.stringify(formatValue(a));
        break;
      case 'x':
      case 'X':
        s = typeof a === 'number' ? a.toString(16) : Buffer.from(formatValue(a)).toString('hex');
        if (verb === 'X') s = s.toUpperCase();
        break;
      case 'T':
        s = a === null ? '<nil>' : Array.isArray(a) ? '[]interface {}' : typeof a === 'object' ? 'map[string]interface {}' : typeof a === 'number' ? 'float64' : typeof a;
        break;
      default:
        s = formatValue(a);
        if (prec !== undefined && (verb === 's' || verb === 'v')) s = s.slice(0, Number(prec));
    }
    if (width) s = flags.includes('-') ? s.padEnd(Number(width)) : s.padStart(Number(width), flags.includes('0') && verb !== 's' ? '0' : ' ');
    return s;
  });
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const x = formatValue(a);
  const y = formatValue(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

type Fn = (...args: unknown[]) => unknown;

const functions: Readonly<Record<string, Fn>> = {
  json: (v) => jsonOf(v),
  join: (list, sep) => (Array.isArray(list) ? list.map(formatValue).join(String(sep)) : formatValue(list)),
  split: (s, sep) => formatValue(s).split(String(sep)),
  lower: (s) => formatValue(s).toLowerCase(),
  upper: (s) => formatValue(s).toUpperCase(),
  title: (s) => formatValue(s).replace(/(^|[^\p{L}\p{N}])(\p{L})/gu, (_m, pre: string, c: string) => pre + c.toUpperCase()),
  truncate: (s, n) => [...formatValue(s)].slice(0, Number(n)).join(''),
  pad: (s, before, after) => ' '.repeat(Number(before)) + formatValue(s) + ' '.repeat(Number(after)),
  len: (v) => (typeof v === 'string' || Array.isArray(v) ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0),
  index: (v, ...keys) => {
    let cur = v;
    for (const k of keys) {
      if (cur === null || cur === undefined) return undefined;
      cur = Array.isArray(cur) ? cur[Number(k)] : (cur as Record<string, unknown>)[String(k)];
    }
    return cur;
  },
  slice: (v, from, to) => {
    if (typeof v === 'string' || Array.isArray(v)) return v.slice(from === undefined ? 0 : Number(from), to === undefined ? undefined : Number(to));
    return v;
  },
  print: (...a) => a.map(formatValue).join(''),
  println: (...a) => a.map(formatValue).join(' ') + '\n',
  printf: (f, ...a) => goPrintf(formatValue(f), a),
  not: (v) => !truthy(v),
  and: (...a) => a.find((v) => !truthy(v)) ?? a[a.length - 1],
  or: (...a) => a.find((v) => truthy(v)) ?? a[a.length - 1],
  eq: (a, ...rest) => rest.some((b) => compare(a, b) === 0),
  ne: (a, b) => compare(a, b) !== 0,
  lt: (a, b) => compare(a, b) < 0,
  le: (a, b) => compare(a, b) <= 0,
  gt: (a, b) => compare(a, b) > 0,
  ge: (a, b) => compare(a, b) >= 0,
};

class Executor {
  readonly #vars: Map<string, unknown>[] = [];
  out = '';

  constructor(root: unknown) {
    this.#vars.push(new Map([['$', root]]));
  }

  run(nodes: readonly Node[], dot: unknown): void {
    for (const node of nodes) {
      switch (node.kind) {
        case 'text':
          this.out += node.text;
          break;
        case 'action': {
          const v = this.pipeline(node.pipe, dot, node.pos);
          if (node.pipe.decl.length === 0) this.out += formatValue(v);
          break;
        }
        case 'if':
        case 'with': {
          this.#vars.push(new Map());
          const v = this.pipeline(node.pipe, dot, node.pos);
          if (truthy(v)) this.run(node.then, node.kind === 'with' ? v : dot);
          else this.run(node.else, dot);
          this.#vars.pop();
          break;
        }
        case 'range': {
          const scope = new Map<string, unknown>();
          this.#vars.push(scope);
          const pipe = { ...node.pipe, decl: [] };
          const v = this.pipeline(pipe, dot, node.pos);
          const items: [unknown, unknown][] = Array.isArray(v)
            ? v.map((x, i) => [i, x])
            : v && typeof v === 'object'
              ? Object.keys(v)
                  .sort()
                  .map((k) => [k, (v as Record<string, unknown>)[k]])
              : typeof v === 'number'
                ? Array.from({ length: v }, (_x, i) => [i, i])
                : [];
          if (items.length === 0) this.run(node.else, dot);
          for (const [k, x] of items) {
            const [a, b] = node.pipe.decl;
            if (b !== undefined) {
              scope.set(a!, k);
              scope.set(b, x);
            } else if (a !== undefined) {
              scope.set(a, x);
            }
            this.run(node.body, x);
          }
          this.#vars.pop();
          break;
        }
      }
    }
  }

  #lookupVar(name: string, pos: number): unknown {
    for (let i = this.#vars.length - 1; i >= 0; i--) if (this.#vars[i]!.has(name)) return this.#vars[i]!.get(name);
    throw new TemplateError(`:${pos}: undefined variable "${name}"`);
  }

  pipeline(pipe: Pipeline, dot: unknown, pos: number): unknown {
    let value: unknown = undefined;
    let first = true;
    for (const cmd of pipe.cmds) {
      value = this.command(cmd, dot, pos, first ? undefined : { value });
      first = false;
    }
    if (pipe.decl.length) {
      const name = pipe.decl[pipe.decl.length - 1]!;
      if (pipe.assign) {
        for (let i = this.#vars.length - 1; i >= 0; i--) {
          if (this.#vars[i]!.has(name)) {
            this.#vars[i]!.set(name, value);
            return value;
          }
        }
        throw new TemplateError(`:${pos}: undefined variable "${name}"`);
      }
      this.#vars[this.#vars.length - 1]!.set(name, value);
    }
    return value;
  }

  command(cmd: Command, dot: unknown, pos: number, piped: { value: unknown } | undefined): unknown {
    const [head, ...rest] = cmd;
    const args = () => {
      const a = rest.map((op) => this.operand(op, dot, pos));
      if (piped) a.push(piped.value);
      return a;
    };
    if (head!.kind === 'ident') {
      const fn = functions[head!.name];
      if (!fn) throw new TemplateError(`:${pos}: function "${head!.name}" not defined`);
      return fn(...args());
    }
    if (head!.kind === 'field' && (rest.length > 0 || piped)) {
      // A method call with arguments: `.Label "com.example"`.
      const target = this.operand({ ...head!, path: head!.path.slice(0, -1) }, dot, pos);
      const method = head!.path.length ? this.field(target, head!.path[head!.path.length - 1]!, pos) : target;
      if (typeof method !== 'function') throw new TemplateError(`:${pos}: can't give argument to non-function ${describeOperand(head!)}`);
      return (method as Fn)(...args());
    }
    if (rest.length > 0 || piped) throw new TemplateError(`:${pos}: can't give argument to non-function ${describeOperand(head!)}`);
    return this.operand(head!, dot, pos);
  }

  operand(op: Operand, dot: unknown, pos: number): unknown {
    switch (op.kind) {
      case 'literal':
        return op.value;
      case 'ident': {
        const fn = functions[op.name];
        if (!fn) throw new TemplateError(`:${pos}: function "${op.name}" not defined`);
        return fn();
      }
      case 'pipe':
        return op.path.reduce<unknown>((cur, key) => this.field(cur, key, pos), this.pipeline(op.pipe, dot, pos));
      case 'field': {
        let cur = op.base === 'dot' ? dot : this.#lookupVar(op.base, pos);
        for (const key of op.path) cur = this.field(cur, key, pos);
        return cur;
      }
    }
  }

  field(target: unknown, key: string, pos: number): unknown {
    if (target === null || target === undefined) {
      throw new TemplateError(`:${pos}: executing "" at <.${key}>: nil pointer evaluating interface {}.${key}`);
    }
    if (typeof target !== 'object') throw new TemplateError(`:${pos}: executing "" at <.${key}>: can't evaluate field ${key} in type ${typeof target}`);
    const record = target as Record<string | symbol, unknown>;
    if (key in record) {
      const v = record[key];
      return typeof v === 'function' && v.length === 0 ? (v as () => unknown).call(target) : typeof v === 'function' ? v.bind(target) : v;
    }
    if (record[strictFields]) throw new TemplateError(`:${pos}: executing "" at <.${key}>: can't evaluate field ${key}`);
    return undefined;
  }
}

function describeOperand(op: Operand): string {
  return op.kind === 'field' ? (op.base === 'dot' ? '.' : op.base) + op.path.join('.') : op.kind;
}

/** A parsed template, executed once per value. */
export class GoTemplate {
  readonly #nodes: Node[];

  constructor(source: string) {
    this.#nodes = parse(source);
  }

  execute(data: unknown): string {
    const ex = new Executor(data);
    ex.run(this.#nodes, data);
    return ex.out;
  }
}
