import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  CreateSecurityGroupCommandOutput,
  DescribeAccountAttributesCommandOutput,
  DescribeImagesCommandOutput,
  DescribeInstancesCommandOutput,
  DescribeSecurityGroupsCommandOutput,
  DescribeSubnetsCommandOutput,
  EC2Client,
  Instance,
  RunInstancesCommandOutput,
} from '@aws-sdk/client-ec2';
import { ErrorKind, describeError, throwIfAborted } from '@berth/errors';
import {
  DriverError,
  DriverErrorCode,
  MachineState,
  SshKeyPair,
  invalidOption,
  sshKeyFileName,
  type Driver,
  type DriverCallOptions,
  type DriverConfig,
  type DriverContext,
} from '@berth/machine';
import { AwsDriverError, AwsErrorCode, ec2ErrorCode, wrapEc2Error } from './aws-error.js';
import { defaultAmiNamePattern, type AwsDriverConfig } from './flags.js';

type Ec2Sdk = typeof import('@aws-sdk/client-ec2');

/** The account that publishes Ubuntu's official AMIs. */
const canonicalOwner = '099720109477';
/** The tag on everything the driver makes (value: the machine that made it). */
const berthTag = 'berth-machine';
/** The engine's TLS port, opened with SSH in the groups this driver manages. */
const enginePort = 2376;

/** Options of `AwsDriver`: the host's context and its saved (or freshly parsed) config. */
export interface AwsDriverOptions {
  readonly context: DriverContext;
  readonly config: AwsDriverConfig;
}

/** EC2 instance states as docker-machine maps them. */
function machineStateOf(name: string | undefined): MachineState {
  switch (name) {
    case 'pending':
      return MachineState.Starting;
    case 'running':
      return MachineState.Running;
    case 'stopping':
    case 'shutting-down':
      return MachineState.Stopping;
    case 'stopped':
      return MachineState.Stopped;
    case 'terminated':
      return MachineState.Error;
    default:
      return MachineState.None;
  }
}

/**
 * A host on Amazon EC2. `create` imports a key pair, finds or makes the security groups, runs
 * the instance and waits until it runs, saving each resource it made into the host's config as
 * it goes; a failed `create` and `rm` remove exactly those (never a reused group or key pair).
 */
export class AwsDriver implements Driver {
  readonly driverName = 'aws';
  readonly #context: DriverContext;
  #config: AwsDriverConfig;
  #client: Promise<{ sdk: Ec2Sdk; client: EC2Client }> | undefined;

  constructor(options: AwsDriverOptions) {
    if (!options?.context || !options.config) {
      throw new DriverError('AwsDriver needs a context and a config', { code: DriverErrorCode.InvalidOption, kind: ErrorKind.InvalidArgument });
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
    return this.#config.sshPort;
  }

  async sshHostname(options: DriverCallOptions = {}): Promise<string> {
    return this.ip(options);
  }

  async ip(options: DriverCallOptions = {}): Promise<string> {
    if (this.#config.instanceId) {
      const instance = await this.#describe(options.signal);
      this.#rememberAddresses(instance);
    }
    const address = this.#config.usePrivateAddress ? this.#config.privateIpAddress : this.#config.ipAddress;
    if (!address) {
      throw new DriverError(`instance ${this.#config.instanceId ?? '(none)'} has no ${this.#config.usePrivateAddress ? 'private' : 'public'} address (is it running?)`, {
        code: 'ERR_AWS_NO_ADDRESS',
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
    if (this.#config.spot && this.#config.spotPrice === undefined) {
      this.#context.logger.info('spot instance without --aws-spot-price: the price is capped at the on-demand price');
    }
    // One call that needs valid credentials and tells the default VPC.
    await this.#resolveNetwork(signal);
    await this.#resolveImage(signal);
    if (this.#config.existingKeyPair) {
      await this.#send('DescribeKeyPairs', (sdk) => new sdk.DescribeKeyPairsCommand({ KeyNames: [this.#config.keyName] }), signal);
    }
  }

  async create(options: DriverCallOptions = {}): Promise<void> {
    const { signal } = options;
    try {
      await this.#resolveNetwork(signal);
      const imageId = await this.#resolveImage(signal);
      await this.#prepareKeyPair(signal);
      const groupIds = await this.#prepareSecurityGroups(signal);
      this.#config = { ...this.#config, securityGroupIds: groupIds };
      await this.#runInstance(imageId, groupIds, signal);
      const instance = await this.#waitFor(['running'], signal);
      this.#rememberAddresses(instance);
      await this.#save(signal);
    } catch (error) {
      this.#context.logger.warn('create failed, removing what was made', { error: describeError(error) });
      try {
        // Cleanup must run even when the create was canceled.
        await this.remove({});
      } catch (cleanup) {
        throw new AwsDriverError(`create failed (${describeError(error)}) and cleanup failed too: ${describeError(cleanup)}; run rm again`, {
          code: (error as { code?: string }).code ?? AwsErrorCode.Api,
          kind: ErrorKind.Internal,
          cause: error,
        });
      }
      throw error;
    }
  }

  async remove(options: DriverCallOptions = {}): Promise<void> {
    const { signal } = options;
    if (this.#config.spotRequestId) {
      await this.#ignoring(['InvalidSpotInstanceRequestID.NotFound'], () =>
        this.#send('CancelSpotInstanceRequests', (sdk) => new sdk.CancelSpotInstanceRequestsCommand({ SpotInstanceRequestIds: [this.#config.spotRequestId!] }), signal),
      );
      this.#config = { ...this.#config, spotRequestId: undefined };
      await this.#save(signal);
    }
    // A create that crashed after RunInstances but before saving the ID is found by its token.
    if (!this.#config.instanceId && this.#config.clientToken) {
      const found = await this.#send<DescribeInstancesCommandOutput>(
        'DescribeInstances',
        (sdk) => new sdk.DescribeInstancesCommand({ Filters: [{ Name: 'client-token', Values: [this.#config.clientToken!] }] }),
        signal,
      );
      const instance = found.Reservations?.[0]?.Instances?.[0];
      if (instance?.InstanceId) this.#config = { ...this.#config, instanceId: instance.InstanceId };
    }
    if (this.#config.instanceId) {
      const gone = await this.#ignoring(['InvalidInstanceID.NotFound'], () =>
        this.#send('TerminateInstances', (sdk) => new sdk.TerminateInstancesCommand({ InstanceIds: [this.#config.instanceId!] }), signal),
      );
      // A security group cannot be deleted while an instance that is still shutting down uses it.
      if (gone !== undefined && this.#groupsToRemove().length > 0) await this.#waitFor(['terminated'], signal, true);
      this.#config = { ...this.#config, instanceId: undefined, clientToken: undefined, ipAddress: undefined, privateIpAddress: undefined };
      await this.#save(signal);
    }
    for (const groupId of this.#groupsToRemove()) {
      if (await this.#groupIsOurs(groupId, signal)) {
        const users = await this.#groupUsers(groupId, signal);
        if (users.length === 0) await this.#deleteSecurityGroup(groupId, signal);
        else this.#context.logger.info('security group is used by other instances, leaving it', { groupId, instances: users.join(',') });
      }
      this.#config = {
        ...this.#config,
        securityGroupIds: (this.#config.securityGroupIds ?? []).filter((g) => g !== groupId),
        created: { ...this.#config.created, securityGroupIds: this.#config.created.securityGroupIds.filter((g) => g !== groupId) },
      };
      await this.#save(signal);
    }
    if (this.#config.created.keyPair) {
      await this.#send('DeleteKeyPair', (sdk) => new sdk.DeleteKeyPairCommand({ KeyName: this.#config.created.keyPair! }), signal);
      this.#config = { ...this.#config, created: { ...this.#config.created, keyPair: undefined } };
      await this.#save(signal);
    }
  }

  async start(options: DriverCallOptions = {}): Promise<void> {
    await this.#send('StartInstances', (sdk) => new sdk.StartInstancesCommand({ InstanceIds: [this.#instanceId()] }), options.signal);
    await this.#settle(['running'], options.signal);
  }

  async stop(options: DriverCallOptions = {}): Promise<void> {
    await this.#send('StopInstances', (sdk) => new sdk.StopInstancesCommand({ InstanceIds: [this.#instanceId()] }), options.signal);
    await this.#settle(['stopped'], options.signal);
  }

  async kill(options: DriverCallOptions = {}): Promise<void> {
    await this.#send('StopInstances', (sdk) => new sdk.StopInstancesCommand({ InstanceIds: [this.#instanceId()], Force: true }), options.signal);
    await this.#settle(['stopped'], options.signal);
  }

  async restart(options: DriverCallOptions = {}): Promise<void> {
    await this.#send('RebootInstances', (sdk) => new sdk.RebootInstancesCommand({ InstanceIds: [this.#instanceId()] }), options.signal);
    await this.#settle(['running'], options.signal);
  }

  async state(options: DriverCallOptions = {}): Promise<MachineState> {
    if (!this.#config.instanceId) return MachineState.None;
    return machineStateOf((await this.#describe(options.signal)).State?.Name);
  }

  async #save(signal: AbortSignal | undefined): Promise<void> {
    await this.#context.saveConfig(this.#config, signal ? { signal } : {});
  }

  #instanceId(): string {
    if (!this.#config.instanceId) {
      throw new DriverError(`host ${this.#context.machineName} has no EC2 instance`, { code: DriverErrorCode.HostGone, kind: ErrorKind.NotFound });
    }
    return this.#config.instanceId;
  }

  async #sdk(): Promise<{ sdk: Ec2Sdk; client: EC2Client }> {
    this.#client ??= import('@aws-sdk/client-ec2').then((sdk) => {
      const c = this.#config;
      const client = new sdk.EC2Client({
        region: c.region,
        maxAttempts: c.retries < 0 ? 1 : c.retries + 1,
        ...(c.endpoint ? { endpoint: c.endpoint } : {}),
        ...(c.profile ? { profile: c.profile } : {}),
        ...(c.accessKey && c.secretKey
          ? { credentials: { accessKeyId: c.accessKey, secretAccessKey: c.secretKey, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) } }
          : {}),
      });
      return { sdk, client };
    });
    return this.#client;
  }

  async #send<T = unknown>(action: string, command: (sdk: Ec2Sdk) => unknown, signal: AbortSignal | undefined): Promise<T> {
    throwIfAborted(signal);
    const { sdk, client } = await this.#sdk();
    try {
      return (await client.send(command(sdk) as never, signal ? { abortSignal: signal } : {})) as T;
    } catch (error) {
      throwIfAborted(signal);
      throw wrapEc2Error(action, error);
    }
  }

  // Runs `call`, treating the listed EC2 error codes as "already gone" (returns undefined then).
  async #ignoring<T>(codes: readonly string[], call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (error) {
      if (codes.includes(ec2ErrorCode(error) ?? '')) return undefined;
      throw error;
    }
  }

  async #describe(signal: AbortSignal | undefined): Promise<Instance> {
    const id = this.#instanceId();
    let answer: DescribeInstancesCommandOutput;
    try {
      answer = await this.#send('DescribeInstances', (sdk) => new sdk.DescribeInstancesCommand({ InstanceIds: [id] }), signal);
    } catch (error) {
      if (ec2ErrorCode(error) === 'InvalidInstanceID.NotFound') {
        throw new DriverError(`EC2 instance ${id} of host ${this.#context.machineName} does not exist`, { code: DriverErrorCode.HostGone, kind: ErrorKind.NotFound, cause: error });
      }
      throw error;
    }
    const instance = answer.Reservations?.[0]?.Instances?.[0];
    if (!instance) throw new DriverError(`EC2 instance ${id} does not exist`, { code: DriverErrorCode.HostGone, kind: ErrorKind.NotFound });
    return instance;
  }

  #rememberAddresses(instance: Instance): void {
    this.#config = { ...this.#config, ipAddress: instance.PublicIpAddress, privateIpAddress: instance.PrivateIpAddress };
  }

  // Waits for a state after start/stop/restart, then saves the addresses: a public IP changes across a stop.
  async #settle(states: readonly string[], signal: AbortSignal | undefined): Promise<void> {
    const instance = await this.#waitFor(states, signal);
    this.#rememberAddresses(instance);
    await this.#save(signal);
  }

  /**
   * Polls DescribeInstances until the instance is in one of `states`, backing off from a quarter
   * second to five seconds, for at most `--aws-wait-timeout`. With `goneIsDone`, a missing instance counts
   * as terminated.
   */
  async #waitFor(states: readonly string[], signal: AbortSignal | undefined, goneIsDone = false): Promise<Instance> {
    const deadline = Date.now() + this.#config.waitTimeoutSeconds * 1000;
    let delay = 250;
    let last: string | undefined;
    for (;;) {
      let instance: Instance;
      try {
        instance = await this.#describe(signal);
      } catch (error) {
        if (goneIsDone && error instanceof DriverError && error.code === DriverErrorCode.HostGone) return {};
        throw error;
      }
      last = instance.State?.Name;
      if (last && states.includes(last)) return instance;
      if (last === 'terminated') {
        throw new DriverError(`EC2 instance ${this.#config.instanceId} was terminated (${instance.StateReason?.Message ?? 'no reason given'})`, {
          code: DriverErrorCode.HostGone,
          kind: ErrorKind.NotFound,
        });
      }
      if (Date.now() + delay > deadline) {
        throw new DriverError(`EC2 instance ${this.#config.instanceId} did not become ${states.join(' or ')} within ${this.#config.waitTimeoutSeconds}s (it is ${last ?? 'unknown'})`, {
          code: DriverErrorCode.StateTimeout,
          kind: ErrorKind.Timeout,
        });
      }
      await sleep(delay, undefined, signal ? { signal } : {}).catch(() => throwIfAborted(signal));
      delay = Math.min(delay * 1.5, 5000);
    }
  }

  async #resolveNetwork(signal: AbortSignal | undefined): Promise<void> {
    let vpcId = this.#config.vpcId;
    if (!vpcId) {
      const answer = await this.#send<DescribeAccountAttributesCommandOutput>(
        'DescribeAccountAttributes',
        (sdk) => new sdk.DescribeAccountAttributesCommand({ AttributeNames: ['default-vpc'] }),
        signal,
      );
      const value = answer.AccountAttributes?.[0]?.AttributeValues?.[0]?.AttributeValue;
      if (!value || value === 'none') {
        throw new AwsDriverError(`region ${this.#config.region} has no default VPC: give --aws-vpc-id`, { code: AwsErrorCode.NoNetwork, kind: ErrorKind.FailedPrecondition });
      }
      vpcId = value;
    }
    let subnetId = this.#config.subnetId;
    if (!subnetId) {
      const zone = `${this.#config.region}${this.#config.zone}`;
      const answer = await this.#send<DescribeSubnetsCommandOutput>(
        'DescribeSubnets',
        (sdk) => new sdk.DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId!] }, { Name: 'availability-zone', Values: [zone] }] }),
        signal,
      );
      const subnets = answer.Subnets ?? [];
      const subnet = subnets.find((s) => s.DefaultForAz) ?? subnets[0];
      if (!subnet?.SubnetId) {
        throw new AwsDriverError(`VPC ${vpcId} has no subnet in zone ${zone}: give --aws-subnet-id or another --aws-zone`, { code: AwsErrorCode.NoNetwork, kind: ErrorKind.FailedPrecondition });
      }
      subnetId = subnet.SubnetId;
    }
    this.#config = { ...this.#config, vpcId, subnetId };
  }

  /** The AMI to launch: the flag's, or the newest Ubuntu 24.04 LTS amd64 AMI Canonical publishes in the region. */
  async #resolveImage(signal: AbortSignal | undefined): Promise<string> {
    const given = this.#config.ami;
    const answer = await this.#send<DescribeImagesCommandOutput>(
      'DescribeImages',
      (sdk) =>
        given
          ? new sdk.DescribeImagesCommand({ ImageIds: [given] })
          : new sdk.DescribeImagesCommand({
              Owners: [canonicalOwner],
              Filters: [
                { Name: 'name', Values: [defaultAmiNamePattern] },
                { Name: 'state', Values: ['available'] },
                { Name: 'architecture', Values: ['x86_64'] },
              ],
            }),
      signal,
    );
    const images = [...(answer.Images ?? [])].sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''));
    const image = images[0];
    if (!image?.ImageId) {
      throw new AwsDriverError(given ? `AMI ${given} does not exist in ${this.#config.region}` : `no Ubuntu 24.04 AMI from Canonical found in ${this.#config.region}: give --aws-ami`, {
        code: AwsErrorCode.NoImage,
        kind: ErrorKind.NotFound,
      });
    }
    this.#config = { ...this.#config, ami: image.ImageId, deviceName: this.#config.deviceName ?? image.RootDeviceName ?? '/dev/sda1' };
    return image.ImageId;
  }

  async #prepareKeyPair(signal: AbortSignal | undefined): Promise<void> {
    const key = this.#config.sshKeySource ? await SshKeyPair.read(this.#config.sshKeySource, signal ? { signal } : {}) : await SshKeyPair.generate(signal ? { signal } : {});
    const sshKeyFile = sshKeyFileName(key.type);
    await key.write(join(this.#context.machineDir, sshKeyFile));
    this.#config = { ...this.#config, sshKeyFile };
    await this.#save(signal);
    if (this.#config.existingKeyPair) return;
    await this.#send(
      'ImportKeyPair',
      (sdk) =>
        new sdk.ImportKeyPairCommand({
          KeyName: this.#config.keyName,
          PublicKeyMaterial: Buffer.from(key.publicKey),
          TagSpecifications: [{ ResourceType: 'key-pair', Tags: this.#tags() }],
        }),
      signal,
    );
    this.#config = { ...this.#config, created: { ...this.#config.created, keyPair: this.#config.keyName } };
    await this.#save(signal);
  }

  #tags(): { Key: string; Value: string }[] {
    return [{ Key: 'Name', Value: this.#context.machineName }, { Key: berthTag, Value: this.#context.machineName }, ...this.#config.tags.map((t) => ({ Key: t.key, Value: t.value }))];
  }

  /** Finds each named group in the VPC or makes it, then opens SSH, 2376 and `--aws-open-port` on it. */
  async #prepareSecurityGroups(signal: AbortSignal | undefined): Promise<string[]> {
    const ids: string[] = [];
    for (const name of this.#config.securityGroups) {
      const found = await this.#send<DescribeSecurityGroupsCommandOutput>(
        'DescribeSecurityGroups',
        (sdk) => new sdk.DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [name] }, { Name: 'vpc-id', Values: [this.#config.vpcId!] }] }),
        signal,
      );
      let group = found.SecurityGroups?.[0];
      let made = false;
      if (!group) {
        const answer = await this.#send<CreateSecurityGroupCommandOutput>(
          'CreateSecurityGroup',
          (sdk) =>
            new sdk.CreateSecurityGroupCommand({
              GroupName: name,
              Description: `Berth machine ${this.#context.machineName}`,
              VpcId: this.#config.vpcId,
              TagSpecifications: [{ ResourceType: 'security-group', Tags: this.#tags() }],
            }),
          signal,
        );
        group = { GroupId: answer.GroupId, GroupName: name, IpPermissions: [] };
        made = true;
        this.#config = { ...this.#config, created: { ...this.#config.created, securityGroupIds: [...this.#config.created.securityGroupIds, answer.GroupId!] } };
        await this.#save(signal);
      }
      ids.push(group.GroupId!);
      if (this.#config.securityGroupReadonly && !made) continue;
      const wanted = [
        { port: this.#config.sshPort, protocol: 'tcp' },
        { port: enginePort, protocol: 'tcp' },
        ...this.#config.openPorts,
      ];
      const open = (port: number, protocol: string) =>
        (group!.IpPermissions ?? []).some(
          (p) => p.IpProtocol === protocol && (p.FromPort ?? 0) <= port && (p.ToPort ?? 0) >= port && (p.IpRanges ?? []).some((r) => r.CidrIp === '0.0.0.0/0'),
        );
      const missing = wanted.filter((w, i) => !open(w.port, w.protocol) && wanted.findIndex((o) => o.port === w.port && o.protocol === w.protocol) === i);
      if (missing.length === 0) continue;
      await this.#send(
        'AuthorizeSecurityGroupIngress',
        (sdk) =>
          new sdk.AuthorizeSecurityGroupIngressCommand({
            GroupId: group!.GroupId,
            IpPermissions: missing.map((m) => ({ IpProtocol: m.protocol, FromPort: m.port, ToPort: m.port, IpRanges: [{ CidrIp: '0.0.0.0/0' }] })),
          }),
        signal,
      );
    }
    return ids;
  }

  async #runInstance(imageId: string, groupIds: readonly string[], signal: AbortSignal | undefined): Promise<void> {
    const c = this.#config;
    const userData = c.userDataFile ? await this.#readUserData(c.userDataFile, signal) : undefined;
    const clientToken = c.clientToken ?? randomUUID();
    this.#config = { ...this.#config, clientToken };
    await this.#save(signal);
    const answer = await this.#send<RunInstancesCommandOutput>(
      'RunInstances',
      (sdk) =>
        new sdk.RunInstancesCommand({
          ClientToken: clientToken,
          ImageId: imageId,
          MinCount: 1,
          MaxCount: 1,
          InstanceType: c.instanceType as never,
          KeyName: c.keyName,
          Placement: { AvailabilityZone: `${c.region}${c.zone}` },
          NetworkInterfaces: [{ DeviceIndex: 0, SubnetId: c.subnetId, Groups: [...groupIds], AssociatePublicIpAddress: !c.privateAddressOnly, DeleteOnTermination: true }],
          BlockDeviceMappings: [{ DeviceName: c.deviceName ?? '/dev/sda1', Ebs: { VolumeSize: c.rootSize, VolumeType: c.volumeType as never, DeleteOnTermination: true } }],
          TagSpecifications: [
            { ResourceType: 'instance', Tags: this.#tags() },
            { ResourceType: 'volume', Tags: this.#tags() },
          ],
          MetadataOptions: { HttpTokens: c.metadataToken as never, HttpEndpoint: 'enabled' },
          Monitoring: { Enabled: c.monitoring },
          EbsOptimized: c.ebsOptimized,
          ...(c.iamInstanceProfile ? { IamInstanceProfile: c.iamInstanceProfile.startsWith('arn:') ? { Arn: c.iamInstanceProfile } : { Name: c.iamInstanceProfile } } : {}),
          ...(userData ? { UserData: userData } : {}),
          // One-time spot through RunInstances: EC2 makes the spot request; rm cancels it.
          ...(c.spot
            ? { InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time', ...(c.spotPrice ? { MaxPrice: c.spotPrice } : {}) } } }
            : {}),
        }),
      signal,
    );
    const instance = answer.Instances?.[0];
    if (!instance?.InstanceId) throw new AwsDriverError('EC2 RunInstances answered without an instance', { code: AwsErrorCode.Api, kind: ErrorKind.Internal });
    this.#config = { ...this.#config, instanceId: instance.InstanceId, spotRequestId: instance.SpotInstanceRequestId };
    await this.#save(signal);
    this.#context.logger.info('instance launched', { instanceId: instance.InstanceId, imageId, spotRequestId: instance.SpotInstanceRequestId });
  }

  async #readUserData(path: string, signal: AbortSignal | undefined): Promise<string> {
    try {
      return (await readFile(path, signal ? { signal } : {})).toString('base64');
    } catch (cause) {
      throw invalidOption(`cannot read --aws-userdata file ${path}`, { cause });
    }
  }

  /** The groups `rm` considers: the ones this host made, and the others it used, which Berth may have made. */
  #groupsToRemove(): string[] {
    return [...new Set([...this.#config.created.securityGroupIds, ...(this.#config.securityGroupIds ?? [])])];
  }

  /**
   * True for a group this host made, or one another Berth host made (tagged `berth-machine`):
   * a shared group goes with the last host using it. Groups Berth did not make are never deleted.
   */
  async #groupIsOurs(groupId: string, signal: AbortSignal | undefined): Promise<boolean> {
    if (this.#config.created.securityGroupIds.includes(groupId)) return true;
    const found = await this.#ignoring(['InvalidGroup.NotFound'], () =>
      this.#send<DescribeSecurityGroupsCommandOutput>('DescribeSecurityGroups', (sdk) => new sdk.DescribeSecurityGroupsCommand({ GroupIds: [groupId] }), signal),
    );
    return (found?.SecurityGroups?.[0]?.Tags ?? []).some((t) => t.Key === berthTag);
  }

  /** Instances other than gone ones that use the group. */
  async #groupUsers(groupId: string, signal: AbortSignal | undefined): Promise<string[]> {
    const found = await this.#send<DescribeInstancesCommandOutput>(
      'DescribeInstances',
      (sdk) =>
        new sdk.DescribeInstancesCommand({
          Filters: [
            { Name: 'instance.group-id', Values: [groupId] },
            { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
          ],
        }),
      signal,
    );
    return (found.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId ?? '?');
  }

  // Retries while EC2 still counts a dependent (a terminating instance, a network interface being released).
  async #deleteSecurityGroup(groupId: string, signal: AbortSignal | undefined): Promise<void> {
    const deadline = Date.now() + this.#config.waitTimeoutSeconds * 1000;
    for (let delay = 1000; ; delay = Math.min(delay * 2, 10_000)) {
      try {
        await this.#ignoring(['InvalidGroup.NotFound'], () => this.#send('DeleteSecurityGroup', (sdk) => new sdk.DeleteSecurityGroupCommand({ GroupId: groupId }), signal));
        return;
      } catch (error) {
        if (ec2ErrorCode(error) !== 'DependencyViolation' || Date.now() + delay > deadline) throw error;
        this.#context.logger.debug('security group still in use, retrying', { groupId });
        await sleep(delay, undefined, signal ? { signal } : {}).catch(() => throwIfAborted(signal));
      }
    }
  }
}
