import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ComputeManagementClient } from '@azure/arm-compute';
import type { NetworkManagementClient } from '@azure/arm-network';
import type { ResourceManagementClient } from '@azure/arm-resources';
import type { TokenCredential } from '@azure/identity';
import { ErrorKind, describeError, throwIfAborted } from '@berth/errors';
import {
  DriverError,
  DriverErrorCode,
  MachineState,
  SshKeyPair,
  SshKeyType,
  invalidOption,
  type Driver,
  type DriverCallOptions,
  type DriverConfig,
  type DriverContext,
} from '@berth/machine';
import { AzureDriverError, AzureErrorCode, armCodeOf, armErrorKind, statusOf, wrapArmError } from './azure-error.js';
import type { AzureDriverConfig } from './flags.js';

interface ArmClients {
  readonly compute: ComputeManagementClient;
  readonly network: NetworkManagementClient;
  readonly resources: ResourceManagementClient;
}

type Created = AzureDriverConfig['created'];

/** The tag on everything the driver makes (value: the machine that made it). */
const berthTag = 'berth-machine';

/** Options of `AzureDriver`: the host's context and its saved (or freshly parsed) config. */
export interface AzureDriverOptions {
  readonly context: DriverContext;
  readonly config: AzureDriverConfig;
}

/** A VM's instance view statuses (`PowerState/running`, `ProvisioningState/failed`) as a machine state. */
function machineStateOf(codes: readonly string[]): MachineState {
  if (codes.some((c) => c.toLowerCase().startsWith('provisioningstate/failed'))) return MachineState.Error;
  const power = codes.find((c) => c.startsWith('PowerState/'))?.slice('PowerState/'.length);
  switch (power) {
    case 'running':
      return MachineState.Running;
    case 'starting':
      return MachineState.Starting;
    case 'stopping':
    case 'deallocating':
      return MachineState.Stopping;
    case 'stopped':
    case 'deallocated':
      return MachineState.Stopped;
    default:
      return codes.some((c) => c.toLowerCase().startsWith('provisioningstate/creating')) ? MachineState.Starting : MachineState.None;
  }
}

/**
 * A host on Azure. `create` finds or makes the resource group, then makes a network security
 * group (SSH, the engine port, `--azure-open-port`), the virtual network and subnet when
 * missing, a Standard static public IP, a NIC and the VM, waiting on each long-running
 * operation. Each resource is saved into the host's config as soon as its request is
 * accepted; a failed `create` and `rm` delete them in reverse order. The vnet and resource
 * group may serve several hosts: the last host using one that Berth made (tagged
 * `berth-machine`) removes it.
 */
export class AzureDriver implements Driver {
  readonly driverName = 'azure';
  readonly #context: DriverContext;
  #config: AzureDriverConfig;
  #clients: Promise<ArmClients> | undefined;

  constructor(options: AzureDriverOptions) {
    if (!options?.context || !options.config) {
      throw new DriverError('AzureDriver needs a context and a config', { code: DriverErrorCode.InvalidOption, kind: ErrorKind.InvalidArgument });
    }
    this.#context = options.context;
    this.#config = options.config;
  }

  config(): DriverConfig {
    return this.#config;
  }

  sshUser(): string {
    return this.#config.sshUser;
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
    await this.#refreshAddresses(options.signal);
    const address = this.#config.usePrivateIp ? this.#config.privateIpAddressSeen : this.#config.ipAddress;
    if (!address) {
      throw new DriverError(`VM ${this.#config.vmName} has no ${this.#config.usePrivateIp ? 'private' : 'public'} address`, { code: 'ERR_AZURE_NO_ADDRESS', kind: ErrorKind.FailedPrecondition });
    }
    return address;
  }

  async url(options: DriverCallOptions = {}): Promise<string> {
    return `tcp://${await this.ip(options)}:${this.#config.dockerPort}`;
  }

  async preCreateCheck(options: DriverCallOptions = {}): Promise<void> {
    const c = this.#config;
    // Needs a token and read access to the subscription; tells whether the group exists.
    await this.#call('resourceGroups.checkExistence', (k) => k.resources.resourceGroups.checkExistence(c.resourceGroup, { abortSignal: options.signal }), options.signal);
    const existing = await this.#optional(
      this.#call('virtualMachines.get', (k) => k.compute.virtualMachines.get(c.resourceGroup, c.vmName, { abortSignal: options.signal }), options.signal),
    );
    if (existing) throw new DriverError(`VM ${c.vmName} already exists in resource group ${c.resourceGroup}`, { code: 'ERR_AZURE_VM_EXISTS', kind: ErrorKind.AlreadyExists });
  }

  async create(options: DriverCallOptions = {}): Promise<void> {
    const { signal } = options;
    try {
      // RSA: Azure's Linux VM provisioning accepts RSA keys on every image.
      const key = await SshKeyPair.generate({ type: SshKeyType.Rsa, bits: 3072, ...(signal ? { signal } : {}) });
      await key.write(this.sshKeyPath());
      await this.#prepareResourceGroup(signal);
      const nsgId = await this.#prepareSecurityGroup(signal);
      const subnetId = await this.#prepareSubnet(signal);
      const publicIpId = await this.#preparePublicIp(signal);
      const nicId = await this.#prepareNic(nsgId, subnetId, publicIpId, signal);
      await this.#createVm(key, nicId, signal);
      await this.#waitPower(['running'], signal);
      await this.#refreshAddresses(signal);
      await this.#save(signal);
    } catch (error) {
      this.#context.logger.warn('create failed, removing what was made', { error: describeError(error) });
      try {
        await this.remove({});
      } catch (cleanup) {
        throw new AzureDriverError(`create failed (${describeError(error)}) and cleanup failed too: ${describeError(cleanup)}; run rm again`, {
          code: AzureErrorCode.Api,
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
    const opts = { abortSignal: signal };
    const created = (): Created => this.#config.created;
    if (created().virtualMachine) {
      await this.#deleting('virtualMachines.delete', (k) => k.compute.virtualMachines.delete(c.resourceGroup, created().virtualMachine!, opts), signal);
      await this.#setCreated({ virtualMachine: undefined }, signal);
    }
    // Gone with the VM (deleteOption Delete) unless the VM never finished provisioning.
    if (created().osDisk) {
      await this.#deleting('disks.delete', (k) => k.compute.disks.delete(c.resourceGroup, created().osDisk!, opts), signal);
      await this.#setCreated({ osDisk: undefined }, signal);
    }
    if (created().networkInterface) {
      await this.#deleting('networkInterfaces.delete', (k) => k.network.networkInterfaces.delete(c.resourceGroup, created().networkInterface!, opts), signal);
      await this.#setCreated({ networkInterface: undefined }, signal);
    }
    if (created().publicIp) {
      await this.#deleting('publicIPAddresses.delete', (k) => k.network.publicIPAddresses.delete(c.resourceGroup, created().publicIp!, opts), signal);
      await this.#setCreated({ publicIp: undefined }, signal);
    }
    if (created().networkSecurityGroup) {
      await this.#deleting('networkSecurityGroups.delete', (k) => k.network.networkSecurityGroups.delete(c.resourceGroup, created().networkSecurityGroup!, opts), signal);
      await this.#setCreated({ networkSecurityGroup: undefined }, signal);
    }
    // A subnet or vnet this host made may since serve other hosts: then it stays.
    if (created().subnet) {
      await this.#deletingShared('subnets.delete', (k) => k.network.subnets.delete(c.vnetResourceGroup, c.vnet, created().subnet!, opts), signal);
      await this.#setCreated({ subnet: undefined }, signal);
    }
    // A vnet or group Berth made goes with the last host using it, whichever host made it.
    const vnetMade = created().virtualNetwork !== undefined || (await this.#madeByBerth((k) => k.network.virtualNetworks.get(c.vnetResourceGroup, c.vnet, opts), signal));
    if (vnetMade) {
      await this.#deletingShared('virtualNetworks.delete', (k) => k.network.virtualNetworks.delete(c.vnetResourceGroup, c.vnet, opts), signal);
      await this.#setCreated({ virtualNetwork: undefined }, signal);
    }
    const groupMade = created().resourceGroup === true || (await this.#madeByBerth((k) => k.resources.resourceGroups.get(c.resourceGroup, opts), signal));
    if (groupMade) {
      const others: string[] = [];
      const exists = await this.#call('resourceGroups.checkExistence', (k) => k.resources.resourceGroups.checkExistence(c.resourceGroup, opts), signal);
      if (exists.body) {
        const { resources } = await this.#arm();
        try {
          for await (const r of resources.resources.listByResourceGroup(c.resourceGroup, opts)) others.push(r.id ?? r.name ?? '?');
        } catch (error) {
          throw wrapArmError('resources.listByResourceGroup', error);
        }
        if (others.length === 0) await this.#deleting('resourceGroups.delete', (k) => k.resources.resourceGroups.delete(c.resourceGroup, opts), signal);
        else this.#context.logger.warn('resource group holds other resources, leaving it', { resourceGroup: c.resourceGroup, resources: others.length });
      }
      await this.#setCreated({ resourceGroup: undefined }, signal);
    }
    this.#config = { ...this.#config, ipAddress: undefined, privateIpAddressSeen: undefined };
    await this.#save(signal);
  }

  async start(options: DriverCallOptions = {}): Promise<void> {
    await this.#vmAction('start', (k, name, o) => k.compute.virtualMachines.start(this.#config.resourceGroup, name, o), options.signal);
    await this.#waitPower(['running'], options.signal);
    await this.#refreshAddresses(options.signal);
    await this.#save(options.signal);
  }

  /** Deallocates the VM, so compute is no longer billed (docker-machine only powered it off). */
  async stop(options: DriverCallOptions = {}): Promise<void> {
    await this.#vmAction('deallocate', (k, name, o) => k.compute.virtualMachines.deallocate(this.#config.resourceGroup, name, o), options.signal);
    await this.#waitPower(['deallocated'], options.signal);
  }

  /** Powers the VM off without a guest shutdown. */
  async kill(options: DriverCallOptions = {}): Promise<void> {
    await this.#vmAction('powerOff', (k, name, o) => k.compute.virtualMachines.powerOff(this.#config.resourceGroup, name, { ...o, skipShutdown: true }), options.signal);
    await this.#waitPower(['stopped', 'deallocated'], options.signal);
  }

  async restart(options: DriverCallOptions = {}): Promise<void> {
    await this.#vmAction('restart', (k, name, o) => k.compute.virtualMachines.restart(this.#config.resourceGroup, name, o), options.signal);
    await this.#waitPower(['running'], options.signal);
  }

  async state(options: DriverCallOptions = {}): Promise<MachineState> {
    if (!this.#config.created.virtualMachine) return MachineState.None;
    return machineStateOf(await this.#statuses(options.signal));
  }

  async #save(signal: AbortSignal | undefined): Promise<void> {
    await this.#context.saveConfig(this.#config, signal ? { signal } : {});
  }

  /** Records what was made (or removed) and saves at once, so `rm` after a crash knows it. */
  async #setCreated(change: Partial<Created>, signal: AbortSignal | undefined): Promise<void> {
    this.#config = { ...this.#config, created: { ...this.#config.created, ...change } };
    await this.#save(signal);
  }

  async #credential(): Promise<TokenCredential> {
    const c = this.#config;
    const identity = await import('@azure/identity');
    const ca = c.caBundle ? await this.#readCaBundle(c.caBundle) : undefined;
    const common = { authorityHost: c.authorityHost, ...(ca ? { tlsOptions: { ca } } : {}) };
    if (c.clientId && c.clientSecret && c.tenantId) {
      // A custom authority (Azure Stack Hub, a test double) is not in Microsoft's instance list.
      const known = ['https://login.microsoftonline.com', 'https://login.chinacloudapi.cn', 'https://login.microsoftonline.us'].includes(c.authorityHost);
      return new identity.ClientSecretCredential(c.tenantId, c.clientId, c.clientSecret, { ...common, disableInstanceDiscovery: !known });
    }
    return new identity.DefaultAzureCredential({ ...common, ...(c.tenantId ? { tenantId: c.tenantId } : {}) });
  }

  async #readCaBundle(path: string): Promise<string> {
    try {
      return await readFile(path, 'utf8');
    } catch (cause) {
      throw invalidOption(`cannot read --azure-ca-bundle ${path}`, { cause });
    }
  }

  async #arm(): Promise<ArmClients> {
    this.#clients ??= (async () => {
      const c = this.#config;
      const [compute, network, resources, credential] = await Promise.all([import('@azure/arm-compute'), import('@azure/arm-network'), import('@azure/arm-resources'), this.#credential()]);
      const ca = c.caBundle ? await this.#readCaBundle(c.caBundle) : undefined;
      const options = { endpoint: c.resourceManager, credentials: { scopes: [`${c.resourceManager}/.default`] }, ...(ca ? { tlsOptions: { ca } } : {}) };
      return {
        compute: new compute.ComputeManagementClient(credential, c.subscriptionId, options),
        network: new network.NetworkManagementClient(credential, c.subscriptionId, options),
        resources: new resources.ResourceManagementClient(credential, c.subscriptionId, options),
      };
    })();
    return this.#clients;
  }

  /** One ARM call (or long-running operation, awaited to its end); failures become AzureDriverErrors. */
  async #call<T>(name: string, call: (clients: ArmClients) => PromiseLike<T>, signal: AbortSignal | undefined): Promise<T> {
    throwIfAborted(signal);
    const clients = await this.#arm();
    try {
      return await call(clients);
    } catch (error) {
      throwIfAborted(signal);
      throw wrapArmError(name, error);
    }
  }

  /** Undefined when the call answered 404. */
  async #optional<T>(call: Promise<T>): Promise<T | undefined> {
    try {
      return await call;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async #deleting(name: string, call: (clients: ArmClients) => PromiseLike<unknown>, signal: AbortSignal | undefined): Promise<void> {
    await this.#optional(this.#call(name, call, signal));
  }

  async #deletingShared(name: string, call: (clients: ArmClients) => PromiseLike<unknown>, signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.#deleting(name, call, signal);
    } catch (error) {
      if (!(armCodeOf(error) ?? '').includes('InUse')) throw error;
      this.#context.logger.warn('network resource is used by other hosts, leaving it', { call: name, error: describeError(error) });
    }
  }

  /** True when the resource exists and carries the tag Berth puts on what it makes. */
  async #madeByBerth(get: (clients: ArmClients) => PromiseLike<{ tags?: Record<string, string> }>, signal: AbortSignal | undefined): Promise<boolean> {
    const found = await this.#optional(this.#call('get', get, signal));
    return found?.tags?.[berthTag] !== undefined;
  }

  async #vmAction(
    name: string,
    action: (clients: ArmClients, vmName: string, options: { abortSignal?: AbortSignal }) => PromiseLike<unknown>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const vmName = this.#config.created.virtualMachine;
    if (!vmName) throw new DriverError(`host ${this.#context.machineName} has no VM`, { code: DriverErrorCode.HostGone, kind: ErrorKind.NotFound });
    await this.#call(`virtualMachines.${name}`, (k) => action(k, vmName, signal ? { abortSignal: signal } : {}), signal);
  }

  async #statuses(signal: AbortSignal | undefined): Promise<string[]> {
    const c = this.#config;
    try {
      const view = await this.#call('virtualMachines.instanceView', (k) => k.compute.virtualMachines.instanceView(c.resourceGroup, c.vmName, { abortSignal: signal }), signal);
      return (view.statuses ?? []).map((s) => s.code ?? '');
    } catch (error) {
      if (statusOf(error) === 404) {
        throw new DriverError(`VM ${c.vmName} of host ${this.#context.machineName} does not exist in ${c.resourceGroup}`, { code: DriverErrorCode.HostGone, kind: ErrorKind.NotFound, cause: error });
      }
      throw error;
    }
  }

  /** Polls the instance view (a quarter second, backing off to five) until the power state is one of `states`. */
  async #waitPower(states: readonly string[], signal: AbortSignal | undefined): Promise<void> {
    const deadline = Date.now() + this.#config.waitTimeoutSeconds * 1000;
    for (let delay = 250; ; delay = Math.min(delay * 1.5, 5000)) {
      const codes = await this.#statuses(signal);
      const power = codes.find((c) => c.startsWith('PowerState/'))?.slice('PowerState/'.length);
      if (power && states.includes(power)) return;
      if (machineStateOf(codes) === MachineState.Error) {
        throw new DriverError(`VM ${this.#config.vmName} failed to provision (${codes.join(', ')})`, { code: 'ERR_AZURE_PROVISIONING_FAILED', kind: ErrorKind.Unavailable });
      }
      if (Date.now() + delay > deadline) {
        throw new DriverError(`VM ${this.#config.vmName} did not become ${states.join(' or ')} within ${this.#config.waitTimeoutSeconds}s (it is ${power ?? 'without a power state'})`, {
          code: DriverErrorCode.StateTimeout,
          kind: ErrorKind.Timeout,
        });
      }
      await sleep(delay, undefined, signal ? { signal } : {}).catch(() => throwIfAborted(signal));
    }
  }

  async #refreshAddresses(signal: AbortSignal | undefined): Promise<void> {
    const c = this.#config;
    const opts = { abortSignal: signal };
    let ipAddress = c.ipAddress;
    let privateIp = c.privateIpAddressSeen;
    if (c.created.publicIp) {
      const ip = await this.#call('publicIPAddresses.get', (k) => k.network.publicIPAddresses.get(c.resourceGroup, c.created.publicIp!, opts), signal);
      ipAddress = ip.ipAddress ?? undefined;
    }
    if (c.created.networkInterface) {
      const nic = await this.#call('networkInterfaces.get', (k) => k.network.networkInterfaces.get(c.resourceGroup, c.created.networkInterface!, opts), signal);
      privateIp = nic.ipConfigurations?.[0]?.privateIPAddress ?? undefined;
    }
    this.#config = { ...this.#config, ipAddress, privateIpAddressSeen: privateIp };
  }

  async #prepareResourceGroup(signal: AbortSignal | undefined): Promise<void> {
    const c = this.#config;
    const exists = await this.#call('resourceGroups.checkExistence', (k) => k.resources.resourceGroups.checkExistence(c.resourceGroup, { abortSignal: signal }), signal);
    if (exists.body) return;
    await this.#call(
      'resourceGroups.createOrUpdate',
      (k) => k.resources.resourceGroups.createOrUpdate(c.resourceGroup, { location: c.location, tags: this.#tags() }, { abortSignal: signal }),
      signal,
    );
    await this.#setCreated({ resourceGroup: true }, signal);
  }

  async #prepareSecurityGroup(signal: AbortSignal | undefined): Promise<string> {
    const c = this.#config;
    const name = `${c.vmName}-nsg`;
    const rule = (ruleName: string, port: number, protocol: string, priority: number) => ({
      name: ruleName,
      protocol: (protocol === 'udp' ? 'Udp' : 'Tcp') as 'Udp' | 'Tcp',
      sourcePortRange: '*',
      destinationPortRange: String(port),
      sourceAddressPrefix: '*',
      destinationAddressPrefix: '*',
      access: 'Allow' as const,
      direction: 'Inbound' as const,
      priority,
    });
    const rules = [
      rule('SSHAllowAny', 22, 'tcp', 100),
      rule('DockerAllowAny', c.dockerPort, 'tcp', 300),
      ...c.openPorts.map((p, i) => rule(`Port${p.port}-${p.protocol}AllowAny`, p.port, p.protocol, 1000 + i)),
    ];
    await this.#setCreated({ networkSecurityGroup: name }, signal);
    const nsg = await this.#call(
      'networkSecurityGroups.createOrUpdate',
      (k) => k.network.networkSecurityGroups.createOrUpdate(c.resourceGroup, name, { location: c.location, tags: this.#tags(), securityRules: rules }, { abortSignal: signal }),
      signal,
    );
    return nsg.id!;
  }

  async #prepareSubnet(signal: AbortSignal | undefined): Promise<string> {
    const c = this.#config;
    const opts = { abortSignal: signal };
    const vnet = await this.#optional(this.#call('virtualNetworks.get', (k) => k.network.virtualNetworks.get(c.vnetResourceGroup, c.vnet, opts), signal));
    if (!vnet) {
      await this.#setCreated({ virtualNetwork: c.vnet }, signal);
      const made = await this.#call(
        'virtualNetworks.createOrUpdate',
        (k) =>
          k.network.virtualNetworks.createOrUpdate(
            c.vnetResourceGroup,
            c.vnet,
            { location: c.location, tags: this.#tags(), addressSpace: { addressPrefixes: [c.subnetPrefix] }, subnets: [{ name: c.subnet, addressPrefix: c.subnetPrefix }] },
            opts,
          ),
        signal,
      );
      const subnet = made.subnets?.find((s) => s.name === c.subnet);
      return subnet?.id ?? `${made.id}/subnets/${c.subnet}`;
    }
    const subnet = await this.#optional(this.#call('subnets.get', (k) => k.network.subnets.get(c.vnetResourceGroup, c.vnet, c.subnet, opts), signal));
    if (subnet?.id) return subnet.id;
    await this.#setCreated({ subnet: c.subnet }, signal);
    const made = await this.#call('subnets.createOrUpdate', (k) => k.network.subnets.createOrUpdate(c.vnetResourceGroup, c.vnet, c.subnet, { addressPrefix: c.subnetPrefix }, opts), signal);
    return made.id!;
  }

  /** A Standard SKU static address: Basic SKU public IPs are retired, and Standard ones are always static. */
  async #preparePublicIp(signal: AbortSignal | undefined): Promise<string | undefined> {
    const c = this.#config;
    if (c.noPublicIp) return undefined;
    const name = `${c.vmName}-ip`;
    await this.#setCreated({ publicIp: name }, signal);
    const ip = await this.#call(
      'publicIPAddresses.createOrUpdate',
      (k) =>
        k.network.publicIPAddresses.createOrUpdate(
          c.resourceGroup,
          name,
          {
            location: c.location,
            tags: this.#tags(),
            sku: { name: 'Standard' },
            publicIPAllocationMethod: 'Static',
            publicIPAddressVersion: 'IPv4',
            ...(c.dnsLabel ? { dnsSettings: { domainNameLabel: c.dnsLabel } } : {}),
          },
          { abortSignal: signal },
        ),
      signal,
    );
    return ip.id!;
  }

  async #prepareNic(nsgId: string, subnetId: string, publicIpId: string | undefined, signal: AbortSignal | undefined): Promise<string> {
    const c = this.#config;
    const name = `${c.vmName}-nic`;
    await this.#setCreated({ networkInterface: name }, signal);
    const nic = await this.#call(
      'networkInterfaces.createOrUpdate',
      (k) =>
        k.network.networkInterfaces.createOrUpdate(
          c.resourceGroup,
          name,
          {
            location: c.location,
            tags: this.#tags(),
            networkSecurityGroup: { id: nsgId },
            ipConfigurations: [
              {
                name: 'ipconfig1',
                subnet: { id: subnetId },
                ...(publicIpId ? { publicIPAddress: { id: publicIpId } } : {}),
                ...(c.privateIpAddress ? { privateIPAllocationMethod: 'Static' as const, privateIPAddress: c.privateIpAddress } : { privateIPAllocationMethod: 'Dynamic' as const }),
              },
            ],
          },
          { abortSignal: signal },
        ),
      signal,
    );
    return nic.id!;
  }

  async #createVm(key: SshKeyPair, nicId: string, signal: AbortSignal | undefined): Promise<void> {
    const c = this.#config;
    const [publisher, offer, sku, version] = c.image.split(':');
    const imageReference = c.image.startsWith('/subscriptions/') ? { id: c.image } : { publisher, offer, sku, version };
    const customData = c.customDataFile ? await this.#readCustomData(c.customDataFile) : undefined;
    const osDisk = `${c.vmName}-osdisk`;
    await this.#setCreated({ virtualMachine: c.vmName, osDisk }, signal);
    await this.#provisionFailureCause(this.#call(
      'virtualMachines.createOrUpdate',
      (k) =>
        k.compute.virtualMachines.createOrUpdate(
          c.resourceGroup,
          c.vmName,
          {
            location: c.location,
            tags: this.#tags(),
            hardwareProfile: { vmSize: c.size },
            storageProfile: {
              imageReference,
              osDisk: {
                name: osDisk,
                createOption: 'FromImage',
                deleteOption: 'Delete',
                managedDisk: { storageAccountType: c.storageType },
                ...(c.diskSize ? { diskSizeGB: c.diskSize } : {}),
              },
            },
            osProfile: {
              computerName: c.vmName,
              adminUsername: c.sshUser,
              ...(customData ? { customData } : {}),
              linuxConfiguration: {
                disablePasswordAuthentication: true,
                ssh: { publicKeys: [{ path: `/home/${c.sshUser}/.ssh/authorized_keys`, keyData: key.publicKey }] },
              },
            },
            networkProfile: { networkInterfaces: [{ id: nicId, primary: true }] },
          },
          { abortSignal: signal },
        ),
      signal,
    ), signal);
    this.#context.logger.info('VM created', { vm: c.vmName, resourceGroup: c.resourceGroup });
  }

  /**
   * A failed long-running operation reports only text; for a VM the instance view names the
   * cause (`ProvisioningState/failed/AllocationFailed`), which becomes the error's ARM code.
   */
  async #provisionFailureCause(creating: Promise<unknown>, signal: AbortSignal | undefined): Promise<void> {
    try {
      await creating;
    } catch (error) {
      const codes = await this.#statuses(signal).catch(() => []);
      const cause = codes.map((c) => /^ProvisioningState\/failed\/(.+)$/i.exec(c)?.[1]).find((c) => c !== undefined);
      if (!cause) throw error;
      throw new AzureDriverError(`VM ${this.#config.vmName} failed to provision: ${cause}`, { code: AzureErrorCode.Api, kind: armErrorKind(cause, undefined), armCode: cause, cause: error });
    }
  }

  async #readCustomData(path: string): Promise<string> {
    try {
      return (await readFile(path)).toString('base64');
    } catch (cause) {
      throw invalidOption(`cannot read --azure-custom-data file ${path}`, { cause });
    }
  }

  #tags(): Record<string, string> {
    return { [berthTag]: this.#context.machineName };
  }
}
