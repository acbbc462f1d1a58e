import { readFile } from 'node:fs/promises';
import { RuntimeError, RuntimeErrorCode } from './errors.js';

/** Every capability Linux knows (to CAP_CHECKPOINT_RESTORE, 5.9), in kernel order. */
export const allCapabilities: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Docker's default set (moby `oci/caps/defaults.go`): what `docker run` grants without --cap-add. */
export const defaultCapabilities: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** `chown`, `cap_chown` or `CAP_CHOWN` as `CAP_CHOWN`; `all` as `ALL`. Unknown names throw. */
export function normalizeCapability(name: string): string {
  const upper = name.trim().toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!allCapabilities.includes(full)) {
    throw new RuntimeError(`unknown capability: ${JSON.stringify(name)}`, RuntimeErrorCode.InvalidSpec);
  }
  return full;
}

/**
 * The capabilities of a container after docker's rules: privileged gets all; `ALL` in capAdd
 * means all but the dropped ones; `ALL` in capDrop means only the added ones; otherwise the
 * defaults minus drops plus adds.
 */
export function resolveCapabilities(options: {
  readonly capAdd?: readonly string[];
  readonly capDrop?: readonly string[];
  readonly privileged?: boolean;
  readonly base?: readonly string[];
}): string[] {
  if (options.privileged) return [...allCapabilities];
  const base = options.base ?? defaultCapabilities;
  const adds = (options.capAdd ?? []).map(normalizeCapability);
  const drops = (options.capDrop ?? []).map(normalizeCapability);
  let caps: string[];
  if (adds.includes('ALL')) caps = allCapabilities.filter((c) => !drops.includes(c));
  else if (drops.includes('ALL')) caps = adds.filter((c) => c !== 'ALL');
  else caps = [...base.filter((c) => !drops.includes(c)), ...adds];
  return [...new Set(caps)];
}

/**
 * The capabilities this process may hand on (its bounding set): a privileged container gets
 * these, not more, so that it also starts where the host (a sandbox, a rootless setup) has
 * taken some away, as containerd's WithAllCurrentCapabilities does.
 */
export async function availableCapabilities(): Promise<string[]> {
  let status: string;
  try {
    status = await readFile('/proc/self/status', 'utf8');
  } catch {
    return [...allCapabilities];
  }
  const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (!hex) return [...allCapabilities];
  const mask = BigInt(`0x${hex}`);
  return allCapabilities.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}
