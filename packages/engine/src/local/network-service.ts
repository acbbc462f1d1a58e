import { ErrorKind, hasCode } from '@berth/errors';
import type { NetworkInfo } from '@berth/network';
import { EngineErrorCode, engineError } from '../engine.js';
import type { CallOptions, Filters } from '../types/common.js';
import type { EndpointSettings, Network, NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest, NetworkPruneResponse } from '../types/network.js';
import { isRunning } from './container-lifecycle.js';
import type { ContainerRecord } from './container-record.js';
import { invalidParameter } from './docker-errors.js';
import { rfc3339ToNanos, untilToNanos } from './docker-time.js';
import type { EngineContext } from './engine-context.js';

const listFilterKeys = new Set(['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type']);

function labelHas(labels: Readonly<Record<string, string>>, filter: string): boolean {
  const eq = filter.indexOf('=');
  return eq < 0 ? filter in labels : labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

function notFoundAsDocker(err: unknown, ref: string): never {
  if (hasCode(err, 'ERR_NETWORK_NOT_FOUND')) {
    throw engineError(`network ${ref} not found`, EngineErrorCode.NetworkNotFound, ErrorKind.NotFound, { cause: err });
  }
  throw err;
}

/** A network as the Docker API shows it. */
export function networkView(info: NetworkInfo, withContainers: boolean): Network {
  const containers: Record<string, Network['Containers'][string]> = {};
  if (withContainers) {
    for (const c of info.containers) {
      containers[c.containerId] = { Name: c.name, EndpointID: c.endpointId, MacAddress: c.macAddress, IPv4Address: c.ipv4Address, IPv6Address: '' };
    }
  }
  const options: Record<string, string> = { ...info.options };
  if (info.isDefault && info.bridgeName) {
    options['com.docker.network.bridge.default_bridge'] ??= 'true';
    options['com.docker.network.bridge.name'] ??= info.bridgeName;
    options['com.docker.network.driver.mtu'] ??= String(info.mtu ?? 1500);
  }
  return {
    Name: info.name,
    Id: info.id,
    Created: info.created,
    Scope: 'local',
    Driver: info.driver,
    EnableIPv4: true,
    EnableIPv6: false,
    IPAM: {
      Driver: 'default',
      Options: null,
      Config: info.ipam ? [{ Subnet: info.ipam.subnet, Gateway: info.ipam.gateway, ...(info.ipam.ipRange ? { IPRange: info.ipam.ipRange } : {}) }] : [],
    },
    Internal: info.internal,
    Attachable: info.attachable,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: options,
    Labels: info.labels,
  };
}

/** `engine network ...` and the connect/disconnect of containers. */
export class NetworkService {
  readonly #ctx: EngineContext;

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
  }

  async #info(ref: string, signal?: AbortSignal): Promise<NetworkInfo> {
    return this.#ctx.network().inspectNetwork(ref, signal ? { signal } : {}).catch((err: unknown) => notFoundAsDocker(err, ref));
  }

  async create(body: NetworkCreateRequest, options: CallOptions = {}): Promise<NetworkCreateResponse> {
    if (!body.Name) throw invalidParameter('network name is required');
    if (body.Driver && !['bridge'].includes(body.Driver)) {
      throw engineError(`plugin "${body.Driver}" not found`, EngineErrorCode.NotImplemented, ErrorKind.NotFound);
    }
    if (body.EnableIPv6) throw invalidParameter('IPv6 networks are not supported by Berth');
    const pool = body.IPAM?.Config?.[0];
    if ((body.IPAM?.Config?.length ?? 0) > 1) throw invalidParameter('only one IPv4 address pool per network is supported');
    const info = await this.#ctx.network().createNetwork({
      name: body.Name,
      driver: body.Driver || 'bridge',
      ...(pool?.Subnet ? { subnet: pool.Subnet } : {}),
      ...(pool?.Gateway ? { gateway: pool.Gateway } : {}),
      ...(pool?.IPRange ? { ipRange: pool.IPRange } : {}),
      internal: body.Internal ?? false,
      attachable: body.Attachable ?? false,
      ...(body.Labels ? { labels: body.Labels } : {}),
      ...(body.Options ? { options: body.Options } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    await this.#ctx.events.append({ Type: 'network', Action: 'create', Actor: { ID: info.id, Attributes: { name: info.name, type: info.driver } } });
    return { Id: info.id, Warning: '' };
  }

  async list(filters: Filters = {}, options: CallOptions = {}): Promise<Network[]> {
    for (const key of Object.keys(filters)) if (!listFilterKeys.has(key)) throw invalidParameter(`invalid filter '${key}'`);
    const networks = await this.#ctx.network().listNetworks(options.signal ? { signal: options.signal } : {});
    return networks
      .filter((n) => {
        const f = (k: string) => filters[k] ?? [];
        if (f('driver').length && !f('driver').includes(n.driver)) return false;
        if (f('id').length && !f('id').some((id) => n.id.startsWith(id))) return false;
        if (f('name').length && !f('name').some((name) => n.name.includes(name))) return false;
        if (f('scope').length && !f('scope').includes('local')) return false;
        if (f('label').length && !f('label').every((l) => labelHas(n.labels, l))) return false;
        if (f('type').length && !f('type').some((t) => (t === 'builtin' ? n.predefined : t === 'custom' ? !n.predefined : false))) return false;
        if (f('dangling').length) {
          const dangling = !n.predefined && n.containers.length === 0;
          if (!f('dangling').some((d) => (['1', 'true'].includes(d) ? dangling : !dangling))) return false;
        }
        return true;
      })
      .map((n) => networkView(n, false));
  }

  async inspect(ref: string, options: CallOptions = {}): Promise<Network> {
    return networkView(await this.#info(ref, options.signal), true);
  }

  async remove(ref: string, options: CallOptions = {}): Promise<void> {
    const info = await this.#info(ref, options.signal);
    if (info.predefined) {
      throw engineError(`${info.name} is a pre-defined network and cannot be removed`, EngineErrorCode.InUse, ErrorKind.PermissionDenied);
    }
    if (info.containers.length) {
      throw engineError(`error while removing network: network ${info.name} id ${info.id} has active endpoints`, EngineErrorCode.InUse, ErrorKind.Conflict);
    }
    await this.#ctx.network().removeNetwork(info.id, options.signal ? { signal: options.signal } : {});
    await this.#ctx.events.append({ Type: 'network', Action: 'destroy', Actor: { ID: info.id, Attributes: { name: info.name, type: info.driver } } });
  }

  async prune(filters: Filters = {}, options: CallOptions = {}): Promise<NetworkPruneResponse> {
    for (const key of Object.keys(filters)) if (!['until', 'label', 'label!'].includes(key)) throw invalidParameter(`invalid filter '${key}'`);
    const until = filters['until']?.[0] === undefined ? undefined : untilToNanos(filters['until'][0]);
    // As docker: a network is unused when no running container is attached; stopped ones do not keep it.
    const removed = await this.#ctx.network().pruneNetworks({
      filter: (n) =>
        (until === undefined || rfc3339ToNanos(n.created) < until) &&
        (filters['label'] ?? []).every((l) => labelHas(n.labels, l)) &&
        !(filters['label!'] ?? []).some((l) => labelHas(n.labels, l)),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    for (const name of removed) await this.#ctx.events.append({ Type: 'network', Action: 'destroy', Actor: { ID: name, Attributes: { name, type: 'bridge' } } });
    return { NetworksDeleted: removed.length ? removed : null };
  }

  /** `network connect`: recorded for the next start; live at once when the container runs. */
  async connect(ref: string, body: NetworkConnectRequest, options: CallOptions = {}): Promise<void> {
    const info = await this.#info(ref, options.signal);
    const id = await this.#ctx.containers.resolve(body.Container);
    const requested: EndpointSettings = body.EndpointConfig ?? {};
    await this.#ctx.containers.withLock(id, async () => {
      const record = await this.#ctx.containers.read(id, body.Container);
      const mode = record.networking.mode;
      if (mode === 'host' || mode === 'none' || mode.startsWith('container:') || info.driver !== 'bridge') {
        throw engineError(
          info.driver !== 'bridge' ? `container cannot be disconnected from host network or connected to host network` : `container sharing network namespace with another container or host cannot be connected to any other network`,
          EngineErrorCode.InvalidParameter,
          ErrorKind.PermissionDenied,
        );
      }
      if (record.networking.networks[info.name]) {
        throw engineError(`endpoint with name ${record.name} already exists in network ${info.name}`, EngineErrorCode.NameInUse, ErrorKind.PermissionDenied);
      }
      if (info.isDefault && requested.Aliases?.length) throw invalidParameter('network-scoped alias is supported only for containers in user defined networks');
      let endpoint: EndpointSettings = { ...requested, NetworkID: info.id };
      if (isRunning(record)) {
        const ep = await this.#ctx.network().connect({
          containerId: id,
          containerName: record.name,
          pid: record.state.pid,
          network: info.id,
          ...(requested.Aliases?.length ? { aliases: [...requested.Aliases] } : {}),
          ...(requested.IPAMConfig?.IPv4Address ? { ip: requested.IPAMConfig.IPv4Address } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        });
        endpoint = { ...endpoint, EndpointID: ep.id, Gateway: ep.gateway, IPAddress: ep.ipAddress, IPPrefixLen: ep.prefixLength, MacAddress: ep.macAddress, DNSNames: ep.dnsNames.length ? [...ep.dnsNames] : null };
      }
      const next: ContainerRecord = { ...record, networking: { ...record.networking, networks: { ...record.networking.networks, [info.name]: endpoint } } };
      await this.#ctx.containers.write(next, { durable: true });
    });
    this.#ctx.watch.notify(id);
    await this.#ctx.events.append({ Type: 'network', Action: 'connect', Actor: { ID: info.id, Attributes: { container: id, name: info.name, type: info.driver } } });
  }

  async disconnect(ref: string, body: NetworkDisconnectRequest, options: CallOptions = {}): Promise<void> {
    const info = await this.#info(ref, options.signal);
    const id = await this.#ctx.containers.resolve(body.Container);
    await this.#ctx.containers.withLock(id, async () => {
      const record = await this.#ctx.containers.read(id, body.Container);
      if (!record.networking.networks[info.name]) {
        if (body.Force) return;
        throw engineError(`container ${id} is not connected to network ${info.name}`, EngineErrorCode.NetworkNotFound, ErrorKind.Conflict);
      }
      if (isRunning(record) && info.driver === 'bridge') {
        await this.#ctx.network().disconnect({ containerId: id, network: info.id, ...(options.signal ? { signal: options.signal } : {}) }).catch((err: unknown) => {
          if (!hasCode(err, 'ERR_CONTAINER_NOT_CONNECTED')) throw err;
        });
      }
      const networks = { ...record.networking.networks };
      delete networks[info.name];
      await this.#ctx.containers.write({ ...record, networking: { ...record.networking, networks } }, { durable: true });
    });
    this.#ctx.watch.notify(id);
    await this.#ctx.events.append({ Type: 'network', Action: 'disconnect', Actor: { ID: info.id, Attributes: { container: id, name: info.name, type: info.driver } } });
  }
}
