import {
  booleanFlag,
  invalidOption,
  numberFlag,
  openPortsFlag,
  stringFlag,
  type FlagDefinition,
  type FlagValues,
} from '@berth/machine';

/** Ubuntu 24.04 LTS from Canonical, as `publisher:offer:sku:version`. */
export const defaultImage = 'Canonical:ubuntu-24_04-lts:server:latest';

/** Azure clouds by docker-machine's `--azure-environment` names: ARM endpoint and Entra authority host. */
export const azureEnvironments: Readonly<Record<string, { readonly resourceManager: string; readonly authorityHost: string }>> = {
  AzurePublicCloud: { resourceManager: 'https://management.azure.com', authorityHost: 'https://login.microsoftonline.com' },
  AzureChinaCloud: { resourceManager: 'https://management.chinacloudapi.cn', authorityHost: 'https://login.chinacloudapi.cn' },
  AzureUSGovernmentCloud: { resourceManager: 'https://management.usgovcloudapi.net', authorityHost: 'https://login.microsoftonline.us' },
};

/** The create flags of the azure driver, with docker-machine's names (it used the same `azure-` prefix) and env vars. */
export const azureFlags: readonly FlagDefinition[] = [
  { name: 'azure-subscription-id', type: 'string', envVar: 'AZURE_SUBSCRIPTION_ID', usage: 'subscription ID', required: true },
  { name: 'azure-tenant-id', type: 'string', envVar: 'AZURE_TENANT_ID', usage: 'Microsoft Entra tenant of the service principal' },
  { name: 'azure-client-id', type: 'string', envVar: 'AZURE_CLIENT_ID', usage: 'service principal (app) ID; without it the default Azure credential chain is used (env, managed identity, az login)' },
  { name: 'azure-client-secret', type: 'string', envVar: 'AZURE_CLIENT_SECRET', usage: 'service principal secret', secret: true },
  { name: 'azure-environment', type: 'string', default: 'AzurePublicCloud', choices: Object.keys(azureEnvironments), envVar: 'AZURE_ENVIRONMENT', usage: 'Azure cloud' },
  { name: 'azure-endpoint', type: 'string', envVar: 'AZURE_RESOURCE_MANAGER_ENDPOINT', usage: 'Resource Manager endpoint URL (default: the environment\'s; Azure Stack Hub)' },
  { name: 'azure-authority-host', type: 'string', envVar: 'AZURE_AUTHORITY_HOST', usage: 'Microsoft Entra authority host (default: the environment\'s)' },
  { name: 'azure-ca-bundle', type: 'string', envVar: 'AZURE_CA_BUNDLE', usage: 'PEM file of CA certificates to trust instead of the public ones (Azure Stack Hub, TLS-inspecting proxies)' },
  { name: 'azure-resource-group', type: 'string', envVar: 'AZURE_RESOURCE_GROUP', usage: 'resource group, made when missing and then removed by rm when empty (default: berth-<machine>)' },
  { name: 'azure-location', type: 'string', default: 'westus', envVar: 'AZURE_LOCATION', usage: 'region' },
  { name: 'azure-size', type: 'string', default: 'Standard_B2s', envVar: 'AZURE_SIZE', usage: 'VM size' },
  { name: 'azure-image', type: 'string', default: defaultImage, envVar: 'AZURE_IMAGE', usage: 'image as publisher:offer:sku:version, or an image resource ID' },
  { name: 'azure-ssh-user', type: 'string', default: 'docker-user', envVar: 'AZURE_SSH_USER', usage: 'admin user of the VM' },
  { name: 'azure-disk-size', type: 'number', envVar: 'AZURE_DISK_SIZE', usage: 'OS disk size in GB (default: the image\'s)' },
  { name: 'azure-storage-type', type: 'string', default: 'StandardSSD_LRS', choices: ['Standard_LRS', 'StandardSSD_LRS', 'Premium_LRS', 'StandardSSD_ZRS', 'Premium_ZRS'], envVar: 'AZURE_STORAGE_TYPE', usage: 'OS disk storage type' },
  { name: 'azure-vnet', type: 'string', default: 'berth-vnet', envVar: 'AZURE_VNET', usage: 'virtual network, [resource-group:]name, reused when it exists' },
  { name: 'azure-subnet', type: 'string', default: 'berth-subnet', envVar: 'AZURE_SUBNET', usage: 'subnet of the virtual network' },
  { name: 'azure-subnet-prefix', type: 'string', default: '192.168.0.0/16', envVar: 'AZURE_SUBNET_PREFIX', usage: 'address range of a new subnet (and vnet)' },
  { name: 'azure-private-ip-address', type: 'string', envVar: 'AZURE_PRIVATE_IP_ADDRESS', usage: 'static private address of the VM' },
  { name: 'azure-use-private-ip', type: 'boolean', default: false, envVar: 'AZURE_USE_PRIVATE_IP', usage: 'reach the VM on its private address' },
  { name: 'azure-no-public-ip', type: 'boolean', default: false, envVar: 'AZURE_NO_PUBLIC_IP', usage: 'give the VM no public address' },
  { name: 'azure-static-public-ip', type: 'boolean', default: true, envVar: 'AZURE_STATIC_PUBLIC_IP', usage: 'kept for docker-machine scripts: public addresses are Standard SKU, always static' },
  { name: 'azure-dns', type: 'string', envVar: 'AZURE_DNS_LABEL', usage: 'DNS label of the public address (<label>.<location>.cloudapp.azure.com)' },
  { name: 'azure-open-port', type: 'string[]', usage: 'more ports to open in the network security group, as PORT or PORT/PROTOCOL' },
  { name: 'azure-custom-data', type: 'string', envVar: 'AZURE_CUSTOM_DATA_FILE', usage: 'file passed to the VM as custom data (cloud-init)' },
  { name: 'azure-docker-port', type: 'number', default: 2376, envVar: 'AZURE_DOCKER_PORT', usage: 'engine port opened in the network security group' },
  { name: 'azure-wait-timeout', type: 'number', default: 600, envVar: 'AZURE_WAIT_TIMEOUT', usage: 'seconds to wait for the VM to reach a power state' },
];

/** The azure driver's saved configuration: resolved flags and what `create` has made. */
export type AzureDriverConfig = {
  readonly subscriptionId: string;
  readonly tenantId?: string | undefined;
  readonly clientId?: string | undefined;
  readonly clientSecret?: string | undefined;
  readonly resourceManager: string;
  readonly authorityHost: string;
  readonly caBundle?: string | undefined;
  readonly resourceGroup: string;
  readonly location: string;
  readonly size: string;
  readonly image: string;
  readonly sshUser: string;
  readonly diskSize?: number | undefined;
  readonly storageType: string;
  readonly vnetResourceGroup: string;
  readonly vnet: string;
  readonly subnet: string;
  readonly subnetPrefix: string;
  readonly privateIpAddress?: string | undefined;
  readonly usePrivateIp: boolean;
  readonly noPublicIp: boolean;
  readonly dnsLabel?: string | undefined;
  readonly openPorts: readonly { readonly port: number; readonly protocol: string }[];
  readonly customDataFile?: string | undefined;
  readonly dockerPort: number;
  readonly waitTimeoutSeconds: number;
  readonly vmName: string;
  readonly sshKeyFile: string;
  readonly ipAddress?: string | undefined;
  readonly privateIpAddressSeen?: string | undefined;
  /** What this driver created, in creation order; `rm` removes them in reverse. */
  readonly created: {
    readonly resourceGroup?: boolean | undefined;
    readonly networkSecurityGroup?: string | undefined;
    readonly virtualNetwork?: string | undefined;
    readonly subnet?: string | undefined;
    readonly publicIp?: string | undefined;
    readonly networkInterface?: string | undefined;
    readonly virtualMachine?: string | undefined;
    readonly osDisk?: string | undefined;
  };
};

function url(name: string, value: string): string {
  if (!/^https:\/\/[^/]+\/?$/.test(value)) throw invalidOption(`flag --${name} must be an https:// URL with no path, got ${JSON.stringify(value)}`);
  return value.replace(/\/$/, '');
}

/** The saved config of a new host from its flag values. */
export function azureConfigFromFlags(flags: FlagValues, machineName: string): AzureDriverConfig {
  const subscriptionId = stringFlag(flags, 'azure-subscription-id');
  if (!subscriptionId) throw invalidOption('flag --azure-subscription-id is required (env AZURE_SUBSCRIPTION_ID)');
  // Azure VM names: letters, digits and dashes, at most 64 (Linux computer names).
  if (!/^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}[a-zA-Z0-9]?$/.test(machineName)) {
    throw invalidOption(`machine name ${JSON.stringify(machineName)} is not a valid Azure VM name (letters, digits and dashes, at most 64)`);
  }
  const environmentName = stringFlag(flags, 'azure-environment') ?? 'AzurePublicCloud';
  const environment = azureEnvironments[environmentName];
  if (!environment) throw invalidOption(`flag --azure-environment: unknown cloud ${JSON.stringify(environmentName)} (know ${Object.keys(azureEnvironments).join(', ')})`);
  const clientId = stringFlag(flags, 'azure-client-id');
  const clientSecret = stringFlag(flags, 'azure-client-secret');
  const tenantId = stringFlag(flags, 'azure-tenant-id');
  if (clientSecret && (!clientId || !tenantId)) throw invalidOption('flag --azure-client-secret needs --azure-client-id and --azure-tenant-id');
  const openPorts = openPortsFlag(flags, 'azure-open-port');
  const vnetFlag = stringFlag(flags, 'azure-vnet') ?? 'berth-vnet';
  const resourceGroup = stringFlag(flags, 'azure-resource-group') ?? `berth-${machineName}`;
  const [vnetResourceGroup, vnet] = vnetFlag.includes(':') ? (vnetFlag.split(':', 2) as [string, string]) : [resourceGroup, vnetFlag];
  const subnetPrefix = stringFlag(flags, 'azure-subnet-prefix') ?? '192.168.0.0/16';
  if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(subnetPrefix)) throw invalidOption(`flag --azure-subnet-prefix is not a CIDR: ${JSON.stringify(subnetPrefix)}`);
  const image = stringFlag(flags, 'azure-image') ?? defaultImage;
  if (!image.startsWith('/subscriptions/') && image.split(':').length !== 4) throw invalidOption(`flag --azure-image takes publisher:offer:sku:version or an image ID, got ${JSON.stringify(image)}`);
  const dockerPort = numberFlag(flags, 'azure-docker-port') ?? 2376;
  const diskSize = numberFlag(flags, 'azure-disk-size');
  if (diskSize !== undefined && (!Number.isInteger(diskSize) || diskSize < 30 || diskSize > 4095)) throw invalidOption(`flag --azure-disk-size must be 30 to 4095 GB, got ${diskSize}`);
  const timeout = numberFlag(flags, 'azure-wait-timeout') ?? 600;
  if (!(timeout > 0)) throw invalidOption(`flag --azure-wait-timeout must be positive, got ${timeout}`);
  const noPublicIp = booleanFlag(flags, 'azure-no-public-ip') ?? false;
  const caBundle = stringFlag(flags, 'azure-ca-bundle');
  const endpoint = stringFlag(flags, 'azure-endpoint');
  const authority = stringFlag(flags, 'azure-authority-host');
  return {
    subscriptionId,
    tenantId,
    clientId,
    clientSecret,
    resourceManager: endpoint ? url('azure-endpoint', endpoint) : environment.resourceManager,
    authorityHost: authority ? url('azure-authority-host', authority) : environment.authorityHost,
    caBundle,
    resourceGroup,
    location: stringFlag(flags, 'azure-location') ?? 'westus',
    size: stringFlag(flags, 'azure-size') ?? 'Standard_B2s',
    image,
    sshUser: stringFlag(flags, 'azure-ssh-user') ?? 'docker-user',
    diskSize,
    storageType: stringFlag(flags, 'azure-storage-type') ?? 'StandardSSD_LRS',
    vnetResourceGroup,
    vnet,
    subnet: stringFlag(flags, 'azure-subnet') ?? 'berth-subnet',
    subnetPrefix,
    privateIpAddress: stringFlag(flags, 'azure-private-ip-address'),
    usePrivateIp: (booleanFlag(flags, 'azure-use-private-ip') ?? false) || noPublicIp,
    noPublicIp,
    dnsLabel: stringFlag(flags, 'azure-dns'),
    openPorts,
    customDataFile: stringFlag(flags, 'azure-custom-data'),
    dockerPort,
    waitTimeoutSeconds: timeout,
    vmName: machineName,
    sshKeyFile: 'id_rsa',
    created: {},
  };
}
