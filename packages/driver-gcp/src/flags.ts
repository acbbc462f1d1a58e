import {
  booleanFlag,
  invalidOption,
  numberFlag,
  openPortsFlag,
  stringFlag,
  withPrefixAliases,
  type FlagDefinition,
  type FlagValues,
} from '@berth/machine';

/** The image new hosts boot: Ubuntu 24.04 LTS, by family, so it is always the newest build. */
export const defaultImage = 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64';
/** docker-machine's default scopes: read images from Cloud Storage, write logs. */
export const defaultScopes = ['https://www.googleapis.com/auth/devstorage.read_only', 'https://www.googleapis.com/auth/logging.write'];

/** The create flags of the gcp driver, with docker-machine's env vars and `google-` aliases. */
export const gcpFlags: readonly FlagDefinition[] = withPrefixAliases('gcp-', 'google-', [
  { name: 'gcp-project', type: 'string', envVar: 'GOOGLE_PROJECT', usage: 'project ID', required: true },
  { name: 'gcp-zone', type: 'string', default: 'us-central1-a', envVar: 'GOOGLE_ZONE', usage: 'zone' },
  { name: 'gcp-machine-type', type: 'string', default: 'e2-small', envVar: 'GOOGLE_MACHINE_TYPE', usage: 'machine type' },
  { name: 'gcp-machine-image', type: 'string', default: defaultImage, envVar: 'GOOGLE_MACHINE_IMAGE', usage: 'boot image (URL, projects/P/global/images/NAME, or .../images/family/F)' },
  { name: 'gcp-username', type: 'string', default: 'docker-user', envVar: 'GOOGLE_USERNAME', usage: 'SSH user made by the SSH key in the instance metadata' },
  { name: 'gcp-disk-size', type: 'number', default: 20, envVar: 'GOOGLE_DISK_SIZE', usage: 'boot disk size in GB' },
  { name: 'gcp-disk-type', type: 'string', default: 'pd-balanced', envVar: 'GOOGLE_DISK_TYPE', usage: 'boot disk type (pd-balanced, pd-ssd, pd-standard, hyperdisk-balanced)' },
  { name: 'gcp-network', type: 'string', default: 'default', envVar: 'GOOGLE_NETWORK', usage: 'VPC network' },
  { name: 'gcp-subnetwork', type: 'string', envVar: 'GOOGLE_SUBNETWORK', usage: 'subnetwork of the network in the zone\'s region' },
  { name: 'gcp-tags', type: 'string', envVar: 'GOOGLE_TAGS', usage: 'network tags, comma-separated (a tag berth-<machine> is always added)' },
  { name: 'gcp-preemptible', type: 'boolean', default: false, envVar: 'GOOGLE_PREEMPTIBLE', usage: 'preemptible instance' },
  { name: 'gcp-address', type: 'string', envVar: 'GOOGLE_ADDRESS', usage: 'existing static external address, by name or IP (never released)' },
  { name: 'gcp-static-address', type: 'boolean', default: false, envVar: 'GOOGLE_STATIC_ADDRESS', usage: 'reserve a static external address for the host (released by rm)' },
  { name: 'gcp-service-account', type: 'string', default: 'default', envVar: 'GOOGLE_SERVICE_ACCOUNT', usage: 'service account email of the instance' },
  { name: 'gcp-scopes', type: 'string', default: defaultScopes.join(','), envVar: 'GOOGLE_SCOPES', usage: 'service account scopes, comma-separated' },
  { name: 'gcp-open-port', type: 'string[]', envVar: 'GOOGLE_OPEN_PORT', usage: 'more ports to open, as PORT or PORT/PROTOCOL' },
  { name: 'gcp-use-internal-ip', type: 'boolean', default: false, envVar: 'GOOGLE_USE_INTERNAL_IP', usage: 'reach the instance on its internal address' },
  { name: 'gcp-use-internal-ip-only', type: 'boolean', default: false, envVar: 'GOOGLE_USE_INTERNAL_IP_ONLY', usage: 'give the instance no external address' },
  { name: 'gcp-credentials-file', type: 'string', usage: 'service account key file (default: application default credentials, e.g. GOOGLE_APPLICATION_CREDENTIALS or gcloud\'s)' },
  { name: 'gcp-endpoint', type: 'string', envVar: 'GOOGLE_COMPUTE_ENDPOINT', usage: 'Compute Engine API endpoint URL (default: compute.googleapis.com)' },
  { name: 'gcp-retries', type: 'number', default: 5, envVar: 'GOOGLE_RETRIES', usage: 'retries of throttled or unavailable API calls' },
  { name: 'gcp-operation-timeout', type: 'number', default: 300, envVar: 'GOOGLE_OPERATION_TIMEOUT', usage: 'seconds to wait for an operation or an instance state' },
]);

/** The gcp driver's saved configuration: resolved flags and what `create` has made. */
export type GcpDriverConfig = {
  readonly project: string;
  readonly zone: string;
  readonly machineType: string;
  readonly image: string;
  readonly username: string;
  readonly diskSize: number;
  readonly diskType: string;
  readonly network: string;
  readonly subnetwork?: string | undefined;
  readonly tags: readonly string[];
  readonly preemptible: boolean;
  readonly address?: string | undefined;
  readonly staticAddress: boolean;
  readonly serviceAccount: string;
  readonly scopes: readonly string[];
  readonly openPorts: readonly { readonly port: number; readonly protocol: string }[];
  readonly useInternalIp: boolean;
  readonly useInternalIpOnly: boolean;
  readonly credentialsFile?: string | undefined;
  readonly endpoint?: string | undefined;
  readonly retries: number;
  readonly operationTimeoutSeconds: number;
  /** The instance (and boot disk) name: the machine name. */
  readonly instanceName: string;
  /** The firewall rule and network tag of this host. */
  readonly firewallName: string;
  readonly sshKeyFile: string;
  readonly ipAddress?: string | undefined;
  readonly internalIpAddress?: string | undefined;
  /** What this driver created and `rm` must remove. */
  readonly created: {
    readonly instance?: string | undefined;
    readonly disk?: string | undefined;
    readonly firewall?: string | undefined;
    readonly address?: string | undefined;
  };
};

function commaList(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function integer(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw invalidOption(`flag --${name} must be an integer from ${min} to ${max}, got ${value}`);
  return value;
}

/** The saved config of a new host from its flag values. */
export function gcpConfigFromFlags(flags: FlagValues, machineName: string): GcpDriverConfig {
  const project = stringFlag(flags, 'gcp-project');
  if (!project) throw invalidOption('flag --gcp-project is required (env GOOGLE_PROJECT)');
  // GCE names: lower-case letters, digits and dashes, starting with a letter, at most 63.
  if (!/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(machineName)) {
    throw invalidOption(`machine name ${JSON.stringify(machineName)} is not a valid Compute Engine instance name (lower-case letters, digits and dashes, starting with a letter, at most 63)`);
  }
  const zone = stringFlag(flags, 'gcp-zone') ?? 'us-central1-a';
  if (!/^[a-z]+-[a-z]+\d+-[a-z]$/.test(zone)) throw invalidOption(`flag --gcp-zone is not a zone name: ${JSON.stringify(zone)}`);
  const endpoint = stringFlag(flags, 'gcp-endpoint');
  if (endpoint !== undefined && !/^https?:\/\/[^/]+\/?$/.test(endpoint)) throw invalidOption(`flag --gcp-endpoint must be a URL like https://compute.example.com, got ${JSON.stringify(endpoint)}`);
  const openPorts = openPortsFlag(flags, 'gcp-open-port');
  const address = stringFlag(flags, 'gcp-address');
  const staticAddress = booleanFlag(flags, 'gcp-static-address') ?? false;
  const internalOnly = booleanFlag(flags, 'gcp-use-internal-ip-only') ?? false;
  if (address && staticAddress) throw invalidOption('flags --gcp-address and --gcp-static-address exclude each other');
  if (internalOnly && (address || staticAddress)) throw invalidOption('flag --gcp-use-internal-ip-only excludes an external address');
  return {
    project,
    zone,
    machineType: stringFlag(flags, 'gcp-machine-type') ?? 'e2-small',
    image: stringFlag(flags, 'gcp-machine-image') ?? defaultImage,
    username: stringFlag(flags, 'gcp-username') ?? 'docker-user',
    diskSize: integer('gcp-disk-size', numberFlag(flags, 'gcp-disk-size') ?? 20, 10, 65536),
    diskType: stringFlag(flags, 'gcp-disk-type') ?? 'pd-balanced',
    network: stringFlag(flags, 'gcp-network') ?? 'default',
    subnetwork: stringFlag(flags, 'gcp-subnetwork'),
    tags: commaList(stringFlag(flags, 'gcp-tags')),
    preemptible: booleanFlag(flags, 'gcp-preemptible') ?? false,
    address,
    staticAddress,
    serviceAccount: stringFlag(flags, 'gcp-service-account') ?? 'default',
    scopes: commaList(stringFlag(flags, 'gcp-scopes') ?? defaultScopes.join(',')),
    openPorts,
    useInternalIp: (booleanFlag(flags, 'gcp-use-internal-ip') ?? false) || internalOnly,
    useInternalIpOnly: internalOnly,
    credentialsFile: stringFlag(flags, 'gcp-credentials-file'),
    endpoint,
    retries: integer('gcp-retries', numberFlag(flags, 'gcp-retries') ?? 5, 0, 100),
    operationTimeoutSeconds: integer('gcp-operation-timeout', numberFlag(flags, 'gcp-operation-timeout') ?? 300, 1, 86400),
    instanceName: machineName,
    firewallName: `berth-${machineName}`.slice(0, 63).replace(/-+$/, ''),
    sshKeyFile: 'id_ed25519',
    created: {},
  };
}
