import { describe, expect, it } from 'vitest';
import { hasCode } from '@berth/errors';
import { resolveMetaArgs } from './build-args.js';
import type { Instruction } from './dockerfile-ast.js';
import { DockerfileError } from './errors.js';
import { parseDockerfile } from './parse-dockerfile.js';
import { StageExpander, type ExpandedStep, type StageExpanderOptions } from './stage-expander.js';

function expandAll(text: string, options: StageExpanderOptions = {}): ExpandedStep[] {
  const df = parseDockerfile(text);
  const metaArgs = resolveMetaArgs(df.metaArgs, { ...(options.buildArgs ? { buildArgs: options.buildArgs } : {}) });
  const expander = new StageExpander({ metaArgs, escapeToken: df.directives.escape, ...options });
  return df.stages[0]!.instructions.map((i: Instruction) => expander.expand(i));
}

describe('StageExpander: where docker substitutes variables', () => {
  it('expands ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, COPY and ADD but not RUN, CMD or ONBUILD', () => {
    const steps = expandAll(
      [
        'FROM busybox',
        'ENV APP=/srv/app PORT=8080 SIG=SIGQUIT',
        'LABEL dir=$APP "port"="${PORT}"',
        'WORKDIR $APP/sub',
        'USER ${USER_NAME:-app}',
        'EXPOSE $PORT 9000/udp',
        'VOLUME ["$APP/data"]',
        'STOPSIGNAL $SIG',
        'COPY --chown=${USER_NAME:-app} src/$PORT.txt $APP/',
        'RUN echo $APP',
        'CMD echo $APP',
        'ONBUILD RUN echo $APP',
      ].join('\n'),
    );
    const [env, label, workdir, user, expose, volume, stop, copy, run, cmd, onbuild] = steps.map((s) => s.instruction);
    expect(env).toMatchObject({ pairs: [{ key: 'APP', value: '/srv/app' }, { key: 'PORT', value: '8080' }, { key: 'SIG', value: 'SIGQUIT' }] });
    expect(label).toMatchObject({ pairs: [{ key: 'dir', value: '/srv/app' }, { key: 'port', value: '8080' }] });
    expect(workdir).toMatchObject({ path: '/srv/app/sub' });
    expect(user).toMatchObject({ user: 'app' });
    expect(expose).toMatchObject({ ports: ['8080', '9000/udp'] });
    expect(volume).toMatchObject({ paths: ['/srv/app/data'] });
    expect(stop).toMatchObject({ signal: 'SIGQUIT' });
    expect(copy).toMatchObject({ chown: 'app', sources: ['src/8080.txt'], dest: '/srv/app/' });
    expect(run).toMatchObject({ command: { args: ['echo $APP'] } });
    expect(steps[8]!.argv).toEqual(['/bin/sh', '-c', 'echo $APP']);
    expect(cmd).toMatchObject({ command: { args: ['echo $APP'] } });
    expect(steps[9]!.argv).toEqual(['/bin/sh', '-c', 'echo $APP']);
    expect(onbuild).toMatchObject({ expression: 'RUN echo $APP' });
  });

  it('evaluates one ENV instruction against the state before it', () => {
    const [, second] = expandAll('FROM busybox\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n');
    expect(second!.instruction).toMatchObject({ pairs: [{ key: 'abc', value: 'bye' }, { key: 'def', value: 'hello' }] });
  });

  it('resolves relative WORKDIRs against the previous one and the base image', () => {
    const steps = expandAll('FROM busybox\nWORKDIR a\nWORKDIR b/../c\nWORKDIR /abs\n', { base: { WorkingDir: '/base' } });
    expect(steps.map((s) => s.workdir)).toEqual(['/base/a', '/base/a/c', '/abs']);
  });

  it('sees the base image environment', () => {
    const [step] = expandAll('FROM golang\nWORKDIR $GOPATH/src\n', { base: { Env: ['GOPATH=/go', 'PATH=/usr/bin'] } });
    expect(step!.workdir).toBe('/go/src');
  });

  it('fails with the file and line when a substitution fails', () => {
    let caught: unknown;
    try {
      expandAll('FROM busybox\n\nWORKDIR ${MISSING:?set MISSING}\n');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DockerfileError);
    expect((caught as DockerfileError).message).toBe('Dockerfile:3: failed to process "${MISSING:?set MISSING}": MISSING: set MISSING');
    expect(hasCode(caught, 'ERR_DOCKERFILE_EXPANSION')).toBe(true);
  });
});

describe('StageExpander: ARG scoping and the build args a step reads', () => {
  it('takes a build arg over the default, the default otherwise, and lets ENV win over ARG', () => {
    const steps = expandAll('FROM busybox\nARG A=default B=b\nARG C\nENV B=fromenv\nRUN echo\nLABEL a=$A b=$B c=$C\n', { buildArgs: { A: 'given', C: 'c1' } });
    expect(steps[0]!.instruction).toMatchObject({ definitions: [{ key: 'A', value: 'given' }, { key: 'B', value: 'b' }] });
    expect(steps[3]!.runEnv).toEqual(['B=fromenv', 'A=given', 'C=c1']);
    expect(steps[4]!.instruction).toMatchObject({ pairs: [{ value: 'given' }, { value: 'fromenv' }, { value: 'c1' }] });
    expect(steps[4]!.buildArgs).toEqual({ A: 'given', C: 'c1' });
  });

  it('inherits a global ARG only where the stage redeclares it', () => {
    const df = parseDockerfile('ARG VERSION=1.0\nFROM busybox\nLABEL before=$VERSION\nARG VERSION\nLABEL after=$VERSION\n');
    const expander = new StageExpander({ metaArgs: resolveMetaArgs(df.metaArgs) });
    const [before, , after] = df.stages[0]!.instructions.map((i) => expander.expand(i));
    expect(before!.instruction).toMatchObject({ pairs: [{ value: '' }] });
    expect(after!.instruction).toMatchObject({ pairs: [{ value: '1.0' }] });
    expect(after!.buildArgs).toEqual({ VERSION: '1.0' });
  });

  it('puts every declared ARG with a value into RUN\'s build args, and proxy args only into its environment', () => {
    const steps = expandAll('FROM busybox\nARG USED=1 UNSET_DECL\nRUN true\nCOPY a b\n', { buildArgs: { HTTP_PROXY: 'http://proxy:3128' } });
    expect(steps[1]!.buildArgs).toEqual({ USED: '1' });
    expect(steps[1]!.runEnv).toEqual(['USED=1', 'HTTP_PROXY=http://proxy:3128']);
    expect(steps[2]!.buildArgs).toEqual({});
  });

  it('expands RUN mount options and COPY --from with the stage variables', () => {
    const steps = expandAll('FROM busybox\nARG STAGE=build CACHE=/root/.cache\nRUN --mount=type=cache,target=$CACHE,id=${STAGE}-cache true\nCOPY --from=$STAGE /out /in\n');
    expect(steps[1]!.instruction).toMatchObject({ mounts: [{ type: 'cache', target: '/root/.cache', id: 'build-cache' }] });
    expect(steps[2]!.instruction).toMatchObject({ from: 'build' });
    expect(steps[2]!.buildArgs).toEqual({ STAGE: 'build' });
  });
});

describe('StageExpander: commands, SHELL and heredocs', () => {
  it('wraps shell forms in the SHELL in force and leaves exec forms alone', () => {
    const steps = expandAll('FROM busybox\nRUN a\nSHELL ["/bin/bash", "-eu", "-c"]\nRUN b\nRUN ["c", "d"]\nENTRYPOINT e f\nHEALTHCHECK CMD wget -q localhost\n');
    expect(steps.map((s) => s.argv)).toEqual([
      ['/bin/sh', '-c', 'a'],
      undefined,
      ['/bin/bash', '-eu', '-c', 'b'],
      ['c', 'd'],
      ['/bin/bash', '-eu', '-c', 'e f'],
      undefined,
    ]);
    expect(steps[5]!.healthTest).toEqual(['CMD-SHELL', 'wget -q localhost']);
  });

  it('runs a RUN <<EOF body through the shell, and a shebang body as a script file', () => {
    const steps = expandAll('FROM busybox\nRUN <<EOF\necho one\necho two\nEOF\nRUN <<-PY\n\t#!/usr/bin/env python3\n\tprint(1)\n\tPY\nRUN cat <<A > /a && cat <<B > /b\nalpha\nA\nbeta\nB\n');
    expect(steps[0]!.argv).toEqual(['/bin/sh', '-c', 'echo one\necho two\n']);
    expect(steps[1]!.argv).toEqual(['/bin/sh', '-c', '/dev/pipes/PY']);
    expect(steps[1]!.inlineFiles).toEqual([{ path: '/dev/pipes/PY', content: '#!/usr/bin/env python3\nprint(1)\n', mode: 0o755 }]);
    expect(steps[2]!.argv).toEqual(['/bin/sh', '-c', 'cat <<A > /a && cat <<B > /b\nalpha\nA\nbeta\nB']);
  });

  it('expands COPY heredoc bodies unless the delimiter is quoted', () => {
    const steps = expandAll('FROM busybox\nENV NAME=world\nCOPY <<a.txt <<"b.txt" /\nhello $NAME\na.txt\nhello $NAME\nb.txt\n');
    expect(steps[1]!.instruction).toMatchObject({
      inline: [
        { name: 'a.txt', content: 'hello world\n' },
        { name: 'b.txt', content: 'hello $NAME\n' },
      ],
    });
  });
});
