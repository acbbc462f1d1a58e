import { randomUUID } from 'node:crypto';
import { FaultPlan, listen, randomHex, type FakeRequest, type FakeResponse, type Listening } from './fake-server.js';

/*
 * A fake Amazon EC2 endpoint speaking the EC2 Query API the real @aws-sdk/client-ec2 uses:
 * form-encoded `Action=...&Version=2016-11-15` POSTs answered with namespaced XML, errors as
 * `<Response><Errors><Error>`. It keeps resource state (instances, security groups, key pairs,
 * volumes, spot requests) and moves instances through EC2's states one DescribeInstances
 * call at a time, so a driver has to poll as it would against AWS.
 */

const namespace = 'http://ec2.amazonaws.com/doc/2016-11-15/';

/** A value of the nested parameter tree `Filter.1.Value.2=x` parses into. */
type ParamTree = { [key: string]: ParamTree | string };

/** Parses form parameters into a tree: `A.1.B=x` becomes `{A: {1: {B: 'x'}}}`. */
function parseParams(body: string): ParamTree {
  const root: ParamTree = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const parts = key.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      if (typeof next === 'object') node = next;
      else node = node[part] = {};
    }
    node[parts[parts.length - 1]!] = value;
  }
  return root;
}

function str(tree: ParamTree | string | undefined, ...path: string[]): string | undefined {
  let node: ParamTree | string | undefined = tree;
  for (const p of path) node = typeof node === 'object' ? node[p] : undefined;
  return typeof node === 'string' ? node : undefined;
}

function sub(tree: ParamTree | string | undefined, ...path: string[]): ParamTree | undefined {
  let node: ParamTree | string | undefined = tree;
  for (const p of path) node = typeof node === 'object' ? node[p] : undefined;
  return typeof node === 'object' ? node : undefined;
}

/** The members of a serialised list (`X.1`, `X.2`, ...) in index order. */
function list(tree: ParamTree | string | undefined): (ParamTree | string)[] {
  if (typeof tree !== 'object') return [];
  return Object.keys(tree)
    .filter((k) => /^\d+$/.test(k))
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => tree[k]!);
}

function strings(tree: ParamTree | string | undefined): string[] {
  return list(tree).filter((v): v is string => typeof v === 'string');
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** XML value: objects become child elements, arrays become `<item>` lists, as EC2 answers. */
type XmlValue = string | number | boolean | undefined | readonly XmlValue[] | { readonly [key: string]: XmlValue };

function toXml(value: XmlValue): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.map((v) => `<item>${toXml(v as XmlValue)}</item>`).join('');
  if (typeof value === 'object') {
    return Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `<${k}>${toXml(v)}</${k}>`)
      .join('');
  }
  return escapeXml(String(value));
}

/** An EC2 API error: its code (`InvalidInstanceID.NotFound`) and HTTP status. */
export class Ec2FakeError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status = 400) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** EC2's instance state names with their numeric codes. */
const stateCodes = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 } as const;
export type InstanceStateName = keyof typeof stateCodes;

export interface FakeTag {
  readonly key: string;
  readonly value: string;
}

export interface FakeInstance {
  readonly instanceId: string;
  readonly imageId: string;
  readonly instanceType: string;
  readonly keyName: string | undefined;
  readonly subnetId: string;
  readonly vpcId: string;
  readonly availabilityZone: string;
  readonly securityGroupIds: string[];
  readonly privateIpAddress: string;
  readonly publicIpAddress: string | undefined;
  readonly tags: FakeTag[];
  readonly userData: string | undefined;
  readonly iamInstanceProfile: string | undefined;
  readonly spotInstanceRequestId: string | undefined;
  readonly metadataHttpTokens: string | undefined;
  readonly monitoring: boolean;
  readonly ebsOptimized: boolean;
  readonly rootVolumeId: string;
  readonly clientToken: string;
  state: InstanceStateName;
  /** DescribeInstances calls left before a transient state settles. */
  ticks: number;
  readonly launchedAt: string;
}

export interface FakeSecurityGroup {
  readonly groupId: string;
  readonly groupName: string;
  readonly description: string;
  readonly vpcId: string;
  readonly preexisting: boolean;
  readonly ingress: { protocol: string; fromPort: number; toPort: number; cidr: string }[];
  readonly tags: FakeTag[];
}

export interface FakeKeyPair {
  readonly keyName: string;
  readonly keyPairId: string;
  readonly publicKey: string;
  readonly preexisting: boolean;
}

export interface FakeVolume {
  readonly volumeId: string;
  readonly instanceId: string;
  readonly size: number;
  readonly volumeType: string;
  readonly deviceName: string;
  readonly deleteOnTermination: boolean;
}

export interface FakeSpotRequest {
  readonly spotInstanceRequestId: string;
  readonly instanceId: string;
  readonly maxPrice: string | undefined;
  state: 'open' | 'active' | 'closed' | 'cancelled';
}

export interface FakeImage {
  readonly imageId: string;
  readonly name: string;
  readonly ownerId: string;
  readonly creationDate: string;
  readonly architecture: string;
  readonly state: string;
}

export interface FakeSubnet {
  readonly subnetId: string;
  readonly vpcId: string;
  readonly availabilityZone: string;
  readonly defaultForAz: boolean;
  readonly cidrBlock: string;
}

export interface FakeEc2Options {
  /** The region the fake answers as (default `us-east-1`); requests signed for another region are refused. */
  readonly region?: string;
  /** The access key the fake accepts (default `AKIAFAKEFAKEFAKE`); other keys get AuthFailure. */
  readonly accessKeyId?: string;
  /** DescribeInstances calls a transient state (pending, stopping, shutting-down) lasts (default 1). */
  readonly transitionCalls?: number;
}

/** One API call as the fake received it. */
export interface Ec2Call {
  readonly action: string;
  readonly params: Readonly<Record<string, string>>;
}

/** The Canonical account that publishes Ubuntu AMIs. */
export const canonicalOwnerId = '099720109477';

/**
 * A fake EC2 region with a default VPC, a default subnet per zone (a, b, c) and a few Canonical
 * Ubuntu AMIs (two Noble builds, an older Jammy one and an arm64 one), so AMI lookup has to filter
 * and pick the newest.
 */
export class FakeEc2 {
  readonly region: string;
  readonly accessKeyId: string;
  readonly faults = new FaultPlan();
  readonly calls: Ec2Call[] = [];
  readonly instances = new Map<string, FakeInstance>();
  readonly securityGroups = new Map<string, FakeSecurityGroup>();
  readonly keyPairs = new Map<string, FakeKeyPair>();
  readonly volumes = new Map<string, FakeVolume>();
  readonly spotRequests = new Map<string, FakeSpotRequest>();
  readonly images: FakeImage[];
  readonly subnets: FakeSubnet[];
  readonly defaultVpcId = `vpc-${randomHex(17)}`;
  /** When set, new instances stay `pending` forever (an instance that never becomes running). */
  neverRunning = false;
  /** The public address given to new instances; tests point it at an SSH rig host. */
  publicAddress = '203.0.113.10';
  readonly #transitionCalls: number;
  #server: Listening | undefined;
  #nextIp = 10;

  private constructor(options: FakeEc2Options) {
    this.region = options.region ?? 'us-east-1';
    this.accessKeyId = options.accessKeyId ?? 'AKIAFAKEFAKEFAKE';
    this.#transitionCalls = options.transitionCalls ?? 1;
    this.subnets = ['a', 'b', 'c'].map((zone, i) => ({
      subnetId: `subnet-${randomHex(17)}`,
      vpcId: this.defaultVpcId,
      availabilityZone: `${this.region}${zone}`,
      defaultForAz: true,
      cidrBlock: `172.31.${i * 16}.0/20`,
    }));
    const image = (name: string, creationDate: string, architecture = 'x86_64'): FakeImage => ({
      imageId: `ami-${randomHex(17)}`,
      name,
      ownerId: canonicalOwnerId,
      creationDate,
      architecture,
      state: 'available',
    });
    this.images = [
      image('ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610', '2025-06-10T12:00:00.000Z'),
      image('ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20260115', '2026-01-15T12:00:00.000Z'),
      image('ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20260201', '2026-02-01T12:00:00.000Z', 'arm64'),
      image('ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20260301', '2026-03-01T12:00:00.000Z'),
    ];
  }

  /** Starts a fake on a free port of 127.0.0.1. */
  static async start(options: FakeEc2Options = {}): Promise<FakeEc2> {
    const fake = new FakeEc2(options);
    fake.#server = await listen((request) => fake.#handle(request));
    return fake;
  }

  /** The endpoint to give the SDK (`http://127.0.0.1:PORT`). */
  get url(): string {
    if (!this.#server) throw new Error('fake EC2 is not listening');
    return this.#server.url;
  }

  /** The newest Ubuntu 24.04 amd64 AMI the fake holds: what a driver's lookup should choose. */
  get newestNobleAmd64(): FakeImage {
    return this.images.find((i) => i.name.endsWith('amd64-server-20260115'))!;
  }

  /** A security group made outside the driver, which the driver must reuse and never delete. */
  seedSecurityGroup(groupName: string): FakeSecurityGroup {
    const group: FakeSecurityGroup = {
      groupId: `sg-${randomHex(17)}`,
      groupName,
      description: 'made by the test',
      vpcId: this.defaultVpcId,
      preexisting: true,
      ingress: [],
      tags: [],
    };
    this.securityGroups.set(group.groupId, group);
    return group;
  }

  /** A key pair made outside the driver, which the driver must never delete. */
  seedKeyPair(keyName: string, publicKey: string): FakeKeyPair {
    const pair: FakeKeyPair = { keyName, keyPairId: `key-${randomHex(17)}`, publicKey, preexisting: true };
    this.keyPairs.set(keyName, pair);
    return pair;
  }

  /**
   * What a driver made and did not remove: instances not terminated, volumes, security groups
   * and key pairs it created, spot requests still open or active. Seeded resources are left out.
   */
  leftovers(): string[] {
    return [
      ...[...this.instances.values()].filter((i) => i.state !== 'terminated').map((i) => `instance ${i.instanceId} (${i.state})`),
      ...[...this.volumes.values()].map((v) => `volume ${v.volumeId}`),
      ...[...this.securityGroups.values()].filter((g) => !g.preexisting).map((g) => `security group ${g.groupId} (${g.groupName})`),
      ...[...this.keyPairs.values()].filter((k) => !k.preexisting).map((k) => `key pair ${k.keyName}`),
      ...[...this.spotRequests.values()].filter((s) => s.state === 'open' || s.state === 'active').map((s) => `spot request ${s.spotInstanceRequestId}`),
    ];
  }

  /** The calls made of one action, in order. */
  callsOf(action: string): Ec2Call[] {
    return this.calls.filter((c) => c.action === action);
  }

  async close(): Promise<void> {
    await this.#server?.close();
  }

  async #handle(request: FakeRequest): Promise<FakeResponse> {
    const requestId = randomUUID();
    const flat = Object.fromEntries(new URLSearchParams(request.body));
    const action = flat['Action'] ?? '';
    this.calls.push({ action, params: flat });
    try {
      if (request.method !== 'POST') throw new Ec2FakeError('InvalidAction', `EC2 takes POST, not ${request.method}`);
      this.#checkSignature(request);
      const fault = this.faults.take(action);
      if (fault?.kind === 'throttle') throw new Ec2FakeError('RequestLimitExceeded', 'Request limit exceeded.', 503);
      if (fault?.kind === 'fail') throw new Ec2FakeError(fault.code ?? 'InternalError', `injected failure of ${action}`, fault.code ? 400 : 500);
      const result = this.#dispatch(action, parseParams(request.body));
      const body = `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${namespace}"><requestId>${requestId}</requestId>${toXml(result)}</${action}Response>`;
      return { status: 200, headers: { 'content-type': 'text/xml;charset=UTF-8' }, body };
    } catch (error) {
      if (!(error instanceof Ec2FakeError)) throw error;
      const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${escapeXml(error.code)}</Code><Message>${escapeXml(error.message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`;
      return { status: error.status, headers: { 'content-type': 'text/xml;charset=UTF-8' }, body };
    }
  }

  // SigV4: the credential scope names the access key and the region the SDK signed for.
  #checkSignature(request: FakeRequest): void {
    const auth = request.headers['authorization'] ?? '';
    const scope = /Credential=([^/]+)\/\d{8}\/([^/]+)\/ec2\/aws4_request/.exec(auth);
    if (!scope) throw new Ec2FakeError('AuthFailure', 'AWS was not able to validate the provided access credentials', 401);
    if (scope[1] !== this.accessKeyId) throw new Ec2FakeError('AuthFailure', `unknown access key ${scope[1]}`, 401);
    if (scope[2] !== this.region) throw new Ec2FakeError('AuthFailure', `signed for region ${scope[2]}, this is ${this.region}`, 401);
  }

  #dispatch(action: string, p: ParamTree): XmlValue {
    switch (action) {
      case 'DescribeAccountAttributes':
        return this.#describeAccountAttributes(p);
      case 'DescribeImages': {
        const ids = strings(p['ImageId']);
        const missing = ids.find((id) => !this.images.some((i) => i.imageId === id));
        if (missing) throw new Ec2FakeError('InvalidAMIID.NotFound', `The image id '[${missing}]' does not exist`);
        const images = this.#filter(this.images, p, imageFields).filter((i) => idMatches(i.imageId, ids) && this.#ownerMatches(i, p));
        return { imagesSet: images.map(imageXml) };
      }
      case 'DescribeSubnets':
        return { subnetSet: this.#filter(this.subnets, p, subnetFields).filter((s) => idMatches(s.subnetId, strings(p['SubnetId']))).map(subnetXml) };
      case 'DescribeSecurityGroups':
        return this.#describeSecurityGroups(p);
      case 'CreateSecurityGroup':
        return this.#createSecurityGroup(p);
      case 'AuthorizeSecurityGroupIngress':
        return this.#authorizeIngress(p);
      case 'DeleteSecurityGroup':
        return this.#deleteSecurityGroup(p);
      case 'ImportKeyPair':
        return this.#importKeyPair(p);
      case 'DescribeKeyPairs':
        return this.#describeKeyPairs(p);
      case 'DeleteKeyPair': {
        // EC2 answers success for a key pair that does not exist.
        const name = str(p, 'KeyName');
        if (name) this.keyPairs.delete(name);
        return { return: true };
      }
      case 'RunInstances':
        return this.#runInstances(p);
      case 'DescribeInstances':
        return this.#describeInstances(p);
      case 'StartInstances':
        return { instancesSet: this.#changeStates(p, 'start') };
      case 'StopInstances':
        return { instancesSet: this.#changeStates(p, 'stop') };
      case 'TerminateInstances':
        return { instancesSet: this.#changeStates(p, 'terminate') };
      case 'RebootInstances':
        for (const id of strings(p['InstanceId'])) this.#instance(id);
        return { return: true };
      case 'CreateTags':
        return this.#createTags(p);
      case 'DescribeSpotInstanceRequests':
        return {
          spotInstanceRequestSet: [...this.spotRequests.values()]
            .filter((s) => idMatches(s.spotInstanceRequestId, strings(p['SpotInstanceRequestId'])))
            .map((s) => ({ spotInstanceRequestId: s.spotInstanceRequestId, state: s.state, instanceId: s.instanceId, type: 'one-time' })),
        };
      case 'CancelSpotInstanceRequests':
        return {
          spotInstanceRequestSet: strings(p['SpotInstanceRequestId']).map((id) => {
            const request = this.spotRequests.get(id);
            if (!request) throw new Ec2FakeError('InvalidSpotInstanceRequestID.NotFound', `The spot instance request ID '${id}' does not exist`);
            if (request.state === 'open' || request.state === 'active') request.state = 'cancelled';
            return { spotInstanceRequestId: id, state: request.state };
          }),
        };
      default:
        throw new Ec2FakeError('InvalidAction', `The action ${action} is not valid for this web service.`);
    }
  }

  #describeAccountAttributes(p: ParamTree): XmlValue {
    const names = strings(p['AttributeName']);
    const all = [{ attributeName: 'default-vpc', attributeValueSet: [{ attributeValue: this.defaultVpcId }] }];
    return { accountAttributeSet: all.filter((a) => names.length === 0 || names.includes(a.attributeName)) };
  }

  #ownerMatches(image: FakeImage, p: ParamTree): boolean {
    const owners = strings(p['Owner']);
    return owners.length === 0 || owners.includes(image.ownerId);
  }

  #filter<T>(items: readonly T[], p: ParamTree, fields: Readonly<Record<string, (item: T) => string | readonly string[] | undefined>>): T[] {
    const filters = list(p['Filter']).map((f) => ({ name: str(f, 'Name') ?? '', values: strings(sub(f, 'Value')) }));
    for (const f of filters) {
      if (!fields[f.name] && !f.name.startsWith('tag:')) throw new Ec2FakeError('InvalidParameterValue', `The filter '${f.name}' is invalid`);
    }
    return items.filter((item) =>
      filters.every((f) => {
        const actual = f.name.startsWith('tag:') ? tagValue(item, f.name.slice(4)) : fields[f.name]!(item);
        const candidates = actual === undefined ? [] : typeof actual === 'string' ? [actual] : actual;
        return candidates.some((value) => f.values.some((pattern) => wildcard(pattern).test(value)));
      }),
    );
  }

  #describeSecurityGroups(p: ParamTree): XmlValue {
    const ids = strings(p['GroupId']);
    const names = strings(p['GroupName']);
    for (const id of ids) if (!this.securityGroups.has(id)) throw new Ec2FakeError('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
    const groups = this.#filter([...this.securityGroups.values()], p, groupFields).filter(
      (g) => idMatches(g.groupId, ids) && (names.length === 0 || names.includes(g.groupName)),
    );
    return {
      securityGroupInfo: groups.map((g) => ({
        ownerId: '123456789012',
        groupId: g.groupId,
        groupName: g.groupName,
        groupDescription: g.description,
        vpcId: g.vpcId,
        ipPermissions: g.ingress.map((r) => ({ ipProtocol: r.protocol, fromPort: r.fromPort, toPort: r.toPort, ipRanges: [{ cidrIp: r.cidr }] })),
        tagSet: g.tags.map(tagXml),
      })),
    };
  }

  #createSecurityGroup(p: ParamTree): XmlValue {
    const groupName = str(p, 'GroupName');
    const description = str(p, 'GroupDescription');
    if (!groupName || !description) throw new Ec2FakeError('MissingParameter', 'GroupName and GroupDescription are required');
    const vpcId = str(p, 'VpcId') ?? this.defaultVpcId;
    if (vpcId !== this.defaultVpcId) throw new Ec2FakeError('InvalidVpcID.NotFound', `The vpc ID '${vpcId}' does not exist`);
    if ([...this.securityGroups.values()].some((g) => g.groupName === groupName && g.vpcId === vpcId)) {
      throw new Ec2FakeError('InvalidGroup.Duplicate', `The security group '${groupName}' already exists for VPC '${vpcId}'`);
    }
    const group: FakeSecurityGroup = {
      groupId: `sg-${randomHex(17)}`,
      groupName,
      description,
      vpcId,
      preexisting: false,
      ingress: [],
      tags: tagsFor(p, 'security-group'),
    };
    this.securityGroups.set(group.groupId, group);
    return { return: true, groupId: group.groupId };
  }

  #authorizeIngress(p: ParamTree): XmlValue {
    const groupId = str(p, 'GroupId');
    const group = groupId ? this.securityGroups.get(groupId) : undefined;
    if (!group) throw new Ec2FakeError('InvalidGroup.NotFound', `The security group '${groupId}' does not exist`);
    for (const perm of list(p['IpPermissions'])) {
      const protocol = str(perm, 'IpProtocol') ?? 'tcp';
      const fromPort = Number(str(perm, 'FromPort'));
      const toPort = Number(str(perm, 'ToPort'));
      for (const range of list(sub(perm, 'IpRanges'))) {
        const cidr = str(range, 'CidrIp') ?? '';
        if (group.ingress.some((r) => r.protocol === protocol && r.fromPort === fromPort && r.toPort === toPort && r.cidr === cidr)) {
          throw new Ec2FakeError('InvalidPermission.Duplicate', `the specified rule "peer: ${cidr}, TCP, from port: ${fromPort}, to port: ${toPort}, ALLOW" already exists`);
        }
        group.ingress.push({ protocol, fromPort, toPort, cidr });
      }
    }
    return { return: true };
  }

  #deleteSecurityGroup(p: ParamTree): XmlValue {
    const groupId = str(p, 'GroupId');
    const group = groupId ? this.securityGroups.get(groupId) : undefined;
    if (!group || !groupId) throw new Ec2FakeError('InvalidGroup.NotFound', `The security group '${groupId}' does not exist`);
    const user = [...this.instances.values()].find((i) => i.state !== 'terminated' && i.securityGroupIds.includes(groupId));
    if (user) throw new Ec2FakeError('DependencyViolation', `resource ${groupId} has a dependent object`);
    this.securityGroups.delete(groupId);
    return { return: true, groupId };
  }

  #importKeyPair(p: ParamTree): XmlValue {
    const keyName = str(p, 'KeyName');
    const material = str(p, 'PublicKeyMaterial');
    if (!keyName || !material) throw new Ec2FakeError('MissingParameter', 'KeyName and PublicKeyMaterial are required');
    if (this.keyPairs.has(keyName)) throw new Ec2FakeError('InvalidKeyPair.Duplicate', `The keypair '${keyName}' already exists.`);
    const publicKey = Buffer.from(material, 'base64').toString('utf8');
    if (!/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) /.test(publicKey)) {
      throw new Ec2FakeError('InvalidKey.Format', 'Key is not in valid OpenSSH public key format');
    }
    const pair: FakeKeyPair = { keyName, keyPairId: `key-${randomHex(17)}`, publicKey, preexisting: false };
    this.keyPairs.set(keyName, pair);
    return { keyName, keyFingerprint: randomHex(32).replace(/(..)(?!$)/g, '$1:'), keyPairId: pair.keyPairId };
  }

  #describeKeyPairs(p: ParamTree): XmlValue {
    const names = strings(p['KeyName']);
    for (const name of names) {
      if (!this.keyPairs.has(name)) throw new Ec2FakeError('InvalidKeyPair.NotFound', `The key pair '${name}' does not exist`);
    }
    const pairs = [...this.keyPairs.values()].filter((k) => names.length === 0 || names.includes(k.keyName));
    return { keySet: pairs.map((k) => ({ keyPairId: k.keyPairId, keyName: k.keyName, keyType: k.publicKey.startsWith('ssh-ed25519') ? 'ed25519' : 'rsa' })) };
  }

  #runInstances(p: ParamTree): XmlValue {
    const imageId = str(p, 'ImageId');
    if (!imageId || !this.images.some((i) => i.imageId === imageId)) throw new Ec2FakeError('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
    if (str(p, 'MinCount') !== '1' || str(p, 'MaxCount') !== '1') throw new Ec2FakeError('InvalidParameterValue', 'this fake launches one instance at a time');
    const keyName = str(p, 'KeyName');
    if (keyName && !this.keyPairs.has(keyName)) throw new Ec2FakeError('InvalidKeyPair.NotFound', `The key pair '${keyName}' does not exist`);
    const nic = sub(p, 'NetworkInterface', '1');
    const subnetId = str(nic, 'SubnetId') ?? str(p, 'SubnetId');
    const zone = str(p, 'Placement', 'AvailabilityZone');
    const subnet = subnetId ? this.subnets.find((s) => s.subnetId === subnetId) : this.subnets.find((s) => s.availabilityZone === zone) ?? this.subnets[0];
    if (!subnet) throw new Ec2FakeError('InvalidSubnetID.NotFound', `The subnet ID '${subnetId}' does not exist`);
    if (zone && zone !== subnet.availabilityZone) throw new Ec2FakeError('InvalidParameterValue', `subnet ${subnet.subnetId} is not in ${zone}`);
    const groupIds = [...strings(sub(nic, 'SecurityGroupId')), ...strings(p['SecurityGroupId'])];
    for (const id of groupIds) if (!this.securityGroups.has(id)) throw new Ec2FakeError('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
    const associatePublic = str(nic, 'AssociatePublicIpAddress');
    const root = list(p['BlockDeviceMapping'])[0];
    const volumeType = str(root, 'Ebs', 'VolumeType') ?? 'gp3';
    if (!['gp2', 'gp3', 'io1', 'io2', 'st1', 'sc1', 'standard'].includes(volumeType)) throw new Ec2FakeError('InvalidParameterValue', `Invalid volume type ${volumeType}`);
    const instanceId = `i-${randomHex(17)}`;
    const market = sub(p, 'InstanceMarketOptions');
    let spotInstanceRequestId: string | undefined;
    if (str(market, 'MarketType') === 'spot') {
      spotInstanceRequestId = `sir-${randomHex(8)}`;
      this.spotRequests.set(spotInstanceRequestId, { spotInstanceRequestId, instanceId, maxPrice: str(market, 'SpotOptions', 'MaxPrice'), state: 'active' });
    }
    const volume: FakeVolume = {
      volumeId: `vol-${randomHex(17)}`,
      instanceId,
      size: Number(str(root, 'Ebs', 'VolumeSize') ?? 8),
      volumeType,
      deviceName: str(root, 'DeviceName') ?? '/dev/sda1',
      deleteOnTermination: (str(root, 'Ebs', 'DeleteOnTermination') ?? 'true') === 'true',
    };
    this.volumes.set(volume.volumeId, volume);
    const instance: FakeInstance = {
      instanceId,
      imageId,
      instanceType: str(p, 'InstanceType') ?? 'm1.small',
      keyName,
      subnetId: subnet.subnetId,
      vpcId: subnet.vpcId,
      availabilityZone: subnet.availabilityZone,
      securityGroupIds: groupIds,
      privateIpAddress: `172.31.${this.subnets.indexOf(subnet) * 16}.${this.#nextIp++}`,
      publicIpAddress: associatePublic === 'false' ? undefined : this.publicAddress,
      tags: tagsFor(p, 'instance'),
      userData: str(p, 'UserData'),
      iamInstanceProfile: str(p, 'IamInstanceProfile', 'Name') ?? str(p, 'IamInstanceProfile', 'Arn'),
      spotInstanceRequestId,
      metadataHttpTokens: str(p, 'MetadataOptions', 'HttpTokens'),
      monitoring: str(p, 'Monitoring', 'Enabled') === 'true',
      ebsOptimized: str(p, 'EbsOptimized') === 'true',
      rootVolumeId: volume.volumeId,
      clientToken: str(p, 'ClientToken') ?? '',
      state: 'pending',
      ticks: this.#transitionCalls,
      launchedAt: new Date().toISOString(),
    };
    this.instances.set(instanceId, instance);
    return { reservationId: `r-${randomHex(17)}`, ownerId: '123456789012', groupSet: [], instancesSet: [this.#instanceXml(instance)] };
  }

  #instance(id: string): FakeInstance {
    const instance = this.instances.get(id);
    if (!instance) {
      if (!/^i-[0-9a-f]+$/.test(id)) throw new Ec2FakeError('InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
      throw new Ec2FakeError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    }
    return instance;
  }

  #describeInstances(p: ParamTree): XmlValue {
    const ids = strings(p['InstanceId']);
    const selected = ids.length ? ids.map((id) => this.#instance(id)) : [...this.instances.values()];
    const matching = this.#filter(selected, p, instanceFields);
    for (const instance of matching) this.#tick(instance);
    return { reservationSet: matching.map((i) => ({ reservationId: `r-${i.instanceId.slice(2)}`, ownerId: '123456789012', groupSet: [], instancesSet: [this.#instanceXml(i)] })) };
  }

  // One DescribeInstances call moves a transient state one step towards where it settles.
  #tick(instance: FakeInstance): void {
    if (instance.state === 'pending' && this.neverRunning) return;
    if (instance.state !== 'pending' && instance.state !== 'stopping' && instance.state !== 'shutting-down') return;
    if (instance.ticks-- > 0) return;
    if (instance.state === 'pending') instance.state = 'running';
    else if (instance.state === 'stopping') instance.state = 'stopped';
    else this.#terminated(instance);
  }

  #terminated(instance: FakeInstance): void {
    instance.state = 'terminated';
    const volume = this.volumes.get(instance.rootVolumeId);
    if (volume?.deleteOnTermination) this.volumes.delete(volume.volumeId);
    const spot = instance.spotInstanceRequestId ? this.spotRequests.get(instance.spotInstanceRequestId) : undefined;
    if (spot && (spot.state === 'active' || spot.state === 'open')) spot.state = 'closed';
  }

  #changeStates(p: ParamTree, change: 'start' | 'stop' | 'terminate'): XmlValue[] {
    return strings(p['InstanceId']).map((id) => {
      const instance = this.#instance(id);
      const previous = instance.state;
      if (change === 'terminate') {
        if (previous !== 'terminated' && previous !== 'shutting-down') {
          instance.state = 'shutting-down';
          instance.ticks = this.#transitionCalls;
        }
      } else if (change === 'stop') {
        if (previous === 'pending' || previous === 'terminated' || previous === 'shutting-down') {
          throw new Ec2FakeError('IncorrectInstanceState', `The instance '${id}' is not in a state from which it can be stopped.`);
        }
        if (previous === 'running') {
          instance.state = 'stopping';
          instance.ticks = this.#transitionCalls;
        }
      } else {
        if (previous === 'terminated' || previous === 'shutting-down' || previous === 'stopping') {
          throw new Ec2FakeError('IncorrectInstanceState', `The instance '${id}' is not in a state from which it can be started.`);
        }
        if (previous === 'stopped') {
          instance.state = 'pending';
          instance.ticks = this.#transitionCalls;
        }
      }
      return { instanceId: id, currentState: stateXml(instance.state), previousState: stateXml(previous) };
    });
  }

  #createTags(p: ParamTree): XmlValue {
    const tags = list(p['Tag']).map((t) => ({ key: str(t, 'Key') ?? '', value: str(t, 'Value') ?? '' }));
    for (const id of strings(p['ResourceId'])) {
      const target = this.instances.get(id)?.tags ?? this.securityGroups.get(id)?.tags;
      if (!target) throw new Ec2FakeError('InvalidID', `The ID '${id}' is not valid`);
      for (const tag of tags) {
        const at = target.findIndex((t) => t.key === tag.key);
        if (at >= 0) target.splice(at, 1);
        target.push(tag);
      }
    }
    return { return: true };
  }

  #instanceXml(i: FakeInstance): XmlValue {
    return {
      instanceId: i.instanceId,
      imageId: i.imageId,
      instanceState: stateXml(i.state),
      privateDnsName: `ip-${i.privateIpAddress.replaceAll('.', '-')}.ec2.internal`,
      dnsName: i.publicIpAddress && i.state === 'running' ? `ec2-${i.publicIpAddress.replaceAll('.', '-')}.compute-1.amazonaws.com` : undefined,
      keyName: i.keyName,
      instanceType: i.instanceType,
      launchTime: i.launchedAt,
      placement: { availabilityZone: i.availabilityZone, tenancy: 'default' },
      monitoring: { state: i.monitoring ? 'enabled' : 'disabled' },
      subnetId: i.subnetId,
      vpcId: i.vpcId,
      privateIpAddress: i.privateIpAddress,
      // EC2 gives a public address only while the instance runs.
      ipAddress: i.state === 'running' ? i.publicIpAddress : undefined,
      groupSet: i.securityGroupIds.map((id) => ({ groupId: id, groupName: this.securityGroups.get(id)?.groupName })),
      tagSet: i.tags.map(tagXml),
      spotInstanceRequestId: i.spotInstanceRequestId,
      instanceLifecycle: i.spotInstanceRequestId ? 'spot' : undefined,
      iamInstanceProfile: i.iamInstanceProfile ? { arn: `arn:aws:iam::123456789012:instance-profile/${i.iamInstanceProfile}`, id: 'AIPAFAKE' } : undefined,
      ebsOptimized: i.ebsOptimized,
      rootDeviceType: 'ebs',
      blockDeviceMapping: this.volumes.has(i.rootVolumeId)
        ? [{ deviceName: this.volumes.get(i.rootVolumeId)!.deviceName, ebs: { volumeId: i.rootVolumeId, status: 'attached', deleteOnTermination: this.volumes.get(i.rootVolumeId)!.deleteOnTermination } }]
        : [],
      metadataOptions: { httpTokens: i.metadataHttpTokens ?? 'optional', state: 'applied' },
    };
  }
}

function stateXml(state: InstanceStateName): XmlValue {
  return { code: stateCodes[state], name: state };
}

function tagXml(tag: FakeTag): XmlValue {
  return { key: tag.key, value: tag.value };
}

function imageXml(i: FakeImage): XmlValue {
  return {
    imageId: i.imageId,
    imageLocation: `amazon/${i.name}`,
    imageState: i.state,
    imageOwnerId: i.ownerId,
    creationDate: i.creationDate,
    isPublic: true,
    architecture: i.architecture,
    imageType: 'machine',
    name: i.name,
    rootDeviceType: 'ebs',
    rootDeviceName: '/dev/sda1',
    virtualizationType: 'hvm',
  };
}

function subnetXml(s: FakeSubnet): XmlValue {
  return { subnetId: s.subnetId, state: 'available', vpcId: s.vpcId, cidrBlock: s.cidrBlock, availabilityZone: s.availabilityZone, defaultForAz: s.defaultForAz, mapPublicIpOnLaunch: true };
}

function tagsFor(p: ParamTree, resourceType: string): FakeTag[] {
  const spec = list(p['TagSpecification']).find((s) => str(s, 'ResourceType') === resourceType);
  return list(sub(spec, 'Tag')).map((t) => ({ key: str(t, 'Key') ?? '', value: str(t, 'Value') ?? '' }));
}

function tagValue(item: unknown, key: string): string | undefined {
  const tags = (item as { tags?: FakeTag[] }).tags;
  return tags?.find((t) => t.key === key)?.value;
}

function idMatches(id: string, wanted: readonly string[]): boolean {
  return wanted.length === 0 || wanted.includes(id);
}

// EC2 filter values take `*` and `?` wildcards.
function wildcard(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

const imageFields: Readonly<Record<string, (i: FakeImage) => string>> = {
  name: (i) => i.name,
  state: (i) => i.state,
  architecture: (i) => i.architecture,
  'owner-id': (i) => i.ownerId,
  'image-id': (i) => i.imageId,
  'root-device-type': () => 'ebs',
  'virtualization-type': () => 'hvm',
};

const subnetFields: Readonly<Record<string, (s: FakeSubnet) => string>> = {
  'vpc-id': (s) => s.vpcId,
  'availability-zone': (s) => s.availabilityZone,
  'default-for-az': (s) => String(s.defaultForAz),
  'subnet-id': (s) => s.subnetId,
};

const groupFields: Readonly<Record<string, (g: FakeSecurityGroup) => string>> = {
  'group-name': (g) => g.groupName,
  'group-id': (g) => g.groupId,
  'vpc-id': (g) => g.vpcId,
};

const instanceFields: Readonly<Record<string, (i: FakeInstance) => string | readonly string[]>> = {
  'instance.group-id': (i) => i.securityGroupIds,
  'instance-state-name': (i) => i.state,
  'instance-id': (i) => i.instanceId,
  'vpc-id': (i) => i.vpcId,
  'client-token': (i) => i.clientToken,
};
