import type {
  ArgInstruction,
  CommandLine,
  Dockerfile,
  FromInstruction,
  HealthcheckSettings,
  InlineSource,
  Instruction,
  KeyValue,
  RunInstruction,
  Stage,
} from './dockerfile-ast.js';
import { scanDockerfile, parseHeredocWord, type Heredoc, type SyntaxNode } from './dockerfile-syntax.js';
import { DockerfileError } from './errors.js';
import { parseFlags, type FlagSpec } from './instruction-flags.js';
import { parseRunMount } from './run-mount.js';

/** Options of `parseDockerfile`. */
export interface ParseDockerfileOptions {
  /** The name errors and warnings use for the file (default `Dockerfile`). */
  readonly file?: string;
}

const keywords = [
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
] as const;

const flagSpecs: Record<string, FlagSpec> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'strings', network: 'string', security: 'string' },
  COPY: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' },
  ADD: { chown: 'string', chmod: 'string', link: 'bool', checksum: 'string', 'keep-git-dir': 'bool', unpack: 'bool', exclude: 'strings' },
  HEALTHCHECK: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};

const stageNamePattern = /^[a-z][a-z0-9-_.]*$/;

// Edit distance counting a swap of neighbours as one edit, so FORM is one step from FROM.
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

function unknownInstruction(keyword: string): string {
  const upper = keyword.toUpperCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of keywords) {
    const d = editDistance(upper, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  const hint = best && bestDistance <= Math.max(1, Math.floor(upper.length / 3)) ? ` (did you mean ${best}?)` : '';
  return `unknown instruction: ${upper}${hint}`;
}

// Go's time.ParseDuration, in nanoseconds: `30s`, `1m30s`, `1.5h`, `500ms`, `0`.
function parseDuration(flag: string, value: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const invalid = (): never => {
    throw new Error(`invalid duration ${JSON.stringify(value)} for --${flag}`);
  };
  if (value === '0') return 0;
  const body = value.replace(/^[+-]/, '');
  if (body === '') invalid();
  let total = 0;
  const part = /(\d*\.?\d*)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/y;
  let pos = 0;
  while (pos < body.length) {
    part.lastIndex = pos;
    const match = part.exec(body);
    if (!match || match[1] === '' || match[1] === '.') invalid();
    total += Number(match![1]) * units[match![2]!]!;
    pos = part.lastIndex;
  }
  const ns = Math.round(value.startsWith('-') ? -total : total);
  if (ns !== 0 && ns < 1e6) throw new Error(`Interval "${flag}" cannot be less than 1ms`);
  return ns;
}

function chompHeredoc(content: string): string {
  return content.replace(/^\t+/gm, '');
}

function commandLine(node: SyntaxNode, args: readonly string[]): CommandLine {
  return node.form === 'json' ? { form: 'exec', args, heredocs: [] } : { form: 'shell', args: args.length ? [args.join(' ')] : [], heredocs: node.heredocs };
}

function pairs(node: SyntaxNode, keyword: string): KeyValue[] {
  if (node.args.length === 0) throw new Error(`${keyword} requires at least one argument`);
  const out: KeyValue[] = [];
  for (let i = 0; i + 1 < node.args.length; i += 2) {
    if (node.args[i] === '') throw new Error(`${keyword} names can not be blank`);
    out.push({ key: node.args[i]!, value: node.args[i + 1]! });
  }
  return out;
}

function exactlyOne(node: SyntaxNode, keyword: string): string {
  if (node.args.length !== 1) throw new Error(`${keyword} requires exactly one argument`);
  return node.args[0]!;
}

function atLeastOne(node: SyntaxNode, keyword: string): readonly string[] {
  if (node.args.length === 0) throw new Error(`${keyword} requires at least one argument`);
  return node.args;
}

/** Checks a `--chmod` value that holds no variables: octal, at most 07777. */
export function checkChmod(value: string): void {
  if (!/^[0-7]+$/.test(value) || parseInt(value, 8) > 0o7777) {
    throw new Error(`invalid chmod parameter: '${value}'. it should be octal string and between 0 and 07777`);
  }
}

function copySources(node: SyntaxNode, keyword: 'COPY' | 'ADD'): { sources: string[]; inline: InlineSource[]; dest: string } {
  if (node.args.length < 2) {
    throw new Error(`${keyword} requires at least two arguments, but only one was provided. Destination could not be determined`);
  }
  const dest = node.args.at(-1)!;
  const json = node.form === 'json';
  if (!json && parseHeredocWord(dest)) throw new Error(`${keyword} cannot accept a heredoc as a destination`);
  const bodies = new Map<string, Heredoc>(node.heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const inline: InlineSource[] = [];
  for (const src of node.args.slice(0, -1)) {
    const head = json ? undefined : parseHeredocWord(src);
    const doc = head && bodies.get(head.name);
    if (doc) inline.push({ name: doc.name, content: doc.chomp ? chompHeredoc(doc.content) : doc.content, expand: doc.expand });
    else sources.push(src);
  }
  return { sources, inline, dest };
}

function typeInstruction(node: SyntaxNode): Instruction | FromInstruction {
  const keyword = node.keyword.toUpperCase();
  if (!(keywords as readonly string[]).includes(keyword)) throw new Error(unknownInstruction(node.keyword));
  const flags = parseFlags(node.flags, flagSpecs[keyword] ?? {});
  const base = { startLine: node.startLine, endLine: node.endLine, original: node.original, flags: node.flags, args: node.args };
  const opt = <K extends string>(k: K, v: string | undefined): { [P in K]?: string } => (v === undefined ? {} : ({ [k]: v } as { [P in K]?: string }));

  switch (keyword) {
    case 'FROM': {
      const args = node.args;
      let name: string | undefined;
      if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
        name = args[2]!.toLowerCase();
        if (!stageNamePattern.test(name)) {
          throw new Error(`invalid name for build stage: ${JSON.stringify(args[2])}, name can't start with a number or contain symbols`);
        }
      } else if (args.length !== 1) throw new Error('FROM requires either one or three arguments');
      return { kind: 'FROM', ...base, image: args[0]!, ...opt('name', name), ...opt('platform', flags.string('platform')) };
    }
    case 'RUN': {
      if (node.args.length === 0) throw new Error('RUN requires at least one argument');
      const network = flags.string('network');
      if (network !== undefined && !['default', 'none', 'host'].includes(network)) throw new Error(`unsupported network mode ${JSON.stringify(network)}`);
      const security = flags.string('security');
      if (security !== undefined && security !== 'sandbox' && security !== 'insecure') throw new Error(`unsupported security mode ${JSON.stringify(security)}`);
      const mountSpecs = flags.strings('mount');
      const run: RunInstruction = {
        kind: 'RUN',
        ...base,
        command: commandLine(node, node.args),
        mountSpecs,
        mounts: mountSpecs.map((spec) => parseRunMount(spec)),
        ...(network !== undefined ? { network: network as RunInstruction['network'] & string } : {}),
        ...(security !== undefined ? { security } : {}),
      };
      return run;
    }
    case 'CMD':
      return { kind: 'CMD', ...base, command: commandLine(node, node.args) };
    case 'ENTRYPOINT':
      return { kind: 'ENTRYPOINT', ...base, command: commandLine(node, node.args) };
    case 'COPY':
    case 'ADD': {
      const { sources, inline, dest } = copySources(node, keyword);
      const chmod = flags.string('chmod');
      if (chmod !== undefined && !chmod.includes('$')) checkChmod(chmod);
      const common = {
        ...base,
        sources,
        inline,
        dest,
        link: flags.bool('link'),
        exclude: flags.strings('exclude'),
        json: node.form === 'json',
        ...opt('chown', flags.string('chown')),
        ...opt('chmod', chmod),
      };
      if (keyword === 'COPY') return { kind: 'COPY', ...common, parents: flags.bool('parents'), ...opt('from', flags.string('from')) };
      const checksum = flags.string('checksum');
      if (checksum !== undefined) {
        if (sources.length !== 1) throw new Error("checksum can't be specified for multiple sources");
        if (!sources[0]!.includes('$') && !/^https?:\/\//i.test(sources[0]!)) throw new Error("checksum can't be specified for non-HTTP(S) sources");
      }
      return {
        kind: 'ADD',
        ...common,
        keepGitDir: flags.bool('keep-git-dir'),
        ...opt('checksum', checksum),
        ...(flags.has('unpack') ? { unpack: flags.bool('unpack') } : {}),
      };
    }
    case 'ENV':
      return { kind: 'ENV', ...base, pairs: pairs(node, 'ENV'), legacy: node.equals?.[0] === false };
    case 'LABEL':
      return { kind: 'LABEL', ...base, pairs: pairs(node, 'LABEL'), legacy: node.equals?.[0] === false };
    case 'ARG': {
      const definitions = atLeastOne(node, 'ARG').map((word) => {
        const eq = word.indexOf('=');
        if (eq === 0) throw new Error('ARG names can not be blank');
        return eq < 0 ? { key: word } : { key: word.slice(0, eq), value: word.slice(eq + 1) };
      });
      return { kind: 'ARG', ...base, definitions };
    }
    case 'WORKDIR':
      return { kind: 'WORKDIR', ...base, path: exactlyOne(node, 'WORKDIR') };
    case 'USER':
      return { kind: 'USER', ...base, user: exactlyOne(node, 'USER') };
    case 'STOPSIGNAL':
      return { kind: 'STOPSIGNAL', ...base, signal: exactlyOne(node, 'STOPSIGNAL') };
    case 'MAINTAINER':
      return { kind: 'MAINTAINER', ...base, maintainer: exactlyOne(node, 'MAINTAINER') };
    case 'EXPOSE':
      return { kind: 'EXPOSE', ...base, ports: atLeastOne(node, 'EXPOSE') };
    case 'VOLUME': {
      const paths = atLeastOne(node, 'VOLUME').map((v) => v.trim());
      if (paths.some((p) => p === '')) throw new Error('VOLUME specified can not be an empty string');
      return { kind: 'VOLUME', ...base, paths };
    }
    case 'SHELL':
      if (node.args.length === 0) throw new Error('SHELL requires at least one argument');
      if (node.form !== 'json') throw new Error('SHELL requires the arguments to be in JSON form');
      return { kind: 'SHELL', ...base, shell: node.args };
    case 'HEALTHCHECK': {
      const [type, ...command] = atLeastOne(node, 'HEALTHCHECK');
      const upper = type!.toUpperCase();
      if (upper === 'NONE') {
        if (command.length !== 0) throw new Error('HEALTHCHECK NONE takes no arguments');
        return { kind: 'HEALTHCHECK', ...base };
      }
      if (upper !== 'CMD') throw new Error(`Unknown type ${JSON.stringify(type)} in HEALTHCHECK (try CMD)`);
      if (command.length === 0) throw new Error('Missing command after HEALTHCHECK CMD');
      const durations: Array<[string, keyof HealthcheckSettings]> = [
        ['interval', 'interval'],
        ['timeout', 'timeout'],
        ['start-period', 'startPeriod'],
        ['start-interval', 'startInterval'],
      ];
      const settings: Record<string, unknown> = { command: commandLine(node, command) };
      for (const [flag, field] of durations) {
        const value = flags.string(flag);
        if (value !== undefined) settings[field] = parseDuration(flag, value);
      }
      const retries = flags.string('retries');
      if (retries !== undefined) {
        if (!/^[+-]?\d+$/.test(retries)) throw new Error(`invalid value for --retries: ${retries}`);
        if (Number(retries) < 0) throw new Error(`--retries cannot be negative (${retries})`);
        settings['retries'] = Number(retries);
      }
      return { kind: 'HEALTHCHECK', ...base, check: settings as unknown as HealthcheckSettings };
    }
    case 'ONBUILD': {
      if (!node.child) throw new Error('ONBUILD requires at least one argument');
      const triggerKeyword = node.child.keyword.toUpperCase();
      if (triggerKeyword === 'ONBUILD') throw new Error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (triggerKeyword === 'FROM' || triggerKeyword === 'MAINTAINER') throw new Error(`${triggerKeyword} isn't allowed as an ONBUILD trigger`);
      const trigger = typeInstruction({ ...node.child, heredocs: node.heredocs }) as Instruction;
      let expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
      for (const doc of node.heredocs) expression += '\n' + doc.content + doc.name;
      return { kind: 'ONBUILD', ...base, expression, trigger };
    }
  }
  throw new Error(unknownInstruction(node.keyword));
}

/**
 * Parses a Dockerfile into stages of typed instructions, with docker's syntax: parser
 * directives, continuation lines, comments, JSON and shell forms, heredocs, ARGs before the
 * first FROM. Variables are not substituted here (see `StageExpander`). Throws
 * DockerfileError naming the file, the line and what is wrong.
 */
export function parseDockerfile(text: string, options: ParseDockerfileOptions = {}): Dockerfile {
  const file = options.file ?? 'Dockerfile';
  const syntax = scanDockerfile(text, file);
  if (syntax.nodes.length === 0) throw new DockerfileError({ file, line: 0, reason: 'file with no instructions' });

  const metaArgs: ArgInstruction[] = [];
  const stages: Array<{ from: FromInstruction; instructions: Instruction[] }> = [];
  const names = new Set<string>();
  for (const node of syntax.nodes) {
    let typed: Instruction | FromInstruction;
    try {
      typed = typeInstruction(node);
    } catch (err) {
      throw new DockerfileError({ file, line: node.startLine, endLine: node.endLine, reason: err instanceof Error ? err.message : String(err), cause: err });
    }
    if (typed.kind === 'FROM') {
      if (typed.name !== undefined) {
        if (names.has(typed.name)) {
          throw new DockerfileError({ file, line: node.startLine, reason: `duplicate stage name ${JSON.stringify(typed.name)}` });
        }
        names.add(typed.name);
      }
      stages.push({ from: typed, instructions: [] });
    } else if (stages.length === 0) {
      if (typed.kind !== 'ARG') {
        throw new DockerfileError({ file, line: node.startLine, reason: `${typed.kind} before the first FROM: no build stage in current context` });
      }
      metaArgs.push(typed);
    } else stages.at(-1)!.instructions.push(typed);
  }
  if (stages.length === 0) throw new DockerfileError({ file, line: 0, reason: 'dockerfile contains no stages to build' });

  return {
    file,
    directives: syntax.directives,
    metaArgs,
    stages: stages.map(({ from, instructions }, index): Stage => ({
      index,
      ...(from.name !== undefined ? { name: from.name } : {}),
      base: from.image,
      ...(from.platform !== undefined ? { platform: from.platform } : {}),
      from,
      instructions,
      startLine: from.startLine,
      endLine: instructions.at(-1)?.endLine ?? from.endLine,
    })),
    warnings: syntax.warnings,
  };
}

/**
 * Parses the ONBUILD triggers of a base image (its config's `OnBuild`), which run first in a
 * stage built FROM it. Errors name `<image> ONBUILD` and the trigger's position.
 */
export function parseOnbuildTriggers(triggers: readonly string[], options: ParseDockerfileOptions = {}): Instruction[] {
  const file = options.file ?? 'ONBUILD';
  return triggers.map((trigger, i) => {
    const syntax = scanDockerfile(trigger, `${file}[${i}]`);
    const node = syntax.nodes[0];
    if (!node) throw new DockerfileError({ file, line: i + 1, reason: 'empty ONBUILD trigger' });
    try {
      const typed = typeInstruction(node);
      if (typed.kind === 'FROM' || typed.kind === 'ONBUILD' || typed.kind === 'MAINTAINER') throw new Error(`${typed.kind} isn't allowed as an ONBUILD trigger`);
      return typed;
    } catch (err) {
      throw new DockerfileError({ file, line: i + 1, reason: err instanceof Error ? err.message : String(err), cause: err });
    }
  });
}
