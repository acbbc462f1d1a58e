import { makeSeedIso } from './seed-iso.js';

/** What the VM's first boot needs to know. */
export interface SeedOptions {
  readonly instanceId: string;
  readonly hostname: string;
  readonly sshUser: string;
  readonly publicKey: string;
  /** MAC of the NAT NIC (DHCP from VirtualBox's NAT) and of the host-only NIC (fixed address). */
  readonly natMac: string;
  readonly hostOnlyMac: string;
  /** `192.168.56.10/24`. */
  readonly hostOnlyAddress: string;
  readonly share?: { readonly name: string } | undefined;
}

function colonMac(mac: string): string {
  return mac.toLowerCase().match(/../g)!.join(':');
}

/**
 * The NoCloud seed ISO: a user with the host's key and passwordless sudo, no password logins,
 * the shared folder mounted at /<name> when the guest has vboxsf, and a fixed address on the
 * host-only NIC, so the engine's address (and its TLS certificate) survives restarts, unlike
 * docker-machine's DHCP lease. The documents are JSON, which YAML parsers read as YAML.
 */
export function makeCloudInitSeed(options: SeedOptions): Buffer {
  const userData = {
    hostname: options.hostname,
    users: [
      {
        name: options.sshUser,
        groups: ['sudo'],
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        shell: '/bin/bash',
        lock_passwd: true,
        ssh_authorized_keys: [options.publicKey],
      },
    ],
    ssh_pwauth: false,
    ...(options.share ? { mounts: [[options.share.name, `/${options.share.name.replace(/^\/+/, '')}`, 'vboxsf', 'defaults,nofail,uid=1000,gid=1000', '0', '0']] } : {}),
  };
  const networkConfig = {
    version: 2,
    ethernets: {
      nat: { match: { macaddress: colonMac(options.natMac) }, 'set-name': 'eth0', dhcp4: true },
      hostonly: { match: { macaddress: colonMac(options.hostOnlyMac) }, 'set-name': 'eth1', dhcp4: false, addresses: [options.hostOnlyAddress] },
    },
  };
  return makeSeedIso([
    { name: 'meta-data', data: Buffer.from(JSON.stringify({ 'instance-id': options.instanceId, 'local-hostname': options.hostname }) + '\n') },
    { name: 'user-data', data: Buffer.from(`#cloud-config\n${JSON.stringify(userData, null, 2)}\n`) },
    { name: 'network-config', data: Buffer.from(JSON.stringify(networkConfig, null, 2) + '\n') },
  ]);
}
