import { describe, expect, it } from 'vitest';
import { canonicalJson, stepCacheKey } from './cache-key.js';
import { parseDockerfile } from './parse-dockerfile.js';
import { StageExpander } from './stage-expander.js';

// The keys of a stage's steps, chained from the base image, with the given content digests
// for the COPY steps (by instruction index).
function keys(text: string, options: { buildArgs?: Record<string, string>; sources?: Record<number, string> } = {}): string[] {
  const df = parseDockerfile(text);
  const expander = new StageExpander({ ...(options.buildArgs ? { buildArgs: options.buildArgs } : {}) });
  let parent = 'sha256:base-image-config';
  return df.stages[0]!.instructions.map((instruction, i) => {
    const source = options.sources?.[i];
    parent = stepCacheKey({ parent, step: expander.expand(instruction), ...(source ? { sources: source } : {}) });
    return parent;
  });
}

const dockerfile = 'FROM busybox\nARG VERSION\nRUN echo deps\nCOPY app/ /app/\nRUN make\nLABEL v=1\n';

describe('stepCacheKey', () => {
  it('is stable for the same inputs', () => {
    const a = keys(dockerfile, { sources: { 2: 'sha256:aaa' } });
    expect(keys(dockerfile, { sources: { 2: 'sha256:aaa' } })).toEqual(a);
    expect(a.every((k) => /^sha256:[0-9a-f]{64}$/.test(k))).toBe(true);
    expect(new Set(a).size).toBe(a.length);
  });

  it('keeps the steps before a changed COPY and changes only it and what follows', () => {
    const before = keys(dockerfile, { sources: { 2: 'sha256:aaa' } });
    const after = keys(dockerfile, { sources: { 2: 'sha256:bbb' } });
    expect(after.slice(0, 2)).toEqual(before.slice(0, 2));
    for (let i = 2; i < before.length; i++) expect(after[i]).not.toBe(before[i]);
  });

  it('changes from the first step that reads a changed build arg, not at the ARG itself', () => {
    const v1 = keys(dockerfile, { buildArgs: { VERSION: '1' }, sources: { 2: 'sha256:aaa' } });
    const v2 = keys(dockerfile, { buildArgs: { VERSION: '2' }, sources: { 2: 'sha256:aaa' } });
    expect(v2[0]).toBe(v1[0]);
    expect(v2[1]).not.toBe(v1[1]);
  });

  it('ignores build args a step does not read, and where the step sits in the file', () => {
    const text = 'FROM busybox\nARG A\nCOPY x /x\n';
    const a = keys(text, { buildArgs: { OTHER: '1' }, sources: { 1: 'sha256:c' } });
    const b = keys(text, { buildArgs: { OTHER: '2' }, sources: { 1: 'sha256:c' } });
    expect(b).toEqual(a);
    expect(keys('\n\n# moved\n' + text, { buildArgs: { OTHER: '1' }, sources: { 1: 'sha256:c' } })).toEqual(a);
  });

  it('changes with the parent, the command, the shell and the copy options', () => {
    const base = keys('FROM busybox\nRUN make\n');
    expect(keys('FROM busybox\nRUN make all\n')).not.toEqual(base);
    expect(keys('FROM busybox\nRUN  make  \n')).toEqual(base);
    expect(keys('FROM busybox\nSHELL ["/bin/bash", "-c"]\nRUN make\n')[1]).not.toBe(base[0]);
    const copy = keys('FROM busybox\nCOPY a /a\n', { sources: { 0: 'sha256:c' } });
    expect(keys('FROM busybox\nCOPY --chmod=600 a /a\n', { sources: { 0: 'sha256:c' } })).not.toEqual(copy);
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every depth and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: undefined }], c: 'x' } })).toBe('{"a":{"c":"x","d":[1,{"z":1}]},"b":1}');
  });
});
