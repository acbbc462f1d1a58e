import { ErrorKind } from '@berth/errors';
import { ProvisionError } from './errors.js';

/** The fields of /etc/os-release that choose a provisioner. */
export interface OsRelease {
  /** `debian`, `ubuntu`, `fedora`, `centos`, `rhel`, `alpine`, ... */
  readonly id: string;
  /** `ID_LIKE`, split: `["rhel", "fedora"]` for CentOS. */
  readonly idLike: readonly string[];
  readonly versionId: string;
  readonly prettyName: string;
}

/** Parses os-release(5): `KEY=value` lines, values optionally quoted with shell escapes. */
export function parseOsRelease(text: string): OsRelease {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!match) continue;
    let value = match[2]!.trim();
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) {
      value = value.slice(1, -1);
      if (quote === '"') value = value.replace(/\\([$"`\\])/g, '$1');
    }
    fields.set(match[1]!, value);
  }
  const id = (fields.get('ID') ?? 'linux').toLowerCase();
  return {
    id,
    idLike: (fields.get('ID_LIKE') ?? '').toLowerCase().split(/\s+/).filter(Boolean),
    versionId: fields.get('VERSION_ID') ?? '',
    prettyName: fields.get('PRETTY_NAME') ?? fields.get('NAME') ?? id,
  };
}

/** The package managers Berth provisions with. */
export const PackageManager = { Apt: 'apt', Dnf: 'dnf', Yum: 'yum', Apk: 'apk', Zypper: 'zypper' } as const;
export type PackageManager = (typeof PackageManager)[keyof typeof PackageManager];

/** A distribution family as provisioning sees it: how to install, and what the engine needs. */
export interface Distro {
  readonly family: 'debian' | 'redhat' | 'alpine' | 'suse';
  readonly packageManager: PackageManager;
  /** Packages the engine needs on this family (its bundle brings Node and the runtime shim). */
  readonly engineDependencies: readonly string[];
}

const families: Record<Distro['family'], { readonly ids: readonly string[]; readonly engineDependencies: readonly string[] }> = {
  // tar and gzip unpack the bundle; iptables and iproute2 set up container networks; CA
  // certificates let the engine pull over HTTPS. (The bundle's runtime shim is static.)
  debian: { ids: ['debian', 'ubuntu', 'raspbian', 'linuxmint', 'pop'], engineDependencies: ['ca-certificates', 'iptables', 'iproute2', 'tar', 'gzip'] },
  redhat: {
    ids: ['fedora', 'centos', 'rhel', 'rocky', 'almalinux', 'ol', 'amzn'],
    engineDependencies: ['ca-certificates', 'iptables', 'iproute', 'tar', 'gzip'],
  },
  // Alpine is musl: gcompat and libstdc++ let the bundle's glibc Node run.
  alpine: { ids: ['alpine'], engineDependencies: ['ca-certificates', 'iptables', 'iproute2', 'tar', 'gzip', 'gcompat', 'libstdc++'] },
  suse: { ids: ['opensuse-leap', 'opensuse-tumbleweed', 'sles', 'suse'], engineDependencies: ['ca-certificates', 'iptables', 'iproute2', 'tar', 'gzip'] },
};

/**
 * The distro family of `os` (by ID, then by ID_LIKE) and its package manager, chosen among the
 * `available` commands (`dnf` before `yum` on the Red Hat family). Throws for an unknown OS.
 */
export function distroFor(os: OsRelease, available: ReadonlySet<string>): Distro {
  const family = (Object.keys(families) as Distro['family'][]).find((f) => [os.id, ...os.idLike].some((id) => families[f].ids.includes(id)));
  const managers: Record<Distro['family'], PackageManager[]> = {
    debian: [PackageManager.Apt],
    redhat: [PackageManager.Dnf, PackageManager.Yum],
    alpine: [PackageManager.Apk],
    suse: [PackageManager.Zypper],
  };
  const command: Record<PackageManager, string> = { apt: 'apt-get', dnf: 'dnf', yum: 'yum', apk: 'apk', zypper: 'zypper' };
  if (!family) {
    throw new ProvisionError(`${os.prettyName} (ID=${os.id}) is not supported: Berth provisions Debian, Ubuntu, Fedora, CentOS/RHEL (and relatives), Alpine and openSUSE`, {
      code: 'ERR_PROVISION_UNSUPPORTED_OS',
      kind: ErrorKind.FailedPrecondition,
    });
  }
  const packageManager = managers[family].find((m) => available.has(command[m]));
  if (!packageManager) {
    throw new ProvisionError(`${os.prettyName} has none of ${managers[family].map((m) => command[m]).join(', ')}`, {
      code: 'ERR_PROVISION_NO_PACKAGE_MANAGER',
      kind: ErrorKind.FailedPrecondition,
    });
  }
  return { family, packageManager, engineDependencies: families[family].engineDependencies };
}
