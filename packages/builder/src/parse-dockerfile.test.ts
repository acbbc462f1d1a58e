import { describe, expect, it } from 'vitest';
import { hasCode, hasKind } from '@berth/errors';
import type { Instruction, Stage } from './dockerfile-ast.js';
import { DockerfileError } from './errors.js';
import { parseDockerfile, parseOnbuildTriggers } from './parse-dockerfile.js';

const parse = (text: string) => parseDockerfile(text);
const only = (text: string): Instruction => {
  const stage = parse(text).stages[0]!;
  expect(stage.instructions).toHaveLength(1);
  return stage.instructions[0]!;
};
const failure = (text: string, file?: string): DockerfileError => {
  try {
    parseDockerfile(text, file ? { file } : {});
  } catch (err) {
    expect(err).toBeInstanceOf(DockerfileError);
    return err as DockerfileError;
  }
  throw new Error('expected the Dockerfile to be rejected');
};

describe('parser directives', () => {
  it('reads syntax, escape and check, case-insensitively and with spaces around =', () => {
    const df = parse('# syntax=docker/dockerfile:1\n# ESCAPE = `\n#check=skip=all\nFROM busybox\n');
    expect(df.directives).toEqual({ syntax: 'docker/dockerfile:1', escape: '`', check: 'skip=all' });
  });

  it('uses the backtick as escape and continuation character (the reference Windows example)', () => {
    const df = parse('# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\nRUN echo a `\n    b\n');
    const [copy, run, cont] = df.stages[0]!.instructions;
    expect(copy).toMatchObject({ kind: 'COPY', sources: ['testfile.txt'], dest: 'c:\\' });
    expect(run).toMatchObject({ kind: 'RUN', command: { form: 'shell', args: ['dir c:\\'] } });
    expect(cont).toMatchObject({ kind: 'RUN', command: { args: ['echo a     b'] }, startLine: 6, endLine: 7 });
  });

  it('treats a backslash at the end of a line as a continuation by default, so c:\\ joins the next line', () => {
    const df = parse('FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\n');
    expect(df.stages[0]!.instructions).toHaveLength(1);
    expect(df.stages[0]!.instructions[0]).toMatchObject({ kind: 'COPY', args: ['testfile.txt', 'c:RUN', 'dir', 'c:'] });
  });

  it('stops looking for directives after the first comment, blank line or instruction', () => {
    expect(parse('FROM busybox\n# escape=`\n').directives.escape).toBe('\\');
    expect(parse('# comment\n# escape=`\nFROM busybox\n').directives.escape).toBe('\\');
    expect(parse('\n# escape=`\nFROM busybox\n').directives.escape).toBe('\\');
    expect(parse('# unknowndirective=value\n# escape=`\nFROM busybox\n').directives.escape).toBe('\\');
  });

  it('rejects a repeated directive and a bad escape token, naming the line', () => {
    const twice = failure('# escape=\\\n# escape=`\nFROM busybox\n');
    expect(twice.message).toBe('Dockerfile:2: only one escape parser directive can be used');
    expect(failure('# escape=x\nFROM busybox\n').message).toBe("Dockerfile:1: invalid escape token 'x' does not match ` or \\");
  });

  it('strips a byte-order mark', () => {
    expect(parse('\uFEFF# escape=`\nFROM busybox\n').directives.escape).toBe('`');
  });
});

describe('lines, continuations and comments', () => {
  it('joins continuation lines, keeping the spaces of the continued line', () => {
    const run = only('FROM busybox\nRUN echo hello \\\n    world \\\n  !\n');
    expect(run).toMatchObject({ command: { args: ['echo hello     world   !'] }, startLine: 2, endLine: 4 });
  });

  it('drops comment lines inside a continuation, and records empty continuation lines as a warning', () => {
    const df = parse('FROM busybox\nRUN echo a \\\n# a comment\n  \\\n\n b\n');
    expect(df.stages[0]!.instructions[0]).toMatchObject({ command: { args: ['echo a    b'] }, startLine: 2, endLine: 6 });
    expect(df.warnings).toEqual(['Dockerfile:2: empty continuation line found in: RUN echo a    b']);
  });

  it('does not treat an escaped escape character at the end of a line as a continuation', () => {
    const df = parse('FROM busybox\nRUN echo a\\\\\nRUN echo b\n');
    expect(df.stages[0]!.instructions.map((i) => i.original)).toEqual(['RUN echo a\\\\', 'RUN echo b']);
  });

  it('ignores blank lines, comments and indentation, and is case-insensitive about keywords', () => {
    const df = parse('\n  # comment\nfrom busybox AS Base\n\n   run echo hi # not a comment\n');
    expect(df.stages[0]).toMatchObject({ name: 'base', base: 'busybox', startLine: 3, endLine: 5 });
    expect(df.stages[0]!.instructions[0]).toMatchObject({ kind: 'RUN', command: { args: ['echo hi # not a comment'] } });
  });

  it('handles CRLF line endings', () => {
    const df = parse('FROM busybox\r\nRUN echo a \\\r\n  b\r\nENV A=1\r\n');
    expect(df.stages[0]!.instructions.map((i) => i.original)).toEqual(['RUN echo a   b', 'ENV A=1']);
  });
});

describe('JSON and shell forms', () => {
  it('parses the exec form with JSON escapes', () => {
    const cmd = only('FROM busybox\nCMD ["echo", "say \\"hi\\"", "tab\\there", "c:\\\\dir", "\\u00e9"]\n');
    expect(cmd).toMatchObject({ kind: 'CMD', command: { form: 'exec', args: ['echo', 'say "hi"', 'tab\there', 'c:\\dir', 'é'] } });
  });

  it('parses a JSON array continued over escaped newlines', () => {
    const run = only('FROM busybox\nRUN ["echo", \\\n     "hello", \\\n     "world"]\n');
    expect(run).toMatchObject({ command: { form: 'exec', args: ['echo', 'hello', 'world'] }, startLine: 2, endLine: 4 });
  });

  it('keeps JSON form with the backtick escape directive', () => {
    const cmd = only('# escape=`\nFROM busybox\nENTRYPOINT ["c:\\\\app.exe", `\n  "-v"]\n');
    expect(cmd).toMatchObject({ kind: 'ENTRYPOINT', command: { form: 'exec', args: ['c:\\app.exe', '-v'] } });
  });

  it('falls back to the shell form for what is not a JSON array', () => {
    expect(only('FROM busybox\nRUN [ -f /x ] && echo yes\n')).toMatchObject({ command: { form: 'shell', args: ['[ -f /x ] && echo yes'] } });
    expect(only("FROM busybox\nCMD ['single', 'quotes']\n")).toMatchObject({ command: { form: 'shell' } });
    expect(only('FROM busybox\nCMD ["a"] trailing\n')).toMatchObject({ command: { form: 'shell', args: ['["a"] trailing'] } });
  });

  it('rejects a JSON array of non-strings', () => {
    expect(failure('FROM busybox\nCMD ["a", 1]\n').reason).toBe('when using JSON array syntax, arrays must be comprised of strings only');
  });

  it('splits COPY in JSON form without word splitting, so paths may hold spaces', () => {
    expect(only('FROM busybox\nCOPY ["my file.txt", "other", "/dest dir/"]\n')).toMatchObject({
      sources: ['my file.txt', 'other'],
      dest: '/dest dir/',
      json: true,
    });
  });
});

describe('heredocs', () => {
  it('attaches a RUN heredoc and resumes after its terminator', () => {
    const df = parse('FROM busybox\nRUN <<EOF\necho hello\necho $HOME\nEOF\nCMD ["sh"]\n');
    const [run, cmd] = df.stages[0]!.instructions;
    expect(run).toMatchObject({
      kind: 'RUN',
      startLine: 2,
      endLine: 5,
      command: { form: 'shell', args: ['<<EOF'], heredocs: [{ name: 'EOF', content: 'echo hello\necho $HOME\n', expand: true, chomp: false, fileDescriptor: 0 }] },
    });
    expect(cmd).toMatchObject({ kind: 'CMD', startLine: 6 });
  });

  it('marks quoted delimiters as not expanded, and <<- as chomping tabs', () => {
    const run = only('FROM busybox\nRUN <<"EOF" cat && <<-\'END\' cat && 3<<X cat\na\nEOF\n\tb\n\tEND\nc\nX\n');
    expect(run.kind === 'RUN' && run.command.heredocs).toEqual([
      { name: 'EOF', content: 'a\n', expand: false, chomp: false, fileDescriptor: 0 },
      { name: 'END', content: '\tb\n', expand: false, chomp: true, fileDescriptor: 0 },
      { name: 'X', content: 'c\n', expand: true, chomp: false, fileDescriptor: 3 },
    ]);
  });

  it('reads several COPY heredocs as inline files, tabs stripped for <<-', () => {
    const copy = only('FROM busybox\nCOPY <<a.txt <<-b.txt /dest/\nalpha\na.txt\n\tbeta\n\tb.txt\n');
    expect(copy).toMatchObject({
      kind: 'COPY',
      sources: [],
      dest: '/dest/',
      inline: [
        { name: 'a.txt', content: 'alpha\n', expand: true },
        { name: 'b.txt', content: 'beta\n', expand: true },
      ],
      startLine: 2,
      endLine: 6,
    });
  });

  it('keeps a shebang heredoc body as written', () => {
    const run = only('FROM busybox\nRUN <<EOT\n#!/usr/bin/env python3\nprint("hi")\nEOT\n');
    expect(run.kind === 'RUN' && run.command.heredocs[0]!.content).toBe('#!/usr/bin/env python3\nprint("hi")\n');
  });

  it('does not see heredocs in JSON form, in quotes, or in instructions that take none', () => {
    expect(only('FROM busybox\nRUN ["cat", "<<EOF"]\n')).toMatchObject({ command: { form: 'exec', heredocs: [] } });
    expect(only('FROM busybox\nRUN echo "<<EOF"\n')).toMatchObject({ command: { heredocs: [] } });
    expect(parse('FROM busybox\nLABEL a=<<EOF\nENV B=1\n').stages[0]!.instructions).toHaveLength(2);
  });

  it('supports heredocs in ONBUILD triggers and records them in the expression', () => {
    const onbuild = only('FROM busybox\nONBUILD RUN <<EOF\necho hi\nEOF\n');
    expect(onbuild).toMatchObject({ kind: 'ONBUILD', expression: 'RUN <<EOF\necho hi\nEOF', trigger: { kind: 'RUN', command: { heredocs: [{ name: 'EOF' }] } } });
  });

  it('rejects an unterminated heredoc and a heredoc destination', () => {
    const err = failure('FROM busybox\nRUN <<EOF\necho hi\n');
    expect(err.message).toBe('Dockerfile:2: unterminated heredoc EOF');
    expect(err.endLine).toBe(3);
    expect(failure('FROM busybox\nCOPY a <<EOF\nx\nEOF\n').reason).toBe('COPY cannot accept a heredoc as a destination');
  });
});

describe('instructions', () => {
  it('parses FROM with AS, --platform and scratch, and ARGs before the first FROM', () => {
    const df = parse('ARG BASE=busybox\nARG TAG\nFROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-latest} AS Build\nFROM scratch\n');
    expect(df.metaArgs.map((a) => a.definitions)).toEqual([[{ key: 'BASE', value: 'busybox' }], [{ key: 'TAG' }]]);
    expect(df.stages.map((s: Stage) => [s.index, s.name, s.base, s.platform])).toEqual([
      [0, 'build', '${BASE}:${TAG:-latest}', '$BUILDPLATFORM'],
      [1, undefined, 'scratch', undefined],
    ]);
  });

  it('parses RUN flags: mounts of every type, network and security', () => {
    const run = only(
      'FROM busybox\nRUN --mount=type=cache,target=/root/.cache,sharing=locked --mount=type=bind,from=build,source=/out,target=/in,rw ' +
        '--mount=type=tmpfs,target=/tmp,size=64m --mount=type=secret,id=tok,required --mount=type=ssh --network=none --security=sandbox make\n',
    );
    expect(run).toMatchObject({
      kind: 'RUN',
      network: 'none',
      security: 'sandbox',
      command: { form: 'shell', args: ['make'] },
      mounts: [
        { type: 'cache', target: '/root/.cache', id: '/root/.cache', sharing: 'locked', readOnly: false, mode: 0o755 },
        { type: 'bind', from: 'build', source: '/out', target: '/in', readWrite: true },
        { type: 'tmpfs', target: '/tmp', size: 64 * 1024 * 1024 },
        { type: 'secret', id: 'tok', required: true, mode: 0o400 },
        { type: 'ssh', id: 'default', required: false },
      ],
    });
  });

  it('parses COPY and ADD flags', () => {
    const df = parse(
      'FROM busybox\nCOPY --from=build --chown=1000:1000 --chmod=0755 --link a* b? /app/\n' +
        'ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/x.tar.gz /x/\n' +
        'ADD --unpack=false --keep-git-dir=true local.tar /t/\n',
    );
    const [copy, add, add2] = df.stages[0]!.instructions;
    expect(copy).toMatchObject({ kind: 'COPY', from: 'build', chown: '1000:1000', chmod: '0755', link: true, sources: ['a*', 'b?'], dest: '/app/' });
    expect(add).toMatchObject({ kind: 'ADD', checksum: 'sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d', sources: ['https://example.com/x.tar.gz'] });
    expect(add2).toMatchObject({ kind: 'ADD', unpack: false, keepGitDir: true });
  });

  it('parses ENV and LABEL in both forms, keeping quotes for the expansion step', () => {
    const df = parse('FROM busybox\nENV A=1 B="two words" C=three\\ words\nENV LEGACY some value here\nLABEL "com.example.vendor"="ACME Inc" version=1.0\n');
    const [env, legacy, label] = df.stages[0]!.instructions;
    expect(env).toMatchObject({ pairs: [{ key: 'A', value: '1' }, { key: 'B', value: '"two words"' }, { key: 'C', value: 'three\\ words' }], legacy: false });
    expect(legacy).toMatchObject({ pairs: [{ key: 'LEGACY', value: 'some value here' }], legacy: true });
    expect(label).toMatchObject({ pairs: [{ key: '"com.example.vendor"', value: '"ACME Inc"' }, { key: 'version', value: '1.0' }] });
  });

  it('parses ARG with several definitions', () => {
    expect(only('FROM busybox\nARG A B=2 C="x y"\n')).toMatchObject({ definitions: [{ key: 'A' }, { key: 'B', value: '2' }, { key: 'C', value: '"x y"' }] });
  });

  it('parses WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, SHELL and MAINTAINER', () => {
    const df = parse(
      'FROM busybox\nWORKDIR /path to/dir\nUSER app:staff\nEXPOSE 80/tcp 53/udp $PORT\nVOLUME ["/data", "/logs"]\nVOLUME /a /b\n' +
        'STOPSIGNAL SIGTERM\nSHELL ["/bin/bash", "-c"]\nMAINTAINER someone\n',
    );
    expect(df.stages[0]!.instructions.map((i) => i.kind)).toEqual(['WORKDIR', 'USER', 'EXPOSE', 'VOLUME', 'VOLUME', 'STOPSIGNAL', 'SHELL', 'MAINTAINER']);
    const [workdir, user, expose, volume, volume2, stop, shell] = df.stages[0]!.instructions;
    expect(workdir).toMatchObject({ path: '/path to/dir' });
    expect(user).toMatchObject({ user: 'app:staff' });
    expect(expose).toMatchObject({ ports: ['80/tcp', '53/udp', '$PORT'] });
    expect(volume).toMatchObject({ paths: ['/data', '/logs'] });
    expect(volume2).toMatchObject({ paths: ['/a', '/b'] });
    expect(stop).toMatchObject({ signal: 'SIGTERM' });
    expect(shell).toMatchObject({ shell: ['/bin/bash', '-c'] });
  });

  it('parses HEALTHCHECK with its durations in nanoseconds, and NONE', () => {
    const df = parse('FROM busybox\nHEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1\nHEALTHCHECK NONE\nHEALTHCHECK CMD ["true"]\n');
    const [shell, none, exec] = df.stages[0]!.instructions;
    expect(shell).toMatchObject({
      check: { command: { form: 'shell', args: ['curl -f http://localhost/ || exit 1'] }, interval: 300e9, timeout: 3e9, startPeriod: 90e9, startInterval: 500e6, retries: 3 },
    });
    expect(none).toMatchObject({ kind: 'HEALTHCHECK' });
    expect(none!.kind === 'HEALTHCHECK' && none!.check).toBeUndefined();
    expect(exec).toMatchObject({ check: { command: { form: 'exec', args: ['true'] } } });
  });

  it('parses ONBUILD with its trigger', () => {
    expect(only('FROM busybox\nONBUILD COPY --chown=app . /src\n')).toMatchObject({ kind: 'ONBUILD', expression: 'COPY --chown=app . /src', trigger: { kind: 'COPY', chown: 'app', sources: ['.'] } });
  });

  it('parses the ONBUILD triggers of a base image', () => {
    expect(parseOnbuildTriggers(['RUN echo hi', 'COPY a /b']).map((i) => i.kind)).toEqual(['RUN', 'COPY']);
    expect(() => parseOnbuildTriggers(['FROM x'])).toThrow(/FROM isn't allowed as an ONBUILD trigger/);
  });

  it('parses a realistic multi-stage Dockerfile', () => {
    const df = parse(`# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22

FROM golang:\${GO_VERSION}-alpine AS build
WORKDIR /src
# dependencies first, for the cache
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \\
    go mod download
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \\
    CGO_ENABLED=0 go build -o /out/app ./cmd/app

FROM scratch
COPY --from=build /out/app /app
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["/app"]
`);
    expect(df.stages.map((s) => [s.name, s.base, s.instructions.length, s.startLine, s.endLine])).toEqual([
      ['build', 'golang:${GO_VERSION}-alpine', 5, 4, 12],
      [undefined, 'scratch', 4, 14, 18],
    ]);
    expect(df.stages[0]!.instructions[2]).toMatchObject({ kind: 'RUN', startLine: 8, endLine: 9, command: { args: ['go mod download'] } });
  });
});

describe('errors name the file, the line and what is wrong', () => {
  it('suggests the instruction that was meant', () => {
    const err = failure('FROM busybox\n\nFORM busybox\n');
    expect(err.message).toBe('Dockerfile:3: unknown instruction: FORM (did you mean FROM?)');
    expect(err).toMatchObject({ file: 'Dockerfile', line: 3, reason: 'unknown instruction: FORM (did you mean FROM?)' });
    expect(hasCode(err, 'ERR_DOCKERFILE_SYNTAX')).toBe(true);
    expect(hasKind(err, 'InvalidArgument')).toBe(true);
    expect(failure('FROM busybox\nRUNN true\n').reason).toBe('unknown instruction: RUNN (did you mean RUN?)');
    expect(failure('FROM busybox\nFOOBARBAZ x\n').reason).toBe('unknown instruction: FOOBARBAZ');
  });

  it('uses the given file name', () => {
    expect(failure('FROM a\nCOPY onlyone\n', 'build/Dockerfile.dev').message).toBe(
      'build/Dockerfile.dev:2: COPY requires at least two arguments, but only one was provided. Destination could not be determined',
    );
  });

  it.each([
    ['', 'file with no instructions'],
    ['# only a comment\n', 'file with no instructions'],
    ['ARG A=1\n', 'dockerfile contains no stages to build'],
    ['RUN true\nFROM busybox\n', 'RUN before the first FROM: no build stage in current context'],
    ['FROM a b\n', 'FROM requires either one or three arguments'],
    ['FROM a AS 1st\n', 'invalid name for build stage: "1st", name can\'t start with a number or contain symbols'],
    ['FROM a AS x\nFROM b AS X\n', 'duplicate stage name "x"'],
    ['FROM a\nCOPY --fro=x a b\n', 'unknown flag: fro'],
    ['FROM a\nCOPY --from=x --from=y a b\n', 'duplicate flag specified: from'],
    ['FROM a\nCOPY --link=maybe a b\n', 'expecting boolean value for flag link, not: maybe'],
    ['FROM a\nCOPY --chmod=999 a b\n', "invalid chmod parameter: '999'. it should be octal string and between 0 and 07777"],
    ['FROM a\nCOPY --checksum=sha256:00 a b\n', 'unknown flag: checksum'],
    ['FROM a\nADD --checksum=sha256:00 a b\n', "checksum can't be specified for non-HTTP(S) sources"],
    ['FROM a\nRUN --mount=type=foo,target=/x true\n', 'unsupported mount type "foo"'],
    ['FROM a\nRUN --mount=type=cache true\n', 'mount type cache requires a target'],
    ['FROM a\nRUN --mount=type=bind,target=/x,bogus=1 true\n', "unexpected key 'bogus' in 'bogus=1'"],
    ['FROM a\nRUN --network=bridge true\n', 'unsupported network mode "bridge"'],
    ['FROM a\nRUN\n', 'RUN requires at least one argument'],
    ['FROM a\nENV\n', 'ENV requires at least one argument'],
    ['FROM a\nENV A\n', 'ENV must have two arguments'],
    ['FROM a\nENV A=1 B\n', 'Syntax error - can\'t find = in "B". Must be of the form: name=value'],
    ['FROM a\nARG =x\n', 'ARG names can not be blank'],
    ['FROM a\nWORKDIR\n', 'WORKDIR requires exactly one argument'],
    ['FROM a\nSHELL /bin/sh -c\n', 'SHELL requires the arguments to be in JSON form'],
    ['FROM a\nHEALTHCHECK CMD\n', 'Missing command after HEALTHCHECK CMD'],
    ['FROM a\nHEALTHCHECK RUN x\n', 'Unknown type "RUN" in HEALTHCHECK (try CMD)'],
    ['FROM a\nHEALTHCHECK NONE x\n', 'HEALTHCHECK NONE takes no arguments'],
    ['FROM a\nHEALTHCHECK --interval=5 CMD x\n', 'invalid duration "5" for --interval'],
    ['FROM a\nHEALTHCHECK --retries=-1 CMD x\n', '--retries cannot be negative (-1)'],
    ['FROM a\nONBUILD ONBUILD RUN x\n', "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"],
    ['FROM a\nONBUILD FROM b\n', "FROM isn't allowed as an ONBUILD trigger"],
    ['FROM a\nVOLUME [""]\n', 'VOLUME specified can not be an empty string'],
  ])('%j → %s', (text, reason) => {
    expect(failure(text).reason).toBe(reason);
  });

  it('reports the first line of a continued instruction', () => {
    const err = failure('FROM a\nCOPY \\\n  onlyone\n');
    expect([err.line, err.endLine]).toEqual([2, 3]);
  });
});
