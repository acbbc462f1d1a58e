import { posix } from 'node:path';
import type { CommandLine, Instruction, KeyValue, RunInstruction } from './dockerfile-ast.js';
import { proxyBuildArgs } from './build-args.js';
import { parseHeredocWord } from './dockerfile-syntax.js';
import { BuilderErrorCode, DockerfileError, ExpansionError } from './errors.js';
import { checkChmod } from './parse-dockerfile.js';
import { parseRunMount } from './run-mount.js';
import { expandWord, type EscapeToken, type ExpansionOptions } from './word-expansion.js';

/** What a stage's base image contributes to expansion: its config's Env, WorkingDir, User and Shell. */
export interface StageBaseConfig {
  /** `KEY=value` entries, as in the image config. */
  readonly Env?: readonly string[] | null;
  readonly WorkingDir?: string;
  readonly User?: string;
  readonly Shell?: readonly string[];
}

/** Options of a StageExpander. */
export interface StageExpanderOptions {
  /** The Dockerfile's name, for errors (default `Dockerfile`). */
  readonly file?: string;
  readonly escapeToken?: EscapeToken;
  /** `--build-arg` values. */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** The global scope from `resolveMetaArgs`, which a bare `ARG name` in the stage inherits from. */
  readonly metaArgs?: ReadonlyMap<string, string>;
  /** The base image's config (nothing for `scratch`). */
  readonly base?: StageBaseConfig;
}

/** A file the executor must provide read-only while a RUN executes (a heredoc script with a shebang). */
export interface InlineFile {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
}

/** One instruction after expansion, with what the executor and the cache key need from it. */
export interface ExpandedStep {
  /** The instruction with docker's substitutions applied (same shape as parsed). */
  readonly instruction: Instruction;
  /**
   * The build args the step depends on, name → value: those its substitutions read, and for
   * RUN every declared ARG with a value (they are in its environment). Proxy args stay out
   * unless declared.
   */
  readonly buildArgs: Readonly<Record<string, string>>;
  /** RUN, CMD, ENTRYPOINT: the argv to run (shell form wrapped in the stage's SHELL). */
  readonly argv?: readonly string[];
  /** RUN: the process environment (`KEY=value`): the image's, ENVs, then ARG values not shadowed. */
  readonly runEnv?: readonly string[];
  /** RUN: files to mount for heredoc scripts. */
  readonly inlineFiles?: readonly InlineFile[];
  /** HEALTHCHECK: the image config's Test (`["CMD", ...]`, `["CMD-SHELL", cmd]` or `["NONE"]`). */
  readonly healthTest?: readonly string[];
  /** The working directory after this step. */
  readonly workdir: string;
}

const defaultShell = ['/bin/sh', '-c'];

function parseEnvList(list: readonly string[] | null | undefined): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of list ?? []) {
    const eq = entry.indexOf('=');
    if (eq < 0) env.set(entry, '');
    else env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

/**
 * Walks one stage's instructions in order and applies docker's variable substitution where
 * docker applies it (ADD COPY ENV EXPOSE LABEL STOPSIGNAL USER VOLUME WORKDIR, ARG defaults,
 * `--chown`/`--chmod`/`--from`/`--checksum` and RUN mount options; never RUN, CMD, ENTRYPOINT
 * or ONBUILD), keeping the stage's ENV, ARG, WORKDIR, USER and SHELL state between steps.
 * The executor calls `expand` once per instruction, after the base image is known.
 */
export class StageExpander {
  readonly #file: string;
  readonly #escape: EscapeToken;
  readonly #buildArgs: Readonly<Record<string, string>>;
  readonly #metaArgs: ReadonlyMap<string, string>;
  readonly #env: Map<string, string>;
  /** Declared ARGs, in order; undefined for one declared without any value. */
  readonly #args = new Map<string, string | undefined>();
  #workdir: string;
  #user: string;
  #shell: readonly string[];

  constructor(options: StageExpanderOptions = {}) {
    this.#file = options.file ?? 'Dockerfile';
    this.#escape = options.escapeToken ?? '\\';
    this.#buildArgs = options.buildArgs ?? {};
    this.#metaArgs = options.metaArgs ?? new Map();
    this.#env = parseEnvList(options.base?.Env);
    this.#workdir = options.base?.WorkingDir || '/';
    this.#user = options.base?.User ?? '';
    this.#shell = options.base?.Shell?.length ? options.base.Shell : defaultShell;
  }

  /** The stage's environment so far (image ENV and the stage's ENVs), in definition order. */
  get env(): ReadonlyMap<string, string> {
    return this.#env;
  }

  get workdir(): string {
    return this.#workdir;
  }

  get user(): string {
    return this.#user;
  }

  get shell(): readonly string[] {
    return this.#shell;
  }

  // ENV wins over ARG of the same name, as docker documents.
  #scope(): Map<string, string> {
    const scope = new Map<string, string>();
    for (const [k, v] of this.#args) if (v !== undefined) scope.set(k, v);
    for (const [k, v] of this.#env) scope.set(k, v);
    return scope;
  }

  #fail(instruction: Instruction, err: unknown): never {
    if (err instanceof DockerfileError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new DockerfileError({
      file: this.#file,
      line: instruction.startLine,
      endLine: instruction.endLine,
      reason,
      code: err instanceof ExpansionError ? BuilderErrorCode.DockerfileExpansion : BuilderErrorCode.DockerfileSyntax,
      cause: err,
    });
  }

  /** Expands one instruction and applies its effect on the stage's state. */
  expand(instruction: Instruction): ExpandedStep {
    try {
      return this.#expand(instruction);
    } catch (err) {
      return this.#fail(instruction, err);
    }
  }

  #expand(instruction: Instruction): ExpandedStep {
    const scope = this.#scope();
    const read = new Set<string>();
    const opts: ExpansionOptions = { escapeToken: this.#escape };
    const word = (text: string, extra: ExpansionOptions = {}): string => {
      const result = expandWord(text, scope, { ...opts, ...extra });
      for (const name of result.used) read.add(name);
      return result.value;
    };
    const words = (text: string): readonly string[] => {
      const result = expandWord(text, scope, opts);
      for (const name of result.used) read.add(name);
      return result.words;
    };
    const maybe = <K extends string>(key: K, value: string | undefined): { [P in K]?: string } =>
      value === undefined ? {} : ({ [key]: word(value) } as { [P in K]?: string });
    const argsRead = (): Record<string, string> => {
      const out: Record<string, string> = {};
      for (const name of [...read].sort()) {
        const value = this.#args.get(name);
        if (value !== undefined && !this.#env.has(name)) out[name] = value;
      }
      return out;
    };
    const step = (expanded: Instruction, extra: Omit<ExpandedStep, 'instruction' | 'buildArgs' | 'workdir'> = {}): ExpandedStep => ({
      instruction: expanded,
      buildArgs: argsRead(),
      workdir: this.#workdir,
      ...extra,
    });

    switch (instruction.kind) {
      case 'ENV': {
        const pairs = this.#pairs(instruction.pairs, word);
        for (const { key, value } of pairs) this.#env.set(key, value);
        return step({ ...instruction, pairs });
      }
      case 'LABEL':
        return step({ ...instruction, pairs: this.#pairs(instruction.pairs, word) });
      case 'ARG': {
        const definitions = instruction.definitions.map((def) => {
          let value: string | undefined;
          if (Object.hasOwn(this.#buildArgs, def.key)) value = this.#buildArgs[def.key]!;
          else if (def.value !== undefined) {
            const result = expandWord(def.value, this.#scope(), opts);
            for (const name of result.used) read.add(name);
            value = result.value;
          } else value = this.#metaArgs.get(def.key);
          this.#args.set(def.key, value);
          return value === undefined ? { key: def.key } : { key: def.key, value };
        });
        return step({ ...instruction, definitions });
      }
      case 'WORKDIR': {
        const path = word(instruction.path);
        this.#workdir = posix.resolve(this.#workdir, path);
        return step({ ...instruction, path });
      }
      case 'USER': {
        const user = word(instruction.user);
        this.#user = user;
        return step({ ...instruction, user });
      }
      case 'STOPSIGNAL':
        return step({ ...instruction, signal: word(instruction.signal) });
      case 'EXPOSE':
        return step({ ...instruction, ports: instruction.ports.flatMap((p) => words(p)) });
      case 'VOLUME': {
        const paths = instruction.paths.map((p) => word(p));
        if (paths.some((p) => p.trim() === '')) throw new Error('VOLUME specified can not be an empty string');
        return step({ ...instruction, paths });
      }
      case 'COPY':
      case 'ADD': {
        const chmod = instruction.chmod === undefined ? undefined : word(instruction.chmod);
        if (chmod !== undefined) checkChmod(chmod);
        const common = {
          sources: instruction.sources.map((s) => word(s)),
          dest: word(instruction.dest),
          inline: instruction.inline.map((f) => (f.expand ? { ...f, content: word(f.content, { heredoc: true }) } : f)),
          exclude: instruction.exclude.map((e) => word(e)),
          ...maybe('chown', instruction.chown),
          ...(chmod !== undefined ? { chmod } : {}),
        };
        if (instruction.kind === 'COPY') return step({ ...instruction, ...common, ...maybe('from', instruction.from) });
        const expanded = { ...instruction, ...common, ...maybe('checksum', instruction.checksum) };
        if (expanded.checksum !== undefined && !/^https?:\/\//i.test(expanded.sources[0] ?? '')) {
          throw new Error("checksum can't be specified for non-HTTP(S) sources");
        }
        return step(expanded);
      }
      case 'RUN':
        return this.#run(instruction, word, read, argsRead);
      case 'CMD':
      case 'ENTRYPOINT':
        return step(instruction, { argv: this.#argv(instruction.command) });
      case 'HEALTHCHECK': {
        const check = instruction.check;
        if (!check) return step(instruction, { healthTest: ['NONE'] });
        const test = check.command.form === 'exec' ? ['CMD', ...check.command.args] : ['CMD-SHELL', check.command.args[0] ?? ''];
        return step(instruction, { healthTest: test });
      }
      case 'SHELL':
        this.#shell = instruction.shell;
        return step(instruction);
      case 'ONBUILD':
      case 'MAINTAINER':
        return step(instruction);
    }
  }

  #pairs(pairs: readonly KeyValue[], word: (text: string) => string): KeyValue[] {
    // The whole instruction sees the state before it: `ENV a=1 b=$a` reads the old a.
    return pairs.map(({ key, value }) => {
      const k = word(key);
      if (k === '') throw new Error('names can not be blank');
      return { key: k, value: word(value) };
    });
  }

  #argv(command: CommandLine): string[] {
    if (command.form === 'exec') return [...command.args];
    return [...this.#shell, command.args[0] ?? ''];
  }

  #run(instruction: RunInstruction, word: (text: string) => string, read: Set<string>, argsRead: () => Record<string, string>): ExpandedStep {
    const mounts = instruction.mountSpecs.map((spec) => parseRunMount(spec, (v) => word(v)));
    const command = instruction.command;
    let argv: string[];
    const inlineFiles: InlineFile[] = [];
    if (command.form === 'exec' || command.heredocs.length === 0) argv = this.#argv(command);
    else {
      const text = command.args[0] ?? '';
      const first = command.heredocs[0]!;
      const body = first.chomp ? first.content.replace(/^\t+/gm, '') : first.content;
      if (parseHeredocWord(text)) {
        // `RUN <<EOF` alone: a shebang body becomes an executable script, any other body is
        // the shell command itself, as BuildKit does.
        if (body.startsWith('#!')) {
          const path = posix.join('/dev/pipes', first.name);
          inlineFiles.push({ path, content: body, mode: 0o755 });
          argv = [...this.#shell, path];
        } else argv = [...this.#shell, body];
      } else {
        // A heredoc inside a longer command: hand the whole here-document to the shell.
        let full = text;
        for (const doc of command.heredocs) full += '\n' + doc.content + doc.name;
        argv = [...this.#shell, full];
      }
    }

    // Every declared ARG with a value is in the RUN's environment, hence in its cache key.
    for (const [name, value] of this.#args) if (value !== undefined) read.add(name);
    const runEnv = [...this.#env].map(([k, v]) => `${k}=${v}`);
    for (const [k, v] of this.#args) if (v !== undefined && !this.#env.has(k)) runEnv.push(`${k}=${v}`);
    for (const name of proxyBuildArgs) {
      if (Object.hasOwn(this.#buildArgs, name) && !this.#args.has(name) && !this.#env.has(name)) runEnv.push(`${name}=${this.#buildArgs[name]}`);
    }
    return {
      instruction: { ...instruction, mounts },
      buildArgs: argsRead(),
      argv,
      runEnv,
      ...(inlineFiles.length ? { inlineFiles } : {}),
      workdir: this.#workdir,
    };
  }
}
