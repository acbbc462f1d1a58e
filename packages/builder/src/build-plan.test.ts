import { describe, expect, it } from 'vitest';
import { hasCode, hasKind } from '@berth/errors';
import { planBuild } from './build-plan.js';
import { parseDockerfile } from './parse-dockerfile.js';

const amd64 = { build: { os: 'linux', architecture: 'amd64' }, target: { os: 'linux', architecture: 'arm64' } };

const multi = `ARG BASE=busybox
FROM \${BASE} AS base
RUN true

FROM base AS deps
RUN echo deps

FROM base AS assets
RUN echo assets

FROM golang:1.22 AS unused
RUN echo never

FROM scratch AS final
COPY --from=deps /x /x
COPY --from=assets /y /y
COPY --from=nginx:alpine /etc/nginx /etc/nginx
RUN --mount=type=bind,from=1,target=/m true
`;

describe('planBuild', () => {
  it('builds only what the target needs, dependencies first, independent stages in one level', () => {
    const plan = planBuild(parseDockerfile(multi), { platforms: amd64 });
    expect(plan.target).toBe(4);
    expect(plan.stages.map((s) => s.index)).toEqual([0, 1, 2, 4]);
    expect(plan.levels).toEqual([[0], [1, 2], [4]]);
    expect(plan.stages[0]!.base).toEqual({ kind: 'image', ref: 'busybox' });
    expect(plan.stages[1]!.base).toEqual({ kind: 'stage', index: 0 });
    const final = plan.stages.at(-1)!;
    expect(final.base).toEqual({ kind: 'scratch' });
    expect(final.dependsOn).toEqual([1, 2]);
    expect(final.images).toEqual(['nginx:alpine']);
  });

  it('honours --target and build args in FROM', () => {
    const plan = planBuild(parseDockerfile(multi), { target: 'Deps', buildArgs: { BASE: 'alpine:3.20' } });
    expect(plan.stages.map((s) => s.name)).toEqual(['base', 'deps']);
    expect(plan.stages[0]!.base).toEqual({ kind: 'image', ref: 'alpine:3.20' });
  });

  it('expands FROM --platform with the automatic platform args', () => {
    const df = parseDockerfile('FROM --platform=$BUILDPLATFORM golang AS build\nARG TARGETARCH\nRUN echo $TARGETARCH\nFROM --platform=${TARGETPLATFORM} busybox\nCOPY --from=build /a /a\n');
    const plan = planBuild(df, { platforms: amd64 });
    expect(plan.stages.map((s) => s.platform)).toEqual(['linux/amd64', 'linux/arm64']);
    expect(plan.metaArgs.get('TARGETARCH')).toBe('arm64');
  });

  it('treats a FROM naming a later stage as an image, and reports unused build args', () => {
    const df = parseDockerfile('FROM later AS first\nARG USED\nFROM busybox AS later\n');
    const plan = planBuild(df, { target: 'first', buildArgs: { USED: '1', UNUSED: '2', HTTP_PROXY: 'x' } });
    expect(plan.stages[0]!.base).toEqual({ kind: 'image', ref: 'later' });
    expect(plan.unusedBuildArgs).toEqual(['UNUSED']);
  });

  it('rejects an unknown target', () => {
    let caught: unknown;
    try {
      planBuild(parseDockerfile(multi), { target: 'nope' });
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ERR_BUILD_TARGET_NOT_FOUND')).toBe(true);
    expect(hasKind(caught, 'NotFound')).toBe(true);
    expect((caught as Error).message).toBe('target stage "nope" could not be found');
  });

  it('rejects cycles between stages and a stage copying from itself', () => {
    const cyclic = parseDockerfile('FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n');
    expect(() => planBuild(cyclic)).toThrow(/circular dependency detected on stage: (a|b)/);
    expect(() => planBuild(parseDockerfile('FROM busybox AS a\nCOPY --from=a /x /x\n'))).toThrow('circular dependency detected on stage: a');
    expect(() => planBuild(parseDockerfile('FROM busybox\nCOPY --from=0 /x /x\n'))).toThrow('Dockerfile:2: invalid from flag value 0: refers to current or future build stage');
  });

  it('rejects a blank base name and a bad platform, naming the line', () => {
    expect(() => planBuild(parseDockerfile('ARG NONE\nFROM $NONE\n'))).toThrow('Dockerfile:2: base name ($NONE) should not be blank');
    expect(() => planBuild(parseDockerfile('FROM --platform=linux//x busybox\n'))).toThrow('Dockerfile:1: failed to parse platform linux//x');
  });
});
