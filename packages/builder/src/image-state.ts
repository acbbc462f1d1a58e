import type { ContainerConfig, Descriptor, Digest, HealthConfig, HistoryEntry, ImageConfig, Platform } from '@berth/oci';
import type { ExpandedStep } from './stage-expander.js';

/** Where a stage stands between two steps: the image built so far. */
export interface ImageState {
  readonly config: ImageConfig;
  /** The stored config's digest (the image ID); undefined for a bare `FROM scratch`. */
  readonly id: Digest | undefined;
  /** The stored manifest of this state; undefined for a bare `FROM scratch`. */
  readonly manifest: Descriptor | undefined;
  readonly layers: readonly Descriptor[];
  /** The chain ID of the top layer (the snapshot to build on), undefined without layers. */
  readonly chainId: Digest | undefined;
}

/** The state `FROM scratch` starts from: no layers, an empty config for `platform`. */
export function scratchState(platform: Platform): ImageState {
  return {
    config: {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: {},
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    },
    id: undefined,
    manifest: undefined,
    layers: [],
    chainId: undefined,
  };
}

const defaultShell = ['/bin/sh', '-c'] as const;

/** The shell docker's history strings start with: the stage's SHELL, else `/bin/sh -c`. */
export function shellOf(config: ContainerConfig | undefined): readonly string[] {
  return config?.Shell?.length ? config.Shell : defaultShell;
}

/** `created_by` of a metadata step as docker's classic builder writes it: `/bin/sh -c #(nop)  CMD ["sh"]`. */
export function metadataCreatedBy(config: ContainerConfig | undefined, text: string): string {
  return [...shellOf(config), '#(nop) ', text].join(' ');
}

/** `created_by` of a COPY/ADD or WORKDIR step: `/bin/sh -c #(nop) WORKDIR /app` (one space). */
export function fileCreatedBy(config: ContainerConfig | undefined, text: string): string {
  return [...shellOf(config), `#(nop) ${text}`].join(' ');
}

/** Go's strconv.Quote: what `%q` prints for a string. */
export function goQuote(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\x07') out += '\\a';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\v') out += '\\v';
    else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + '"';
}

/** `%q` of a Go string slice: `["/bin/sh" "-c" "echo hi"]`. */
export function goQuoteList(values: readonly string[] | null | undefined): string {
  return `[${(values ?? []).map(goQuote).join(' ')}]`;
}

/** Go's time.Duration.String of nanoseconds: `5s`, `1m30s`, `500ms`, `0s`. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  let rest = Math.abs(ns);
  if (rest < 1e9) {
    const [unit, div] = rest < 1e3 ? ['ns', 1] : rest < 1e6 ? ['µs', 1e3] : ['ms', 1e6];
    return `${sign}${trimFraction(rest / div)}${unit}`;
  }
  const hours = Math.floor(rest / 3600e9);
  rest -= hours * 3600e9;
  const minutes = Math.floor(rest / 60e9);
  rest -= minutes * 60e9;
  const seconds = `${trimFraction(rest / 1e9)}s`;
  if (hours > 0) return `${sign}${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${sign}${minutes}m${seconds}`;
  return `${sign}${seconds}`;
}

function trimFraction(n: number): string {
  return Number(n.toFixed(9)).toString();
}

// Go's %q of an int is a quoted rune: '\x03' for 3, 'A' for 65.
function goQuoteRune(n: number): string {
  if (n >= 0x20 && n < 0x7f) return n === 0x27 ? "'\\''" : n === 0x5c ? "'\\\\'" : `'${String.fromCharCode(n)}'`;
  return n < 0x100 ? `'\\x${n.toString(16).padStart(2, '0')}'` : `'\\u${n.toString(16).padStart(4, '0')}'`;
}

/** docker's history text of a health check: `%q` of the HealthConfig struct. */
export function healthcheckText(health: HealthConfig): string {
  const durations = [health.Interval ?? 0, health.Timeout ?? 0, health.StartPeriod ?? 0];
  if (health.StartInterval) durations.push(health.StartInterval);
  return `&{${goQuoteList(health.Test)} ${durations.map((d) => goQuote(goDuration(d))).join(' ')} ${goQuoteRune(health.Retries ?? 0)}}`;
}

const portPattern = /^(\d+)(?:-(\d+))?(?:\/([a-zA-Z]+))?$/;

/** The ExposedPorts keys of EXPOSE arguments: `80` is `80/tcp`, a range is every port in it. */
export function exposedPorts(ports: readonly string[]): string[] {
  const out: string[] = [];
  for (const port of ports) {
    const match = portPattern.exec(port.trim());
    if (!match) throw new Error(`invalid port ${JSON.stringify(port)} in EXPOSE: want port[-port][/proto]`);
    const start = Number(match[1]);
    const end = match[2] === undefined ? start : Number(match[2]);
    const proto = (match[3] ?? 'tcp').toLowerCase();
    if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new Error(`invalid proto ${JSON.stringify(match[3])} in EXPOSE ${port}`);
    if (start < 1 || end > 65535 || end < start) throw new Error(`invalid port range ${JSON.stringify(port)} in EXPOSE`);
    for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  }
  return out;
}

const signalNames = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR',
  'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
]);

/** Checks a STOPSIGNAL value as docker's signal.ParseSignal does: a number, `SIGTERM`, `TERM` or `RTMIN+3`. */
export function checkStopSignal(value: string): void {
  if (/^\d+$/.test(value) && Number(value) > 0 && Number(value) < 65) return;
  const name = value.toUpperCase().replace(/^SIG/, '');
  if (signalNames.has(name) || /^RT(MIN|MAX)([+-]\d+)?$/.test(name)) return;
  throw new Error(`invalid signal: ${value}`);
}

/** What a metadata instruction does to the image: its new container config and its history text. */
export interface MetadataChange {
  readonly config: ContainerConfig;
  /** The image's `author` (MAINTAINER), when the step sets it. */
  readonly author?: string;
  /** The history text after `#(nop)`. */
  readonly text: string;
  /** Whether the text takes docker's two-space metadata form (all but WORKDIR). */
  readonly metadata: boolean;
}

/** Stage state docker's classic builder keeps beside the config: whether CMD was set in this stage. */
export interface StageFlags {
  cmdSet: boolean;
}

/**
 * Applies a metadata instruction (everything but RUN, COPY and ADD) to a container config,
 * with docker's rules: ENV replaces a variable in place, ENTRYPOINT clears an inherited CMD
 * unless this stage set one, EXPOSE and VOLUME merge, HEALTHCHECK replaces the whole check.
 */
export function applyMetadata(base: ContainerConfig | undefined, step: ExpandedStep, flags: StageFlags): MetadataChange {
  const config: Record<string, unknown> = { ...(base ?? {}) };
  const current = base ?? {};
  const instruction = step.instruction;
  switch (instruction.kind) {
    case 'ENV': {
      const env = [...(current.Env ?? [])];
      for (const { key, value } of instruction.pairs) {
        const entry = `${key}=${value}`;
        const at = env.findIndex((e) => e === key || e.startsWith(`${key}=`));
        if (at >= 0) env[at] = entry;
        else env.push(entry);
      }
      config['Env'] = env;
      return { config, text: `ENV ${instruction.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, metadata: true };
    }
    case 'LABEL': {
      const labels: Record<string, string> = { ...(current.Labels ?? {}) };
      for (const { key, value } of instruction.pairs) labels[key] = value;
      config['Labels'] = labels;
      return { config, text: `LABEL ${instruction.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, metadata: true };
    }
    case 'ARG':
      return { config, text: `ARG ${instruction.definitions.map((d) => (d.value === undefined ? d.key : `${d.key}=${d.value}`)).join(' ')}`, metadata: true };
    case 'CMD':
      config['Cmd'] = [...step.argv!];
      flags.cmdSet = true;
      return { config, text: `CMD ${goQuoteList(step.argv)}`, metadata: true };
    case 'ENTRYPOINT':
      config['Entrypoint'] = [...step.argv!];
      if (!flags.cmdSet) config['Cmd'] = null;
      return { config, text: `ENTRYPOINT ${goQuoteList(step.argv)}`, metadata: true };
    case 'EXPOSE': {
      const ports: Record<string, object> = { ...(current.ExposedPorts ?? {}) };
      for (const p of exposedPorts(instruction.ports)) ports[p] = {};
      config['ExposedPorts'] = ports;
      return { config, text: `EXPOSE ${[...instruction.ports].sort().join(' ')}`, metadata: true };
    }
    case 'VOLUME': {
      const volumes: Record<string, object> = { ...(current.Volumes ?? {}) };
      for (const p of instruction.paths) volumes[p] = {};
      config['Volumes'] = volumes;
      return { config, text: `VOLUME [${instruction.paths.join(' ')}]`, metadata: true };
    }
    case 'USER':
      config['User'] = instruction.user;
      return { config, text: `USER ${instruction.user}`, metadata: true };
    case 'WORKDIR':
      config['WorkingDir'] = step.workdir;
      return { config, text: `WORKDIR ${step.workdir}`, metadata: false };
    case 'STOPSIGNAL':
      checkStopSignal(instruction.signal);
      config['StopSignal'] = instruction.signal;
      return { config, text: `STOPSIGNAL ${instruction.signal}`, metadata: true };
    case 'HEALTHCHECK': {
      const check = instruction.check;
      const health: HealthConfig = {
        Test: [...step.healthTest!],
        ...(check?.interval ? { Interval: check.interval } : {}),
        ...(check?.timeout ? { Timeout: check.timeout } : {}),
        ...(check?.startPeriod ? { StartPeriod: check.startPeriod } : {}),
        ...(check?.startInterval ? { StartInterval: check.startInterval } : {}),
        ...(check?.retries ? { Retries: check.retries } : {}),
      };
      config['Healthcheck'] = health;
      return { config, text: `HEALTHCHECK ${healthcheckText(health)}`, metadata: true };
    }
    case 'SHELL':
      config['Shell'] = [...instruction.shell];
      return { config, text: `SHELL [${instruction.shell.join(' ')}]`, metadata: true };
    case 'ONBUILD':
      config['OnBuild'] = [...(current.OnBuild ?? []), instruction.expression];
      return { config, text: `ONBUILD ${instruction.expression}`, metadata: true };
    case 'MAINTAINER':
      return { config, author: instruction.maintainer, text: `MAINTAINER ${instruction.maintainer}`, metadata: true };
    case 'RUN':
    case 'COPY':
    case 'ADD':
      throw new Error(`${instruction.kind} is not a metadata instruction`);
  }
}

/** The next image config: `base` with a new container config, one more history entry and maybe a layer. */
export function nextConfig(
  base: ImageConfig,
  change: { readonly config: ContainerConfig; readonly author?: string; readonly createdBy: string; readonly diffId?: Digest; readonly created: string },
): ImageConfig {
  // What describes the base's own build (docker's container, container_config, import comment) is not this image's.
  const { container: _container, container_config: _containerConfig, docker_version: _dockerVersion, comment: _comment, ...rest } = base;
  const author = change.author ?? base.author;
  const entry: HistoryEntry = {
    created: change.created,
    ...(author ? { author } : {}),
    created_by: change.createdBy,
    ...(change.diffId ? {} : { empty_layer: true }),
  };
  return {
    ...rest,
    created: change.created,
    ...(author ? { author } : {}),
    config: change.config,
    rootfs: { type: 'layers', diff_ids: change.diffId ? [...base.rootfs.diff_ids, change.diffId] : [...base.rootfs.diff_ids] },
    history: [...(base.history ?? []), entry],
  };
}
