import type {
  ContainerInspectResponse,
  ContainerState,
  ContainerSummary,
  MountPoint,
  NetworkSettings,
  Port,
  PortMap,
} from '../types/container.js';
import type { EndpointSettings } from '../types/network.js';
import type { ContainerRecord, MountRecord } from './container-record.js';
import { humanDuration, millisSince, rfc3339ToNanos, zeroTime } from './docker-time.js';
import type { StateLayout } from './state-layout.js';

/** docker's State.String(): `Up 5 minutes (healthy)`, `Exited (0) 2 minutes ago`, `Created`. */
export function statusText(record: ContainerRecord): string {
  const s = record.state;
  switch (s.status) {
    case 'running': {
      const up = humanDuration(millisSince(s.startedAt));
      const health = s.health && s.health.Status !== 'none' ? ` (${s.health.Status === 'starting' ? 'health: starting' : s.health.Status})` : '';
      return `Up ${up}${health}`;
    }
    case 'paused':
      return `Up ${humanDuration(millisSince(s.startedAt))} (Paused)`;
    case 'restarting':
      return `Restarting (${s.exitCode}) ${humanDuration(millisSince(s.finishedAt))} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    case 'created':
      return 'Created';
    case 'exited':
      if (!s.hasBeenStarted && rfc3339ToNanos(s.startedAt) === 0n) return 'Created';
      return `Exited (${s.exitCode}) ${humanDuration(millisSince(s.finishedAt))} ago`;
  }
}

/** The command column of `ps`: the path and arguments joined, as docker shows it. */
export function commandText(record: ContainerRecord): string {
  return [record.path, ...record.args].join(' ');
}

function mountPoint(m: MountRecord): MountPoint {
  return {
    Type: m.type,
    ...(m.name !== undefined ? { Name: m.name } : {}),
    Source: m.source,
    Destination: m.destination,
    ...(m.type === 'volume' ? { Driver: 'local' } : {}),
    Mode: m.mode,
    RW: m.rw,
    Propagation: m.propagation,
  };
}

/** The mounts inspect and ps list (`--tmpfs` ones are not, as in docker). */
export function mountPoints(record: ContainerRecord): MountPoint[] {
  return record.mounts.filter((m) => !m.hidden).map(mountPoint);
}

/** `Ports` of a container summary: published ports, then exposed ones that are not. */
export function summaryPorts(record: ContainerRecord): Port[] {
  const out: Port[] = [];
  const published = new Set<string>();
  for (const [key, bindings] of Object.entries(record.networking.ports)) {
    const [port, proto] = key.split('/');
    const type = (proto ?? 'tcp') as Port['Type'];
    for (const b of bindings ?? []) {
      published.add(key);
      out.push({ ...(b.HostIp !== undefined ? { IP: b.HostIp } : {}), PrivatePort: Number(port), ...(b.HostPort ? { PublicPort: Number(b.HostPort) } : {}), Type: type });
    }
  }
  for (const key of Object.keys(record.config.ExposedPorts ?? {})) {
    if (published.has(key)) continue;
    const [port, proto] = key.split('/');
    out.push({ PrivatePort: Number(port), Type: (proto ?? 'tcp') as Port['Type'] });
  }
  return out;
}

function isLive(record: ContainerRecord): boolean {
  return record.state.status === 'running' || record.state.status === 'paused' || record.state.status === 'restarting';
}

/** The endpoints as inspect shows them: live values while running, only the requested ones otherwise. */
function endpoints(record: ContainerRecord): Record<string, EndpointSettings> {
  const out: Record<string, EndpointSettings> = {};
  const live = isLive(record);
  for (const [name, ep] of Object.entries(record.networking.networks)) {
    out[name] = {
      IPAMConfig: ep.IPAMConfig ?? null,
      Links: ep.Links ?? null,
      Aliases: ep.Aliases ?? null,
      MacAddress: live ? (ep.MacAddress ?? '') : '',
      DriverOpts: ep.DriverOpts ?? null,
      GwPriority: ep.GwPriority ?? 0,
      NetworkID: ep.NetworkID ?? '',
      EndpointID: live ? (ep.EndpointID ?? '') : '',
      Gateway: live ? (ep.Gateway ?? '') : '',
      IPAddress: live ? (ep.IPAddress ?? '') : '',
      IPPrefixLen: live ? (ep.IPPrefixLen ?? 0) : 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      DNSNames: ep.DNSNames ?? null,
    };
  }
  return out;
}

/** `NetworkSettings` of inspect; the legacy top-level fields mirror the default bridge's endpoint. */
export function networkSettings(record: ContainerRecord): NetworkSettings {
  const networks = endpoints(record);
  const bridge = networks['bridge'];
  const live = isLive(record);
  const ports: PortMap = live ? record.networking.ports : {};
  const exposed: Record<string, null> = {};
  if (live) for (const key of Object.keys(record.config.ExposedPorts ?? {})) if (!(key in ports)) exposed[key] = null;
  return {
    Bridge: '',
    SandboxID: live && record.networking.sandboxKey ? record.id : '',
    SandboxKey: live ? record.networking.sandboxKey : '',
    Ports: { ...ports, ...exposed },
    HairpinMode: false,
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: bridge?.EndpointID ?? '',
    Gateway: bridge?.Gateway ?? '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    IPAddress: bridge?.IPAddress ?? '',
    IPPrefixLen: bridge?.IPPrefixLen ?? 0,
    IPv6Gateway: '',
    MacAddress: bridge?.MacAddress ?? '',
    Networks: networks,
  };
}

/** `State` of inspect. */
export function inspectState(record: ContainerRecord): ContainerState {
  const s = record.state;
  return {
    Status: s.status,
    // docker keeps Running true while a policy restart is pending (SetRestarting).
    Running: s.status === 'running' || s.status === 'paused' || s.status === 'restarting',
    Paused: s.status === 'paused',
    Restarting: s.status === 'restarting',
    OOMKilled: s.oomKilled,
    Dead: s.status === 'dead',
    Pid: s.status === 'running' || s.status === 'paused' ? s.pid : 0,
    ExitCode: s.exitCode,
    Error: s.error,
    StartedAt: s.startedAt || zeroTime,
    FinishedAt: s.finishedAt || zeroTime,
    ...(s.health ? { Health: s.health } : {}),
  };
}

/** The record as `GET /containers/{id}/json` shows it. */
export function inspectView(record: ContainerRecord, layout: StateLayout, extra: { readonly execIds: readonly string[]; readonly graphDriverData: Readonly<Record<string, string>> | null }): ContainerInspectResponse {
  const dir = layout.container(record.id);
  return {
    Id: record.id,
    Created: record.created,
    Path: record.path,
    Args: record.args,
    State: inspectState(record),
    Image: record.image,
    ResolvConfPath: `${dir}/resolv.conf`,
    HostnamePath: `${dir}/hostname`,
    HostsPath: `${dir}/hosts`,
    LogPath: record.logPath,
    Name: `/${record.name}`,
    RestartCount: record.restartCount,
    Driver: record.driver,
    Platform: record.platform,
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: extra.execIds.length ? extra.execIds : null,
    HostConfig: record.hostConfig,
    GraphDriver: { Name: record.driver, Data: extra.graphDriverData },
    Mounts: mountPoints(record),
    Config: record.config,
    NetworkSettings: networkSettings(record),
  };
}

/** The record as one entry of `GET /containers/json` shows it. */
export function summaryView(record: ContainerRecord, imageName: string): ContainerSummary {
  const networks = endpoints(record);
  return {
    Id: record.id,
    Names: [`/${record.name}`],
    Image: imageName,
    ImageID: record.image,
    Command: commandText(record),
    Created: Number(rfc3339ToNanos(record.created) / 1_000_000_000n),
    Ports: isLive(record) ? summaryPorts(record) : [],
    Labels: record.config.Labels ?? {},
    State: record.state.status,
    Status: statusText(record),
    HostConfig: { NetworkMode: record.hostConfig.NetworkMode ?? 'bridge' },
    NetworkSettings: { Networks: networks },
    Mounts: mountPoints(record),
  };
}
