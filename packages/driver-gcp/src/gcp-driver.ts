import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  AddressesClient,
  DisksClient,
  FirewallsClient,
  GlobalOperationsClient,
  ImagesClient,
  InstancesClient,
  RegionOperationsClient,
  ZoneOperationsClient,
  ZonesClient,
  protos,
} from '@google-cloud/compute';
import type { JWT } from 'google-auth-library';
import { ErrorKind, describeError, throwIfAborted } from '@berth/errors';
import {
  DriverError,
  DriverErrorCode,
  MachineState,
  SshKeyPair,
  invalidOption,
  type Driver,
  type DriverCallOptions,
  type DriverConfig,
  type DriverContext,
} from '@berth/machine';
import type { GcpDriverConfig } from './flags.js';
import { GcpDriverError, GcpErrorCode, GrpcStatus, grpcCodeOf, wrapComputeError } from './gcp-error.js';

type Operation = protos.google.cloud.compute.v1.IOperation;
type Instance = protos.google.cloud.compute.v1.IInstance;

interface ComputeClients {
  readonly instances: InstancesClient;
  readonly disks: DisksClient;
  readonly zones: ZonesClient;
  readonly images: ImagesClient;
  readonly firewalls: FirewallsClient;
  readonly addresses: AddressesClient;
  readonly zoneOperations: ZoneOperationsClient;
  readonly regionOperations: RegionOperationsClient;
  readonly globalOperations: GlobalOperationsClient;
}

/** The engine's TLS port, opened by the host's firewall rule. */
const enginePort = 2376;

/** Options of `GcpDriver`: the host's context and its saved (or freshly parsed) config. */
export interface GcpDriverOptions {
  readonly context: DriverContext;
  readonly config: GcpDriverConfig;
}

/** Compute Engine instance statuses as machine states. */
function machineStateOf(status: string | null | undefined): MachineState {
  switch (status) {
    case 'PROVISIONING':
    case 'STAGING':
    case 'REPAIRING':
      return MachineState.Starting;
    case 'RUNNING':
      return MachineState.Running;
    case 'STOPPING':
    case 'SUSPENDING':
      return MachineState.Stopping;
    case 'STOPPED':
    case 'TERMINATED':
      return MachineState.Stopped;
    case 'SUSPENDED':
      return MachineState.Saved;
    default:
      return MachineState.None;
  }
}

function lastSegment(link: string | null | undefined): string {
  return (link ?? '').split('/').pop() ?? '';
}

/** The region of a zone (`us-central1-a` → `us-central1`). */
function regionOf(zone: string): string {
  return zone.replace(/-[a-z]$/, '');
}

/**
 * A host on Google Compute Engine. `create` makes a firewall rule for the host's network tag
 * (SSH, 2376 and `--gcp-open-port`), reserves a static address when asked, and inserts the
 * instance with the SSH key in its metadata, waiting on each operation. Every resource is
 * saved into the host's config as it is made; a failed `create` and `rm` remove exactly those.
 */
export class GcpDriver implements Driver {
  readonly driverName = 'gcp';
  readonly #context: DriverContext;
  #config: GcpDriverConfig;
  #clients: Promise<ComputeClients> | undefined;

  constructor(options: GcpDriverOptions) {
    if (!options?.context || !options.config) {
      throw new DriverError('GcpDriver needs a context and a config', { code: DriverErrorCode.InvalidOption, kind: ErrorKind.InvalidArgument });
    }
    this.#context = options.context;
    this.#config = options.config;
  }

  config(): DriverConfig {
    return this.#config;
  }

  sshUser(): string {
    return this.#config.username;
  }

  sshKeyPath(): string {
    return join(this.#context.machineDir, this.#config.sshKeyFile);
  }

  async sshPort(): Promise<number> {
    return 22;
  }

  async sshHostname(options: DriverCallOptions = {}): Promise<string> {
    return this.ip(options);
  }

  async ip(options: DriverCallOptions = {}): Promise<string> {
    if (this.#config.created.instance) this.#rememberAddresses(await this.#getInstance(options.signal));
    const address = this.#config.useInternalIp ? this.#config.internalIpAddress : this.#config.ipAddress;
    if (!address) {
      throw new DriverError(`instance ${this.#config.instanceName} has no ${this.#config.useInternalIp ? 'internal' : 'external'} address (is it running?)`, {
        code: 'ERR_GCP_NO_ADDRESS',
        kind: ErrorKind.FailedPrecondition,
      });
    }
    return address;
  }

  async url(options: DriverCallOptions = {}): Promise<string> {
    return `tcp://${await this.ip(options)}:${enginePort}`;
  }

  async preCreateCheck(options: DriverCallOptions = {}): Promise<void> {
    const { signal } = options;
    const c = this.#config;
    // Credentials, project and zone in one call.
    await this.#call('zones.get', (k) => k.zones.get({ project: c.project, zone: c.zone }), signal);
    const image = /projects\/([^/]+)\/global\/images\/(family\/)?([^/]+)$/.exec(c.image);
    if (!image) throw invalidOption(`flag --gcp-machine-image is not an image path: ${JSON.stringify(c.image)}`);
    await this.#call(
      'images.get',
      (k) => (image[2] ? k.images.getFromFamily({ project: image[1]!, family: image[3]! }) : k.images.get({ project: image[1]!, image: image[3]! })),
      signal,
    );
    const existing = await this.#call('instances.get', (k) => k.instances.get({ project: c.project, zone: c.zone, instance: c.instanceName }), signal).catch((e: unknown) => {
      if (grpcCodeOf(e) === GrpcStatus.NotFound) return undefined;
      throw e;
    });
    if (existing) {
      throw new DriverError(`instance ${c.instanceName} already exists in ${c.project}/${c.zone}`, { code: 'ERR_GCP_INSTANCE_EXISTS', kind: ErrorKind.AlreadyExists });
    }
  }

  async create(options: DriverCallOptions = {}): Promise<void> {
    const { signal } = options;
    try {
      const key = await SshKeyPair.generate(signal ? { signal } : {});
      await key.write(this.sshKeyPath());
      await this.#prepareFirewall(signal);
      const natIP = await this.#prepareAddress(signal);
      await this.#insertInstance(key, natIP, signal);
      const instance = await this.#waitStatus(['RUNNING'], signal);
      this.#rememberAddresses(instance);
      await this.#save(signal);
    } catch (error) {
      this.#context.logger.warn('create failed, removing what was made', { error: describeError(error) });
      try {
        await this.remove({});
      } catch (cleanup) {
        throw new GcpDriverError(`create failed (${describeError(error)}) and cleanup failed too: ${describeError(cleanup)}; run rm again`, {
          code: GcpErrorCode.Api,
          kind: ErrorKind.Internal,
          cause: error,
        });
      }
      throw error;
    }
  }

  async remove(options: DriverCallOptions = {}): Promise<void> {
    const { signal } = options;
    const c = this.#config;
    if (c.created.instance) {
      await this.#deleting('instances.delete', (k) => k.instances.delete({ project: c.project, zone: c.zone, instance: c.created.instance! }), signal);
      await this.#setCreated({ instance: undefined }, signal);
    }
    // The boot disk goes with the instance (autoDelete); it stays when the insert failed half-way.
    if (this.#config.created.disk) {
      await this.#deleting('disks.delete', (k) => k.disks.delete({ project: c.project, zone: c.zone, disk: this.#config.created.disk! }), signal);
      await this.#setCreated({ disk: undefined }, signal);
    }
    if (this.#config.created.address) {
      await this.#deleting('addresses.delete', (k) => k.addresses.delete({ project: c.project, region: regionOf(c.zone), address: this.#config.created.address! }), signal);
      await this.#setCreated({ address: undefined }, signal);
    }
    if (this.#config.created.firewall) {
      await this.#deleting('firewalls.delete', (k) => k.firewalls.delete({ project: c.project, firewall: this.#config.created.firewall! }), signal);
      await this.#setCreated({ firewall: undefined }, signal);
    }
    this.#config = { ...this.#config, ipAddress: undefined, internalIpAddress: undefined };
    await this.#save(signal);
  }

  async start(options: DriverCallOptions = {}): Promise<void> {
    await this.#instanceOperation('start', options.signal);
    this.#rememberAddresses(await this.#waitStatus(['RUNNING'], options.signal));
    await this.#save(options.signal);
  }

  async stop(options: DriverCallOptions = {}): Promise<void> {
    await this.#instanceOperation('stop', options.signal);
    await this.#waitStatus(['TERMINATED', 'STOPPED'], options.signal);
  }

  /** Compute Engine has no harder stop than `stop` (an ACPI shutdown, then power off). */
  async kill(options: DriverCallOptions = {}): Promise<void> {
    await this.stop(options);
  }

  /** A hard reset, as Compute Engine's `reset`. */
  async restart(options: DriverCallOptions = {}): Promise<void> {
    await this.#instanceOperation('reset', options.signal);
    await this.#waitStatus(['RUNNING'], options.signal);
  }

  async state(options: DriverCallOptions = {}): Promise<MachineState> {
    if (!this.#config.created.instance) return MachineState.None;
    return machineStateOf((await this.#getInstance(options.signal)).status);
  }

  async #save(signal: AbortSignal | undefined): Promise<void> {
    await this.#context.saveConfig(this.#config, signal ? { signal } : {});
  }

  /** Records what was made (or removed) and saves at once, so `rm` after a crash knows it. */
  async #setCreated(change: Partial<GcpDriverConfig['created']>, signal: AbortSignal | undefined): Promise<void> {
    this.#config = { ...this.#config, created: { ...this.#config.created, ...change } };
    await this.#save(signal);
  }

  /**
   * The credential of `--gcp-credentials-file`: a service account key, used as a JWT client
   * that signs its own tokens (what Google's libraries do for their APIs), so no token
   * exchange happens. Without the flag the libraries use application default credentials.
   */
  async #authClient(): Promise<JWT | undefined> {
    const file = this.#config.credentialsFile;
    if (!file) return undefined;
    let key: { type?: unknown; client_email?: unknown; private_key?: unknown; private_key_id?: unknown };
    try {
      key = JSON.parse(await readFile(file, 'utf8')) as typeof key;
    } catch (cause) {
      throw invalidOption(`cannot read the --gcp-credentials-file ${file}`, { cause });
    }
    if (key.type !== 'service_account' || typeof key.client_email !== 'string' || typeof key.private_key !== 'string') {
      throw invalidOption(`--gcp-credentials-file ${file} is not a service account key (other credentials work through GOOGLE_APPLICATION_CREDENTIALS)`);
    }
    const { JWT } = await import('google-auth-library');
    const client = new JWT({
      email: key.client_email,
      key: key.private_key,
      ...(typeof key.private_key_id === 'string' ? { keyId: key.private_key_id } : {}),
      scopes: ['https://www.googleapis.com/auth/cloud-platform'],
    });
    client.useJWTAccessWithScope = true;
    return client;
  }

  async #compute(): Promise<ComputeClients> {
    this.#clients ??= Promise.all([import('@google-cloud/compute'), this.#authClient()]).then(([sdk, authClient]) => {
      const c = this.#config;
      const url = c.endpoint ? new URL(c.endpoint) : undefined;
      // The REST transport (`fallback`): HTTP/1.1 JSON, no gRPC.
      const options = {
        fallback: true,
        projectId: c.project,
        ...(authClient ? { authClient } : {}),
        ...(url ? { apiEndpoint: url.hostname, protocol: url.protocol.slice(0, -1), port: url.port ? Number(url.port) : url.protocol === 'http:' ? 80 : 443 } : {}),
      };
      return {
        instances: new sdk.InstancesClient(options),
        disks: new sdk.DisksClient(options),
        zones: new sdk.ZonesClient(options),
        images: new sdk.ImagesClient(options),
        firewalls: new sdk.FirewallsClient(options),
        addresses: new sdk.AddressesClient(options),
        zoneOperations: new sdk.ZoneOperationsClient(options),
        regionOperations: new sdk.RegionOperationsClient(options),
        globalOperations: new sdk.GlobalOperationsClient(options),
      };
    });
    return this.#clients;
  }

  /**
   * One Compute call, retried with backoff while it is throttled (429) or unavailable (503):
   * the REST transport does not retry mutations, and inserts carry a request ID so a retry
   * cannot make a second resource.
   */
  async #call<T>(name: string, call: (clients: ComputeClients) => Promise<readonly [T, ...unknown[]]>, signal: AbortSignal | undefined): Promise<T> {
    const clients = await this.#compute();
    for (let attempt = 0, delay = 500; ; attempt++, delay = Math.min(delay * 2, 10_000)) {
      throwIfAborted(signal);
      try {
        const [result] = await call(clients);
        return result;
      } catch (error) {
        const code = grpcCodeOf(error);
        const retryable = code === GrpcStatus.ResourceExhausted || code === GrpcStatus.Unavailable;
        if (!retryable || attempt >= this.#config.retries) throw wrapComputeError(name, error);
        this.#context.logger.debug('compute call throttled, retrying', { call: name, attempt: attempt + 1 });
        await sleep(delay, undefined, signal ? { signal } : {}).catch(() => throwIfAborted(signal));
      }
    }
  }

  // A delete whose target is already gone counts as done; otherwise waits for its operation.
  async #deleting(name: string, call: (clients: ComputeClients) => Promise<readonly [{ latestResponse?: unknown }, ...unknown[]]>, signal: AbortSignal | undefined): Promise<void> {
    let started: { latestResponse?: unknown };
    try {
      started = await this.#call(name, call, signal);
    } catch (error) {
      if (grpcCodeOf(error) === GrpcStatus.NotFound) return;
      throw error;
    }
    await this.#waitOperation(name, started.latestResponse as Operation, signal);
  }

  /** Waits for an operation with the scope's `wait` call until it is DONE; its errors become a GcpDriverError. */
  async #waitOperation(name: string, operation: Operation, signal: AbortSignal | undefined): Promise<Operation> {
    const c = this.#config;
    const deadline = Date.now() + c.operationTimeoutSeconds * 1000;
    let current = operation;
    while (current.status !== 'DONE') {
      if (Date.now() > deadline) {
        throw new DriverError(`operation ${current.name} (${name}) did not finish within ${c.operationTimeoutSeconds}s`, { code: DriverErrorCode.StateTimeout, kind: ErrorKind.Timeout });
      }
      const opName = current.name ?? '';
      if (current.zone) current = await this.#call('zoneOperations.wait', (k) => k.zoneOperations.wait({ project: c.project, zone: lastSegment(current.zone), operation: opName }), signal);
      else if (current.region) current = await this.#call('regionOperations.wait', (k) => k.regionOperations.wait({ project: c.project, region: lastSegment(current.region), operation: opName }), signal);
      else current = await this.#call('globalOperations.wait', (k) => k.globalOperations.wait({ project: c.project, operation: opName }), signal);
    }
    const errors = current.error?.errors ?? [];
    if (errors.length > 0) {
      const codes = errors.map((e) => e.code ?? 'UNKNOWN');
      throw new GcpDriverError(`Compute ${name} failed: ${errors.map((e) => `${e.message ?? ''} (${e.code ?? 'UNKNOWN'})`).join('; ')}`, {
        code: GcpErrorCode.Operation,
        kind: codes.some((code) => /EXHAUSTED|QUOTA|UNAVAILABLE/.test(code)) ? ErrorKind.Unavailable : ErrorKind.FailedPrecondition,
        operationErrors: codes,
      });
    }
    return current;
  }

  async #getInstance(signal: AbortSignal | undefined): Promise<Instance> {
    const c = this.#config;
    try {
      return await this.#call('instances.get', (k) => k.instances.get({ project: c.project, zone: c.zone, instance: c.instanceName }), signal);
    } catch (error) {
      if (grpcCodeOf(error) === GrpcStatus.NotFound) {
        throw new DriverError(`instance ${c.instanceName} of host ${this.#context.machineName} does not exist in ${c.project}/${c.zone}`, {
          code: DriverErrorCode.HostGone,
          kind: ErrorKind.NotFound,
          cause: error,
        });
      }
      throw error;
    }
  }

  #rememberAddresses(instance: Instance): void {
    const nic = instance.networkInterfaces?.[0];
    this.#config = { ...this.#config, ipAddress: nic?.accessConfigs?.[0]?.natIP ?? undefined, internalIpAddress: nic?.networkIP ?? undefined };
  }

  async #instanceOperation(verb: 'start' | 'stop' | 'reset', signal: AbortSignal | undefined): Promise<void> {
    const c = this.#config;
    if (!c.created.instance) throw new DriverError(`host ${this.#context.machineName} has no instance`, { code: DriverErrorCode.HostGone, kind: ErrorKind.NotFound });
    const request = { project: c.project, zone: c.zone, instance: c.instanceName, requestId: randomUUID() };
    const started = await this.#call(`instances.${verb}`, (k) => k.instances[verb](request), signal);
    await this.#waitOperation(`instances.${verb}`, started.latestResponse as Operation, signal);
  }

  /** Polls `instances.get` (every quarter second, backing off to five) until the status is one of `statuses`. */
  async #waitStatus(statuses: readonly string[], signal: AbortSignal | undefined): Promise<Instance> {
    const deadline = Date.now() + this.#config.operationTimeoutSeconds * 1000;
    for (let delay = 250; ; delay = Math.min(delay * 1.5, 5000)) {
      const instance = await this.#getInstance(signal);
      if (statuses.includes(instance.status ?? '')) return instance;
      if (Date.now() + delay > deadline) {
        throw new DriverError(`instance ${this.#config.instanceName} did not become ${statuses.join(' or ')} within ${this.#config.operationTimeoutSeconds}s (it is ${instance.status ?? 'unknown'})`, {
          code: DriverErrorCode.StateTimeout,
          kind: ErrorKind.Timeout,
        });
      }
      await sleep(delay, undefined, signal ? { signal } : {}).catch(() => throwIfAborted(signal));
    }
  }

  /** A rule allowing SSH, 2376 and `--gcp-open-port` from anywhere to instances with the host's tag. */
  async #prepareFirewall(signal: AbortSignal | undefined): Promise<void> {
    const c = this.#config;
    const existing = await this.#call('firewalls.get', (k) => k.firewalls.get({ project: c.project, firewall: c.firewallName }), signal).catch((e: unknown) => {
      if (grpcCodeOf(e) === GrpcStatus.NotFound) return undefined;
      throw e;
    });
    if (existing) {
      this.#context.logger.info('reusing existing firewall rule', { firewall: c.firewallName });
      return;
    }
    const ports = new Map<string, string[]>();
    for (const { port, protocol } of [{ port: 22, protocol: 'tcp' }, { port: enginePort, protocol: 'tcp' }, ...c.openPorts]) {
      const list = ports.get(protocol) ?? [];
      if (!list.includes(String(port))) list.push(String(port));
      ports.set(protocol, list);
    }
    const requestId = randomUUID();
    const started = await this.#call(
      'firewalls.insert',
      (k) =>
        k.firewalls.insert({
          project: c.project,
          requestId,
          firewallResource: {
            name: c.firewallName,
            description: `Berth machine ${this.#context.machineName}: SSH and the engine's TLS port`,
            network: `projects/${c.project}/global/networks/${c.network}`,
            direction: 'INGRESS',
            sourceRanges: ['0.0.0.0/0'],
            targetTags: [c.firewallName],
            allowed: [...ports].map(([IPProtocol, list]) => ({ IPProtocol, ports: list })),
          },
        }),
      signal,
    );
    await this.#setCreated({ firewall: c.firewallName }, signal);
    await this.#waitOperation('firewalls.insert', started.latestResponse as Operation, signal);
  }

  /** The external address to give the instance: an existing one by name or IP, a new reserved one, or none (ephemeral). */
  async #prepareAddress(signal: AbortSignal | undefined): Promise<string | undefined> {
    const c = this.#config;
    const region = regionOf(c.zone);
    if (c.address) {
      if (/^\d+\.\d+\.\d+\.\d+$/.test(c.address)) return c.address;
      const found = await this.#call('addresses.get', (k) => k.addresses.get({ project: c.project, region, address: c.address! }), signal);
      return found.address ?? undefined;
    }
    if (!c.staticAddress) return undefined;
    const name = c.firewallName;
    const requestId = randomUUID();
    const started = await this.#call(
      'addresses.insert',
      (k) => k.addresses.insert({ project: c.project, region, requestId, addressResource: { name, description: `Berth machine ${this.#context.machineName}` } }),
      signal,
    );
    await this.#setCreated({ address: name }, signal);
    await this.#waitOperation('addresses.insert', started.latestResponse as Operation, signal);
    const reserved = await this.#call('addresses.get', (k) => k.addresses.get({ project: c.project, region, address: name }), signal);
    return reserved.address ?? undefined;
  }

  async #insertInstance(key: SshKeyPair, natIP: string | undefined, signal: AbortSignal | undefined): Promise<void> {
    const c = this.#config;
    const region = regionOf(c.zone);
    const resource: Instance = {
      name: c.instanceName,
      description: `Berth machine ${this.#context.machineName}`,
      machineType: `zones/${c.zone}/machineTypes/${c.machineType}`,
      labels: { 'berth-machine': c.instanceName },
      tags: { items: [...new Set([...c.tags, c.firewallName])] },
      metadata: { items: [{ key: 'ssh-keys', value: `${c.username}:${key.publicKey.split(/\s+/).slice(0, 2).join(' ')} ${c.username}` }] },
      disks: [
        {
          boot: true,
          autoDelete: true,
          type: 'PERSISTENT',
          initializeParams: { diskName: c.instanceName, sourceImage: c.image, diskSizeGb: String(c.diskSize), diskType: `zones/${c.zone}/diskTypes/${c.diskType}` },
        },
      ],
      networkInterfaces: [
        {
          network: `projects/${c.project}/global/networks/${c.network}`,
          ...(c.subnetwork ? { subnetwork: `projects/${c.project}/regions/${region}/subnetworks/${c.subnetwork}` } : {}),
          accessConfigs: c.useInternalIpOnly ? [] : [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT', ...(natIP ? { natIP } : {}) }],
        },
      ],
      scheduling: c.preemptible ? { preemptible: true, automaticRestart: false, onHostMaintenance: 'TERMINATE' } : { automaticRestart: true, onHostMaintenance: 'MIGRATE' },
      serviceAccounts: [{ email: c.serviceAccount, scopes: [...c.scopes] }],
    };
    // Saved before the insert: the instance and its boot disk share the name, and a delete of
    // a name that never got made is harmless.
    await this.#setCreated({ instance: c.instanceName, disk: c.instanceName }, signal);
    const requestId = randomUUID();
    const started = await this.#call('instances.insert', (k) => k.instances.insert({ project: c.project, zone: c.zone, requestId, instanceResource: resource }), signal);
    await this.#waitOperation('instances.insert', started.latestResponse as Operation, signal);
    this.#context.logger.info('instance inserted', { instance: c.instanceName, zone: c.zone });
  }
}
