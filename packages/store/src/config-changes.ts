import { posix } from 'node:path';
import { ErrorKind } from '@berth/errors';
import type { ContainerConfig } from '@berth/oci';
import { StoreError, StoreErrorCode } from './errors.js';

/** The Dockerfile instructions `docker import --change` and `docker commit --change` accept. */
export const changeInstructions = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'] as const;

function invalid(change: string, why: string): StoreError {
  return new StoreError(`invalid change ${JSON.stringify(change)}: ${why}`, { code: StoreErrorCode.InvalidChange, kind: ErrorKind.InvalidArgument });
}

/** Splits on unquoted whitespace, removing quotes and backslash escapes as a Dockerfile does. */
function words(text: string, change: string): string[] {
  const out: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) word += text[++i];
      else word += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw invalid(change, 'unterminated quote');
  if (inWord) out.push(word);
  return out;
}

/** `["a", "b"]` as a string list, or undefined when the text is not a JSON array of strings. */
function jsonList(text: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : undefined;
  } catch {
    return undefined;
  }
}

/** `k=v k2="v 2"` pairs, or the legacy single `k v` form. */
function pairs(text: string, change: string): Array<[string, string]> {
  const ws = words(text, change);
  if (ws.length === 0) throw invalid(change, 'needs at least one argument');
  if (!ws[0]!.includes('=')) {
    const m = /^(\S+)\s+([\s\S]*)$/.exec(text.trim());
    if (!m) throw invalid(change, 'needs a value');
    return [[m[1]!, words(m[2]!, change).join(' ')]];
  }
  return ws.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw invalid(change, `${JSON.stringify(w)} is not key=value`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

function port(spec: string, change: string): string {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  if (!m || Number(m[1]) > 65535 || (m[2] && Number(m[2]) > 65535)) throw invalid(change, `${JSON.stringify(spec)} is not a port`);
  return `${m[1]}${m[2] ? `-${m[2]}` : ''}/${(m[3] ?? 'tcp').toLowerCase()}`;
}

/**
 * Applies Dockerfile instructions to an image's run config, as `docker import --change` and
 * `docker commit --change` do: `CMD ["sh"]`, `ENV A=1`, `EXPOSE 80/tcp`, `WORKDIR /app`...
 * Shell forms of CMD and ENTRYPOINT run under `/bin/sh -c`; a relative WORKDIR is taken
 * relative to the current one. Other instructions are refused.
 */
export function applyImageChanges(config: ContainerConfig | undefined, changes: readonly string[]): ContainerConfig {
  const next: {
    -readonly [K in keyof ContainerConfig]: ContainerConfig[K];
  } = { ...(config ?? {}) };
  for (const change of changes) {
    const m = /^\s*(\S+)\s*([\s\S]*?)\s*$/.exec(change);
    if (!m) continue;
    const instruction = m[1]!.toUpperCase();
    const args = m[2]!;
    if (!(changeInstructions as readonly string[]).includes(instruction)) {
      throw invalid(change, `${instruction} is not a valid change command (want one of ${changeInstructions.join(', ')})`);
    }
    switch (instruction) {
      case 'CMD':
      case 'ENTRYPOINT': {
        const list = jsonList(args) ?? (args === '' ? [] : ['/bin/sh', '-c', args]);
        if (instruction === 'CMD') next.Cmd = list;
        else next.Entrypoint = list;
        break;
      }
      case 'ENV': {
        const env = [...(next.Env ?? [])];
        for (const [k, v] of pairs(args, change)) {
          const at = env.findIndex((e) => e.split('=')[0] === k);
          if (at >= 0) env[at] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        next.Env = env;
        break;
      }
      case 'LABEL': {
        const labels = { ...(next.Labels ?? {}) };
        for (const [k, v] of pairs(args, change)) labels[k] = v;
        next.Labels = labels;
        break;
      }
      case 'EXPOSE': {
        const ports: Record<string, object> = { ...(next.ExposedPorts ?? {}) };
        const specs = words(args, change);
        if (specs.length === 0) throw invalid(change, 'needs a port');
        for (const spec of specs) ports[port(spec, change)] = {};
        next.ExposedPorts = ports;
        break;
      }
      case 'VOLUME': {
        const volumes: Record<string, object> = { ...(next.Volumes ?? {}) };
        const paths = jsonList(args) ?? words(args, change);
        if (paths.length === 0) throw invalid(change, 'needs a path');
        for (const p of paths) volumes[p] = {};
        next.Volumes = volumes;
        break;
      }
      case 'WORKDIR': {
        if (!args) throw invalid(change, 'needs a path');
        const dir = words(args, change).join(' ');
        next.WorkingDir = posix.resolve(next.WorkingDir || '/', dir);
        break;
      }
      case 'USER':
        if (!args) throw invalid(change, 'needs a user');
        next.User = words(args, change).join(' ');
        break;
      case 'STOPSIGNAL':
        if (!args) throw invalid(change, 'needs a signal');
        next.StopSignal = args;
        break;
      case 'ONBUILD':
        if (!args) throw invalid(change, 'needs an instruction');
        next.OnBuild = [...(next.OnBuild ?? []), args];
        break;
    }
  }
  return next;
}
