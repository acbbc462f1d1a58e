import { cpus } from 'node:os';
import { describeError } from '@berth/errors';
import type { ContainerConfig as ImageRunConfig } from '@berth/oci';
import { jsonFileLogRotation } from '@berth/runtime';
import type { ContainerConfig, ContainerCreateRequest, HealthConfig, HostConfig, Resources } from '../types/container.js';
import { invalidParameter } from './docker-errors.js';
import { validateRestartPolicy } from './restart-policy.js';

/** The default PATH docker gives a container whose image sets none. */
export const defaultPath = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const minMemory = 6 * 1024 * 1024;
const logDrivers = new Set(['', 'json-file', 'none']);

function envKey(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

/** Environment lists merged as docker does: later entries replace earlier ones of the same key, order kept. */
export function mergeEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const out = [...base];
  for (const entry of overrides) {
    const key = envKey(entry);
    const at = out.findIndex((e) => envKey(e) === key);
    if (at >= 0) out[at] = entry;
    else out.push(entry);
  }
  return out;
}

function mergeHealthcheck(user: HealthConfig | undefined, image: HealthConfig | undefined): HealthConfig | undefined {
  if (!user) return image;
  if (!image) return user;
  return {
    Test: user.Test?.length ? user.Test : image.Test,
    Interval: user.Interval || image.Interval,
    Timeout: user.Timeout || image.Timeout,
    StartPeriod: user.StartPeriod || image.StartPeriod,
    StartInterval: user.StartInterval || image.StartInterval,
    Retries: user.Retries || image.Retries,
  } as HealthConfig;
}

/**
 * The container's config: the create body with the image's run defaults filled in, as
 * docker's daemon merges them (env and labels by key, exposed ports and volumes as sets, the
 * image's Cmd only when the body sets neither Cmd nor Entrypoint).
 */
export function mergeImageConfig(body: ContainerConfig, image: ImageRunConfig | undefined): ContainerConfig {
  const img = image ?? {};
  const userEntrypoint = body.Entrypoint ?? null;
  // `--entrypoint ""` arrives as [""]: no entrypoint, and not the image's either.
  const resetEntrypoint = userEntrypoint !== null && userEntrypoint.length === 1 && userEntrypoint[0] === '';
  let entrypoint: readonly string[] | null = resetEntrypoint ? null : userEntrypoint;
  let cmd: readonly string[] | null = body.Cmd?.length ? body.Cmd : null;
  if (!entrypoint?.length && !resetEntrypoint) {
    if (!cmd) cmd = img.Cmd?.length ? img.Cmd : null;
    if (userEntrypoint === null) entrypoint = img.Entrypoint?.length ? img.Entrypoint : null;
  }
  const exposed = { ...(img.ExposedPorts ?? {}), ...(body.ExposedPorts ?? {}) } as Record<string, Record<string, never>>;
  const volumes = { ...(img.Volumes ?? {}), ...(body.Volumes ?? {}) } as Record<string, Record<string, never>>;
  const env = mergeEnv(img.Env ?? [], body.Env ?? []);
  const labels = { ...(img.Labels ?? {}), ...(body.Labels ?? {}) };
  const health = mergeHealthcheck(body.Healthcheck, img.Healthcheck);
  return {
    ...body,
    User: body.User || img.User || '',
    ExposedPorts: Object.keys(exposed).length ? exposed : undefined,
    Env: env.length ? env : [defaultPath],
    Cmd: cmd,
    Entrypoint: entrypoint,
    WorkingDir: body.WorkingDir || img.WorkingDir || '',
    Labels: labels,
    Volumes: Object.keys(volumes).length ? volumes : null,
    ...(body.StopSignal || img.StopSignal ? { StopSignal: body.StopSignal || img.StopSignal } : {}),
    ...(health ? { Healthcheck: health } : {}),
    ...(img.OnBuild?.length && !body.OnBuild?.length ? { OnBuild: img.OnBuild } : {}),
    ...(img.Shell?.length && !body.Shell?.length ? { Shell: img.Shell } : {}),
  };
}

/** docker's getEntrypointAndArgs: the process's path and arguments. */
export function entrypointAndArgs(config: ContainerConfig): { path: string; args: string[] } {
  const entrypoint = config.Entrypoint ?? [];
  const cmd = config.Cmd ?? [];
  const all = [...entrypoint, ...cmd];
  if (all.length === 0) throw invalidParameter('No command specified');
  return { path: all[0]!, args: all.slice(1) };
}

function checkResources(r: Resources): void {
  if (r.Memory !== undefined && r.Memory !== 0 && r.Memory < minMemory) throw invalidParameter('Minimum memory limit allowed is 6MB');
  if (r.MemoryReservation && r.MemoryReservation < minMemory) throw invalidParameter('Minimum memory reservation allowed is 6MB');
  if (r.Memory && r.MemorySwap && r.MemorySwap > 0 && r.MemorySwap < r.Memory) {
    throw invalidParameter('Minimum memoryswap limit should be larger than memory limit, see usage');
  }
  if (!r.Memory && r.MemorySwap && r.MemorySwap > 0) throw invalidParameter('You should always set the Memory limit when using Memoryswap limit, see usage');
  if (r.MemorySwappiness !== undefined && r.MemorySwappiness !== null && r.MemorySwappiness !== -1 && (r.MemorySwappiness < 0 || r.MemorySwappiness > 100)) {
    throw invalidParameter(`Invalid value: ${r.MemorySwappiness}, valid memory swappiness range is 0-100`);
  }
  if (r.NanoCpus) {
    if (r.CpuQuota || r.CpuPeriod) throw invalidParameter('Conflicting options: Nano CPUs and CPU Period cannot both be set');
    const n = cpus().length;
    if (r.NanoCpus < 0 || r.NanoCpus > n * 1e9) {
      throw invalidParameter(`Range of CPUs is from 0.01 to ${n}.00, as there are only ${n} CPUs available`);
    }
  }
  if (r.CpuPeriod && (r.CpuPeriod < 1000 || r.CpuPeriod > 1_000_000)) throw invalidParameter('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  if (r.CpuQuota && r.CpuQuota > 0 && r.CpuQuota < 1000) throw invalidParameter('CPU cfs quota can not be less than 1ms (i.e. 1000)');
  if (r.BlkioWeight && (r.BlkioWeight < 10 || r.BlkioWeight > 1000)) throw invalidParameter('Range of blkio weight is from 10 to 1000');
}

/** Checks the host config of a create body as docker's daemon does, with docker's messages. */
export function validateHostConfig(host: HostConfig): void {
  checkResources(host);
  validateRestartPolicy(host.RestartPolicy, host.AutoRemove ?? false);
  const logType = host.LogConfig?.Type ?? '';
  if (!logDrivers.has(logType)) throw invalidParameter(`failed to create task for container: failed to initialize logging driver: logger: no log driver named '${logType}' is registered`);
  for (const opt of Object.keys(host.LogConfig?.Config ?? {})) {
    if (logType === 'none') throw invalidParameter(`unknown log opt '${opt}' for none log driver`);
    if (!['max-size', 'max-file', 'compress', 'labels', 'labels-regex', 'env', 'env-regex', 'tag', 'mode', 'max-buffer-size'].includes(opt)) {
      throw invalidParameter(`unknown log opt '${opt}' for json-file log driver`);
    }
  }
  try {
    jsonFileLogRotation(host.LogConfig?.Config ?? {});
  } catch (err) {
    throw invalidParameter(describeError(err), err);
  }
  if (host.OomScoreAdj !== undefined && (host.OomScoreAdj < -1000 || host.OomScoreAdj > 1000)) {
    throw invalidParameter(`Invalid value ${host.OomScoreAdj}, range for oom score adj is [-1000, 1000]`);
  }
  if (host.ShmSize !== undefined && host.ShmSize < 0) throw invalidParameter('SHM size can not be less than 0');
  const mode = host.NetworkMode ?? '';
  if ((mode === 'host' || mode.startsWith('container:')) && host.PortBindings && Object.keys(host.PortBindings).length) {
    throw invalidParameter('conflicting options: port publishing and the container type network mode');
  }
  if (mode.startsWith('container:') && mode.length === 'container:'.length) throw invalidParameter('container mode must specify a container');
}

/** Checks the container config of a create body. */
export function validateConfig(body: ContainerCreateRequest): void {
  if (body.StopTimeout !== undefined && body.StopTimeout !== null && body.StopTimeout < -1) {
    throw invalidParameter(`invalid stop timeout: ${body.StopTimeout}; must be -1 or greater`);
  }
  const hc = body.Healthcheck;
  if (hc) {
    const min = 1_000_000;
    for (const [field, value] of [['Interval', hc.Interval], ['Timeout', hc.Timeout], ['StartPeriod', hc.StartPeriod], ['StartInterval', hc.StartInterval]] as const) {
      if (value !== undefined && value !== 0 && value < min) throw invalidParameter(`${field} in Healthcheck cannot be less than 1ms`);
    }
    if (hc.Retries !== undefined && hc.Retries < 0) throw invalidParameter('Retries in Healthcheck cannot be negative');
  }
  for (const port of Object.keys(body.ExposedPorts ?? {})) {
    if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(port)) throw invalidParameter(`invalid port specification: "${port}"`);
  }
}
