import {
  booleanFlag,
  invalidOption,
  numberFlag,
  openPortsFlag,
  stringFlag,
  stringListFlag,
  withPrefixAliases,
  type FlagDefinition,
  type FlagValues,
} from '@berth/machine';

/** The instance type new hosts get: the current burstable general-purpose size (docker-machine had t2.micro). */
export const defaultInstanceType = 't3.micro';
/** The name pattern of the AMI looked up when `--aws-ami` is not given: Ubuntu 24.04 LTS on gp3 from Canonical. */
export const defaultAmiNamePattern = 'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*';

/** The create flags of the aws driver, with docker-machine's env vars and `amazonec2-` aliases. */
export const awsFlags: readonly FlagDefinition[] = withPrefixAliases('aws-', 'amazonec2-', [
  { name: 'aws-access-key', type: 'string', envVar: 'AWS_ACCESS_KEY_ID', usage: 'AWS access key ID (default: the standard AWS credential chain)' },
  { name: 'aws-secret-key', type: 'string', envVar: 'AWS_SECRET_ACCESS_KEY', usage: 'AWS secret access key', secret: true },
  { name: 'aws-session-token', type: 'string', envVar: 'AWS_SESSION_TOKEN', usage: 'AWS session token', secret: true },
  { name: 'aws-profile', type: 'string', envVar: 'AWS_PROFILE', usage: 'profile of the shared AWS config and credentials files' },
  { name: 'aws-region', type: 'string', default: 'us-east-1', envVar: 'AWS_DEFAULT_REGION', usage: 'AWS region' },
  { name: 'aws-zone', type: 'string', default: 'a', envVar: 'AWS_ZONE', usage: 'availability zone letter within the region' },
  { name: 'aws-endpoint', type: 'string', envVar: 'AWS_ENDPOINT', usage: 'EC2 API endpoint URL (default: the region\'s)' },
  { name: 'aws-insecure-transport', type: 'boolean', default: false, envVar: 'AWS_INSECURE_TRANSPORT', usage: 'use http:// for an --aws-endpoint given without a scheme' },
  { name: 'aws-vpc-id', type: 'string', envVar: 'AWS_VPC_ID', usage: 'VPC ID (default: the account\'s default VPC)' },
  { name: 'aws-subnet-id', type: 'string', envVar: 'AWS_SUBNET_ID', usage: 'subnet ID (default: the zone\'s default subnet in the VPC)' },
  { name: 'aws-instance-type', type: 'string', default: defaultInstanceType, envVar: 'AWS_INSTANCE_TYPE', usage: 'instance type' },
  { name: 'aws-ami', type: 'string', envVar: 'AWS_AMI', usage: 'AMI ID (default: the newest Ubuntu 24.04 LTS amd64 AMI of the region, from Canonical)' },
  { name: 'aws-root-size', type: 'number', default: 16, envVar: 'AWS_ROOT_SIZE', usage: 'root volume size in GB' },
  { name: 'aws-volume-type', type: 'string', default: 'gp3', choices: ['gp3', 'gp2', 'io1', 'io2', 'st1', 'sc1', 'standard'], envVar: 'AWS_VOLUME_TYPE', usage: 'root volume type' },
  { name: 'aws-device-name', type: 'string', envVar: 'AWS_DEVICE_NAME', usage: 'root device name (default: the AMI\'s root device)' },
  { name: 'aws-iam-instance-profile', type: 'string', envVar: 'AWS_INSTANCE_PROFILE', usage: 'IAM instance profile name or ARN' },
  { name: 'aws-tags', type: 'string', envVar: 'AWS_TAGS', usage: 'extra tags as key1,value1,key2,value2 (Name=<machine> is always set)' },
  { name: 'aws-monitoring', type: 'boolean', default: false, envVar: 'AWS_MONITORING', usage: 'enable CloudWatch detailed monitoring' },
  { name: 'aws-use-ebs-optimized-instance', type: 'boolean', default: false, envVar: 'AWS_USE_EBS_OPTIMIZED_INSTANCE', usage: 'launch an EBS-optimized instance' },
  { name: 'aws-userdata', type: 'string', envVar: 'AWS_USERDATA', usage: 'file whose content is passed as user data (cloud-init)' },
  { name: 'aws-metadata-token', type: 'string', default: 'required', choices: ['required', 'optional'], envVar: 'AWS_METADATA_TOKEN', usage: 'instance metadata: require IMDSv2 session tokens, or allow IMDSv1' },
  { name: 'aws-ssh-user', type: 'string', default: 'ubuntu', envVar: 'AWS_SSH_USER', usage: 'SSH user of the AMI' },
  { name: 'aws-ssh-port', type: 'number', default: 22, envVar: 'AWS_SSH_PORT', usage: 'SSH port' },
  { name: 'aws-ssh-keypath', type: 'string', envVar: 'AWS_SSH_KEYPATH', usage: 'private key to use instead of a new one (its .pub is imported)' },
  { name: 'aws-keypair-name', type: 'string', envVar: 'AWS_KEYPAIR_NAME', usage: 'existing EC2 key pair to use (needs --aws-ssh-keypath); never deleted' },
  { name: 'aws-security-group', type: 'string[]', envVar: 'AWS_SECURITY_GROUP', usage: 'security group names, reused when they exist (default: berth-<machine>, made for this host and removed with it)' },
  { name: 'aws-security-group-readonly', type: 'boolean', default: false, envVar: 'AWS_SECURITY_GROUP_READONLY', usage: 'never add rules to existing security groups' },
  { name: 'aws-open-port', type: 'string[]', usage: 'more ports to open, as PORT or PORT/PROTOCOL' },
  { name: 'aws-private-address-only', type: 'boolean', default: false, envVar: 'AWS_PRIVATE_ADDRESS_ONLY', usage: 'give the instance no public address, and use the private one' },
  { name: 'aws-use-private-address', type: 'boolean', default: false, envVar: 'AWS_USE_PRIVATE_ADDRESS', usage: 'reach the instance on its private address' },
  { name: 'aws-request-spot-instance', type: 'boolean', default: false, envVar: 'AWS_REQUEST_SPOT_INSTANCE', usage: 'launch a spot instance' },
  { name: 'aws-spot-price', type: 'string', envVar: 'AWS_SPOT_PRICE', usage: 'highest spot price in USD per hour (default: the on-demand price)' },
  { name: 'aws-block-duration-minutes', type: 'number', envVar: 'AWS_BLOCK_DURATION_MINUTES', usage: 'ignored: AWS ended spot blocks in 2022' },
  { name: 'aws-retries', type: 'number', default: 5, envVar: 'AWS_RETRIES', usage: 'retries of throttled or failed API calls (-1: none)' },
  { name: 'aws-wait-timeout', type: 'number', default: 300, envVar: 'AWS_WAIT_TIMEOUT', usage: 'seconds to wait for the instance to reach a state' },
]);

/** The aws driver's saved configuration: the resolved flags and what `create` has made so far. */
export type AwsDriverConfig = {
  readonly region: string;
  readonly zone: string;
  readonly endpoint?: string | undefined;
  readonly accessKey?: string | undefined;
  readonly secretKey?: string | undefined;
  readonly sessionToken?: string | undefined;
  readonly profile?: string | undefined;
  readonly vpcId?: string | undefined;
  readonly subnetId?: string | undefined;
  readonly instanceType: string;
  readonly ami?: string | undefined;
  readonly rootSize: number;
  readonly volumeType: string;
  readonly deviceName?: string | undefined;
  readonly iamInstanceProfile?: string | undefined;
  readonly tags: readonly { readonly key: string; readonly value: string }[];
  readonly monitoring: boolean;
  readonly ebsOptimized: boolean;
  /** The `--aws-userdata` file (absolute, as given), read when the instance is launched. */
  readonly userDataFile?: string | undefined;
  readonly metadataToken: string;
  readonly sshUser: string;
  readonly sshPort: number;
  /** The key to copy into the host directory instead of making one (absolute, as given). */
  readonly sshKeySource?: string | undefined;
  /** The private key file, relative to the host directory. */
  readonly sshKeyFile: string;
  /** The EC2 key pair name the instance is launched with. */
  readonly keyName: string;
  /** True when `keyName` names a key pair that existed before (never deleted). */
  readonly existingKeyPair: boolean;
  readonly securityGroups: readonly string[];
  readonly securityGroupReadonly: boolean;
  readonly openPorts: readonly { readonly port: number; readonly protocol: string }[];
  readonly privateAddressOnly: boolean;
  readonly usePrivateAddress: boolean;
  readonly spot: boolean;
  readonly spotPrice?: string | undefined;
  readonly retries: number;
  readonly waitTimeoutSeconds: number;
  /** The RunInstances idempotency token, saved before the call so a crashed create can still be found. */
  readonly clientToken?: string | undefined;
  readonly instanceId?: string | undefined;
  readonly spotRequestId?: string | undefined;
  readonly ipAddress?: string | undefined;
  readonly privateIpAddress?: string | undefined;
  /** Every security group the instance was launched with, made here or reused. */
  readonly securityGroupIds?: readonly string[] | undefined;
  /** What this driver created and `rm` must remove. */
  readonly created: {
    readonly keyPair?: string | undefined;
    readonly securityGroupIds: readonly string[];
  };
};

/** Parses `k1,v1,k2,v2` (docker-machine's tag syntax). */
export function parseTags(text: string | undefined): { key: string; value: string }[] {
  if (!text) return [];
  const parts = text.split(',');
  if (parts.length % 2 !== 0) throw invalidOption(`flag --aws-tags must be key,value pairs, got ${JSON.stringify(text)}`);
  const tags: { key: string; value: string }[] = [];
  for (let i = 0; i < parts.length; i += 2) tags.push({ key: parts[i]!.trim(), value: parts[i + 1]!.trim() });
  return tags;
}

function checkRange(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw invalidOption(`flag --${name} must be an integer from ${min} to ${max}, got ${value}`);
  return value;
}

/**
 * The saved config of a new host from its flag values (defaults already applied by the CLI;
 * applied again here so the driver can be made from partial values). `suffix` makes the key
 * pair name unique in the account.
 */
export function awsConfigFromFlags(flags: FlagValues, machineName: string, suffix: string): AwsDriverConfig {
  const zone = stringFlag(flags, 'aws-zone') ?? 'a';
  if (!/^[a-z]$/.test(zone)) throw invalidOption(`flag --aws-zone takes the zone letter (a, b, ...), got ${JSON.stringify(zone)}`);
  const region = stringFlag(flags, 'aws-region') ?? 'us-east-1';
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) throw invalidOption(`flag --aws-region is not a region name: ${JSON.stringify(region)}`);
  let endpoint = stringFlag(flags, 'aws-endpoint');
  if (endpoint && !/^https?:\/\//.test(endpoint)) endpoint = `${booleanFlag(flags, 'aws-insecure-transport') ? 'http' : 'https'}://${endpoint}`;
  if (endpoint) {
    try {
      new URL(endpoint);
    } catch (cause) {
      throw invalidOption(`flag --aws-endpoint is not a URL: ${JSON.stringify(endpoint)}`, { cause });
    }
  }
  const accessKey = stringFlag(flags, 'aws-access-key');
  const secretKey = stringFlag(flags, 'aws-secret-key');
  if ((accessKey === undefined) !== (secretKey === undefined)) throw invalidOption('flags --aws-access-key and --aws-secret-key go together');
  const keyPairName = stringFlag(flags, 'aws-keypair-name');
  const sshKeySource = stringFlag(flags, 'aws-ssh-keypath');
  if (keyPairName && !sshKeySource) throw invalidOption('flag --aws-keypair-name needs --aws-ssh-keypath (the private key of that key pair)');
  const spotPrice = stringFlag(flags, 'aws-spot-price');
  if (spotPrice !== undefined && !(Number(spotPrice) > 0)) throw invalidOption(`flag --aws-spot-price must be a positive number, got ${JSON.stringify(spotPrice)}`);
  const volumeType = stringFlag(flags, 'aws-volume-type') ?? 'gp3';
  if (!['gp3', 'gp2', 'io1', 'io2', 'st1', 'sc1', 'standard'].includes(volumeType)) throw invalidOption(`flag --aws-volume-type: unknown volume type ${JSON.stringify(volumeType)}`);
  const groups = stringListFlag(flags, 'aws-security-group') ?? [];
  const retries = numberFlag(flags, 'aws-retries') ?? 5;
  return {
    region,
    zone,
    endpoint,
    accessKey,
    secretKey,
    sessionToken: stringFlag(flags, 'aws-session-token'),
    profile: stringFlag(flags, 'aws-profile'),
    vpcId: stringFlag(flags, 'aws-vpc-id'),
    subnetId: stringFlag(flags, 'aws-subnet-id'),
    instanceType: stringFlag(flags, 'aws-instance-type') ?? defaultInstanceType,
    ami: stringFlag(flags, 'aws-ami'),
    rootSize: checkRange('aws-root-size', numberFlag(flags, 'aws-root-size') ?? 16, 1, 16384),
    volumeType,
    deviceName: stringFlag(flags, 'aws-device-name'),
    iamInstanceProfile: stringFlag(flags, 'aws-iam-instance-profile'),
    tags: parseTags(stringFlag(flags, 'aws-tags')),
    monitoring: booleanFlag(flags, 'aws-monitoring') ?? false,
    ebsOptimized: booleanFlag(flags, 'aws-use-ebs-optimized-instance') ?? false,
    userDataFile: stringFlag(flags, 'aws-userdata'),
    metadataToken: stringFlag(flags, 'aws-metadata-token') ?? 'required',
    sshUser: stringFlag(flags, 'aws-ssh-user') ?? 'ubuntu',
    sshPort: checkRange('aws-ssh-port', numberFlag(flags, 'aws-ssh-port') ?? 22, 1, 65535),
    sshKeySource,
    sshKeyFile: 'id_ed25519',
    // A random suffix: key pair names are per account and region, machine names are per store.
    keyName: keyPairName ?? `berth-${machineName}-${suffix}`,
    existingKeyPair: keyPairName !== undefined,
    securityGroups: groups.length ? groups : [`berth-${machineName}`],
    securityGroupReadonly: booleanFlag(flags, 'aws-security-group-readonly') ?? false,
    openPorts: openPortsFlag(flags, 'aws-open-port'),
    privateAddressOnly: booleanFlag(flags, 'aws-private-address-only') ?? false,
    usePrivateAddress: (booleanFlag(flags, 'aws-use-private-address') ?? false) || (booleanFlag(flags, 'aws-private-address-only') ?? false),
    spot: booleanFlag(flags, 'aws-request-spot-instance') ?? false,
    spotPrice,
    retries: checkRange('aws-retries', retries, -1, 100),
    waitTimeoutSeconds: checkRange('aws-wait-timeout', numberFlag(flags, 'aws-wait-timeout') ?? 300, 1, 86400),
    created: { securityGroupIds: [] },
  };
}
