import { createHash } from 'node:crypto';
import type { Digest } from '@berth/oci';
import type { Instruction } from './dockerfile-ast.js';
import type { ExpandedStep } from './stage-expander.js';

/** JSON with object keys sorted and no spaces, so equal values always serialise alike. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

const positional = new Set(['startLine', 'endLine', 'original', 'args', 'flags', 'mountSpecs']);

/**
 * What of an expanded instruction decides its result: the typed fields after substitution,
 * without line numbers or the text as written, so that moving or reformatting a step keeps
 * its cache. An ARG counts as written (its value matters only where it is read).
 */
export function describeInstruction(instruction: Instruction): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(instruction)) {
    if (positional.has(k)) continue;
    out[k] = k === 'trigger' ? describeInstruction(v as Instruction) : v;
  }
  if (instruction.kind === 'ARG') out['definitions'] = instruction.args;
  return out;
}

/** The inputs of one step's cache key. */
export interface StepCacheKeyInput {
  /** The previous step's key, or for a stage's first step its base: an image config digest, `scratch`, or the base stage's last key. */
  readonly parent: string;
  readonly step: ExpandedStep;
  /** For COPY/ADD: the digest of the copied content (`hashCopySources`), or of a remote source. */
  readonly sources?: string;
  /** The platform the step builds for, when the build names one. */
  readonly platform?: string;
  /** What else the executor knows decides the result (the digest of a `--from` stage's result, a mounted stage). */
  readonly extra?: Readonly<Record<string, string>>;
}

/**
 * The cache key of one build step: a digest over its parent, the expanded instruction, the
 * argv it runs, the build args it reads and the content it copies. Keys chain, so a step
 * whose inputs are unchanged keeps its key and everything after a changed step changes.
 */
export function stepCacheKey(input: StepCacheKeyInput): Digest {
  const { step } = input;
  const material = canonicalJson({
    v: 1,
    parent: input.parent,
    platform: input.platform,
    instruction: describeInstruction(step.instruction),
    argv: step.argv,
    buildArgs: step.buildArgs,
    inlineFiles: step.inlineFiles,
    healthTest: step.healthTest,
    sources: input.sources,
    extra: input.extra,
  });
  return `sha256:${createHash('sha256').update(material).digest('hex')}`;
}
