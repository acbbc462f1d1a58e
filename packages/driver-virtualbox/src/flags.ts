import {
  booleanFlag,
  invalidOption,
  numberFlag,
  stringFlag,
  type FlagDefinition,
  type FlagValues,
} from '@berth/machine';

/** Ubuntu 24.04 LTS's cloud image in the VMDK form VirtualBox reads; downloaded once into the store's cache. */
export const defaultBootImage = 'https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.vmdk';

/**
 * VirtualBox 6.1.28 and later let host-only interfaces use only 192.168.56.0/21 unless
 * /etc/vbox/networks.conf allows more; docker-machine's 192.168.99.1/24 fails there.
 */
export const defaultHostOnlyCidr = '192.168.56.1/24';

/** The share of the host's home directories docker-machine made, per platform. */
function defaultShare(platform: NodeJS.Platform): { hostPath: string; name: string } {
  if (platform === 'darwin') return { hostPath: '/Users', name: 'Users' };
  if (platform === 'win32') return { hostPath: 'C:\\Users', name: 'c/Users' };
  return { hostPath: '/home', name: 'hosthome' };
}

/** The create flags of the virtualbox driver, with docker-machine's names and env vars. */
export const virtualBoxFlags: readonly FlagDefinition[] = [
  { name: 'virtualbox-memory', type: 'number', default: 2048, envVar: 'VIRTUALBOX_MEMORY_SIZE', usage: 'memory of the VM in MB' },
  { name: 'virtualbox-cpu-count', type: 'number', default: 2, envVar: 'VIRTUALBOX_CPU_COUNT', usage: 'CPUs of the VM (-1: all of the host\'s, at most 32)' },
  { name: 'virtualbox-disk-size', type: 'number', default: 20000, envVar: 'VIRTUALBOX_DISK_SIZE', usage: 'disk size in MB' },
  {
    name: 'virtualbox-boot-image',
    type: 'string',
    default: defaultBootImage,
    envVar: 'VIRTUALBOX_BOOT_IMAGE',
    usage: 'boot image: a cloud disk image (.vmdk, .vdi, .vhd) or an ISO, by path or http(s) URL; URLs are cached in the store',
    aliases: ['virtualbox-boot2docker-url'],
  },
  { name: 'virtualbox-hostonly-cidr', type: 'string', default: defaultHostOnlyCidr, envVar: 'VIRTUALBOX_HOSTONLY_CIDR', usage: 'host address and prefix of the host-only network' },
  { name: 'virtualbox-hostonly-ip', type: 'string', envVar: 'VIRTUALBOX_HOSTONLY_IP', usage: 'the VM\'s fixed address on the host-only network (default: the first free one from .10)' },
  { name: 'virtualbox-hostonly-nictype', type: 'string', default: 'virtio', choices: ['virtio', '82540EM', '82543GC', '82545EM', 'Am79C970A', 'Am79C973'], envVar: 'VIRTUALBOX_HOSTONLY_NIC_TYPE', usage: 'host-only NIC type' },
  { name: 'virtualbox-hostonly-nicpromisc', type: 'string', default: 'deny', choices: ['deny', 'allow-vms', 'allow-all'], envVar: 'VIRTUALBOX_HOSTONLY_NIC_PROMISC', usage: 'host-only NIC promiscuous mode' },
  { name: 'virtualbox-hostonly-no-dhcp', type: 'boolean', default: false, envVar: 'VIRTUALBOX_HOSTONLY_NO_DHCP', usage: 'kept for docker-machine scripts: the VM gets a fixed address, no DHCP server is made' },
  { name: 'virtualbox-nat-nictype', type: 'string', default: 'virtio', choices: ['virtio', '82540EM', '82543GC', '82545EM', 'Am79C970A', 'Am79C973'], envVar: 'VIRTUALBOX_NAT_NICTYPE', usage: 'NAT NIC type' },
  { name: 'virtualbox-host-dns-resolver', type: 'boolean', default: false, envVar: 'VIRTUALBOX_HOST_DNS_RESOLVER', usage: 'resolve DNS through the host\'s resolver' },
  { name: 'virtualbox-no-dns-proxy', type: 'boolean', default: false, envVar: 'VIRTUALBOX_NO_DNS_PROXY', usage: 'no DNS proxy in the NAT' },
  { name: 'virtualbox-ui-type', type: 'string', default: 'headless', choices: ['headless', 'gui', 'sdl', 'separate'], envVar: 'VIRTUALBOX_UI_TYPE', usage: 'how the VM is started' },
  { name: 'virtualbox-no-share', type: 'boolean', default: false, envVar: 'VIRTUALBOX_NO_SHARE', usage: 'do not share the host\'s home directories' },
  { name: 'virtualbox-share-folder', type: 'string', envVar: 'VIRTUALBOX_SHARE_FOLDER', usage: 'folder to share as HOSTDIR:NAME (default: /home as hosthome; /Users on macOS)' },
  { name: 'virtualbox-no-vtx-check', type: 'boolean', default: false, envVar: 'VIRTUALBOX_NO_VTX_CHECK', usage: 'skip the check that hardware virtualization is on' },
  { name: 'virtualbox-ssh-user', type: 'string', default: 'docker', envVar: 'VIRTUALBOX_SSH_USER', usage: 'user made by cloud-init with the host\'s key' },
  { name: 'virtualbox-vboxmanage', type: 'string', default: 'VBoxManage', envVar: 'VBOXMANAGE_PATH', usage: 'the VBoxManage command (found on PATH)' },
  { name: 'virtualbox-wait-timeout', type: 'number', default: 180, envVar: 'VIRTUALBOX_WAIT_TIMEOUT', usage: 'seconds to wait for the VM to start or stop' },
];

/** The virtualbox driver's saved configuration: resolved flags and what `create` has made. */
export type VirtualBoxDriverConfig = {
  readonly memory: number;
  readonly cpus: number;
  readonly diskSize: number;
  readonly bootImage: string;
  readonly hostOnlyIp: string;
  readonly hostOnlyPrefix: number;
  /** The VM's fixed address on the host-only network, chosen at create when not given. */
  readonly vmIp?: string | undefined;
  readonly hostOnlyNicType: string;
  readonly hostOnlyPromisc: string;
  readonly natNicType: string;
  readonly hostDnsResolver: boolean;
  readonly dnsProxy: boolean;
  readonly uiType: string;
  readonly share?: { readonly hostPath: string; readonly name: string } | undefined;
  readonly vtxCheck: boolean;
  readonly sshUser: string;
  readonly vboxManage: string;
  readonly waitTimeoutSeconds: number;
  readonly vmName: string;
  readonly sshKeyFile: string;
  /** The NAT port forward to the guest's SSH port. */
  readonly sshPort?: number | undefined;
  readonly hostOnlyInterface?: string | undefined;
  /** What this driver created and `rm` must remove. */
  readonly created: {
    readonly vm?: string | undefined;
    /** The VM's disk (relative to the host directory), registered with VirtualBox when cloned. */
    readonly disk?: string | undefined;
  };
};

function ipv4(text: string): number[] | undefined {
  const parts = text.split('.').map(Number);
  return parts.length === 4 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255) ? parts : undefined;
}

/** The saved config of a new host from its flag values; `hostCpus` and `platform` describe this machine. */
export function virtualBoxConfigFromFlags(flags: FlagValues, machineName: string, hostCpus: number, platform: NodeJS.Platform): VirtualBoxDriverConfig {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9.-]*$/.test(machineName)) throw invalidOption(`machine name ${JSON.stringify(machineName)} is not a valid VM name`);
  const cidr = stringFlag(flags, 'virtualbox-hostonly-cidr') ?? defaultHostOnlyCidr;
  const match = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  if (!match || !ipv4(match[1]!) || Number(match[2]) < 8 || Number(match[2]) > 30) throw invalidOption(`flag --virtualbox-hostonly-cidr takes HOSTIP/PREFIX like 192.168.56.1/24, got ${JSON.stringify(cidr)}`);
  const vmIp = stringFlag(flags, 'virtualbox-hostonly-ip');
  if (vmIp !== undefined && !ipv4(vmIp)) throw invalidOption(`flag --virtualbox-hostonly-ip is not an IPv4 address: ${JSON.stringify(vmIp)}`);
  let cpus = numberFlag(flags, 'virtualbox-cpu-count') ?? 2;
  if (cpus === -1) cpus = Math.min(hostCpus, 32);
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 32) throw invalidOption(`flag --virtualbox-cpu-count must be 1 to 32 or -1, got ${cpus}`);
  const memory = numberFlag(flags, 'virtualbox-memory') ?? 2048;
  if (!Number.isInteger(memory) || memory < 256) throw invalidOption(`flag --virtualbox-memory must be at least 256 (MB), got ${memory}`);
  const diskSize = numberFlag(flags, 'virtualbox-disk-size') ?? 20000;
  if (!Number.isInteger(diskSize) || diskSize < 1024) throw invalidOption(`flag --virtualbox-disk-size must be at least 1024 (MB), got ${diskSize}`);
  const shareFlag = stringFlag(flags, 'virtualbox-share-folder');
  let share: { hostPath: string; name: string } | undefined;
  if (!(booleanFlag(flags, 'virtualbox-no-share') ?? false)) {
    if (shareFlag) {
      const at = shareFlag.lastIndexOf(':');
      if (at <= 0 || at === shareFlag.length - 1) throw invalidOption(`flag --virtualbox-share-folder takes HOSTDIR:NAME, got ${JSON.stringify(shareFlag)}`);
      share = { hostPath: shareFlag.slice(0, at), name: shareFlag.slice(at + 1) };
    } else share = defaultShare(platform);
  }
  const timeout = numberFlag(flags, 'virtualbox-wait-timeout') ?? 180;
  if (!(timeout > 0)) throw invalidOption(`flag --virtualbox-wait-timeout must be positive, got ${timeout}`);
  return {
    memory,
    cpus,
    diskSize,
    bootImage: stringFlag(flags, 'virtualbox-boot-image') ?? defaultBootImage,
    hostOnlyIp: match[1]!,
    hostOnlyPrefix: Number(match[2]),
    vmIp,
    hostOnlyNicType: stringFlag(flags, 'virtualbox-hostonly-nictype') ?? 'virtio',
    hostOnlyPromisc: stringFlag(flags, 'virtualbox-hostonly-nicpromisc') ?? 'deny',
    natNicType: stringFlag(flags, 'virtualbox-nat-nictype') ?? 'virtio',
    hostDnsResolver: booleanFlag(flags, 'virtualbox-host-dns-resolver') ?? false,
    dnsProxy: !(booleanFlag(flags, 'virtualbox-no-dns-proxy') ?? false),
    uiType: stringFlag(flags, 'virtualbox-ui-type') ?? 'headless',
    share,
    vtxCheck: !(booleanFlag(flags, 'virtualbox-no-vtx-check') ?? false),
    sshUser: stringFlag(flags, 'virtualbox-ssh-user') ?? 'docker',
    vboxManage: stringFlag(flags, 'virtualbox-vboxmanage') ?? 'VBoxManage',
    waitTimeoutSeconds: timeout,
    vmName: machineName,
    sshKeyFile: 'id_ed25519',
    created: {},
  };
}

/** The netmask of a prefix length (24 → 255.255.255.0). */
export function netmaskOf(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((shift) => (bits >>> shift) & 255).join('.');
}

/** The 32-bit value of an IPv4 address. */
export function ipValue(address: string): number {
  const parts = ipv4(address);
  if (!parts) throw invalidOption(`not an IPv4 address: ${JSON.stringify(address)}`);
  return parts.reduce((acc, p) => acc * 256 + p, 0);
}

/** The dotted form of a 32-bit value. */
export function ipText(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}
