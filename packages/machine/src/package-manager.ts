import { PackageManager } from './os-release.js';

/** Quotes `value` for a POSIX shell. */
export function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The shell commands of one package manager. Every script runs as root with LC_ALL=C. */
export interface PackageCommands {
  readonly manager: PackageManager;
  /** Prints, one per line, which of `packages` are not installed. */
  missing(packages: readonly string[]): string;
  /** Refreshes the package index before an install, or undefined when the manager does that itself. */
  refresh(): string | undefined;
  install(packages: readonly string[]): string;
  /**
   * Removes each of `packages` that nothing installed else depends on, printing the ones it
   * removed: the low-level tools (dpkg, rpm) refuse a removal that would break another package,
   * where apt-get or dnf would remove the dependents too.
   */
  remove(packages: readonly string[]): string;
  /**
   * Prints the lock file or pid file of a package manager run that holds the database right now
   * (found through /proc/locks or a live pid), and nothing when none does: how a failed install
   * tells "busy" from "broken" without reading localized error text.
   */
  lockHolder(): string;
}

function lockProbe(lockFiles: readonly string[], pidFiles: readonly string[]): string {
  return [
    `for f in ${lockFiles.map(shellQuote).join(' ')}; do`,
    '  [ -e "$f" ] || continue',
    '  ino=$(stat -c %i "$f" 2>/dev/null) || continue',
    '  if grep -q ":$ino " /proc/locks 2>/dev/null; then echo "$f"; exit 0; fi',
    'done',
    ...(pidFiles.length
      ? [`for f in ${pidFiles.map(shellQuote).join(' ')}; do`, '  if [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then echo "$f"; exit 0; fi', 'done']
      : []),
    'exit 0',
  ].join('\n');
}

const list = (packages: readonly string[]) => packages.map(shellQuote).join(' ');

const apt: PackageCommands = {
  manager: PackageManager.Apt,
  missing: (p) => `for p in ${list(p)}; do dpkg-query -W -f='\${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"; done`,
  refresh: () => 'apt-get update -qq',
  install: (p) =>
    `DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ${list(p)}`,
  remove: (p) => `for p in ${list(p)}; do dpkg --remove "$p" >/dev/null 2>&1 && echo "$p"; done; exit 0`,
  lockHolder: () => lockProbe(['/var/lib/dpkg/lock-frontend', '/var/lib/dpkg/lock', '/var/lib/apt/lists/lock', '/var/cache/apt/archives/lock'], []),
};

function rpmFamily(manager: 'dnf' | 'yum'): PackageCommands {
  return {
    manager,
    missing: (p) => `for p in ${list(p)}; do rpm -q --whatprovides "$p" >/dev/null 2>&1 || echo "$p"; done`,
    refresh: () => undefined,
    install: (p) => `${manager} install -y -q ${list(p)}`,
    remove: (p) => `for p in ${list(p)}; do rpm -e "$p" >/dev/null 2>&1 && echo "$p"; done; exit 0`,
    lockHolder: () => lockProbe(['/var/lib/rpm/.rpm.lock', '/usr/lib/sysimage/rpm/.rpm.lock'], ['/var/run/dnf.pid', '/run/dnf.pid', '/var/run/yum.pid']),
  };
}

const apk: PackageCommands = {
  manager: PackageManager.Apk,
  missing: (p) => `for p in ${list(p)}; do apk info -e "$p" >/dev/null 2>&1 || echo "$p"; done`,
  refresh: () => 'apk update -q',
  install: (p) => `apk add -q --no-progress ${list(p)}`,
  // apk keeps a package that another one still needs: it only leaves the world file.
  remove: (p) => `for p in ${list(p)}; do apk del -q --no-progress "$p" >/dev/null 2>&1 && echo "$p"; done; exit 0`,
  lockHolder: () => lockProbe(['/lib/apk/db/lock'], []),
};

const zypper: PackageCommands = {
  manager: PackageManager.Zypper,
  missing: (p) => `for p in ${list(p)}; do rpm -q --whatprovides "$p" >/dev/null 2>&1 || echo "$p"; done`,
  refresh: () => 'zypper -n -q refresh',
  install: (p) => `zypper -n -q install --no-recommends ${list(p)}`,
  remove: (p) => `for p in ${list(p)}; do rpm -e "$p" >/dev/null 2>&1 && echo "$p"; done; exit 0`,
  lockHolder: () => lockProbe(['/var/lib/rpm/.rpm.lock', '/usr/lib/sysimage/rpm/.rpm.lock'], ['/run/zypp.pid', '/var/run/zypp.pid']),
};

/** The commands of `manager`. */
export function packageCommands(manager: PackageManager): PackageCommands {
  switch (manager) {
    case PackageManager.Apt:
      return apt;
    case PackageManager.Dnf:
    case PackageManager.Yum:
      return rpmFamily(manager);
    case PackageManager.Apk:
      return apk;
    case PackageManager.Zypper:
      return zypper;
  }
}
