import { OciError, OciErrorCode } from './errors.js';

/** An OCI platform: what an image runs on. */
export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
  readonly 'os.version'?: string;
  readonly 'os.features'?: readonly string[];
}

const archAliases: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  x64: { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  i386: { architecture: '386' },
  ia32: { architecture: '386' },
  ppc64: { architecture: 'ppc64le' },
};

/**
 * The canonical form of a platform, as containerd normalises it: architecture aliases
 * resolved, arm64's default variant v8 dropped, arm's default variant v7 filled in.
 */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  const arch = p.architecture.toLowerCase();
  const alias = archAliases[arch];
  const architecture = alias?.architecture ?? arch;
  let variant = (p.variant ?? alias?.variant ?? '').toLowerCase();
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = '';
  if (architecture === 'arm' && variant === '') variant = 'v7';
  if (architecture === 'arm' && /^\d$/.test(variant)) variant = `v${variant}`;
  if (architecture === 'amd64' && variant === 'v1') variant = '';
  return { os, architecture, ...(variant ? { variant } : {}), ...(p['os.version'] ? { 'os.version': p['os.version'] } : {}) };
}

/** Parses `linux/arm64/v8`, `linux/amd64` or `arm64` (os linux) into a normalised platform. */
export function parsePlatform(input: string): Platform {
  const parts = input.trim().split('/');
  if (parts.some((p) => p === '') || parts.length > 3) {
    throw new OciError(`invalid platform ${JSON.stringify(input)}: want os/arch[/variant]`, { code: OciErrorCode.InvalidPlatform, kind: 'InvalidArgument' });
  }
  const [a, b, c] = parts as [string, string?, string?];
  const known = ['linux', 'windows', 'darwin', 'freebsd'];
  if (parts.length === 1) {
    if (known.includes(a.toLowerCase())) return normalizePlatform({ os: a, architecture: hostArchitecture().architecture });
    return normalizePlatform({ os: 'linux', architecture: a });
  }
  return normalizePlatform({ os: a, architecture: b!, ...(c ? { variant: c } : {}) });
}

/** `linux/arm64`, `linux/arm/v7`. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

function hostArchitecture(): { architecture: string; variant?: string } {
  const arch: string = process.arch;
  return archAliases[arch] ?? (arch === 'arm' ? { architecture: 'arm', variant: 'v7' } : { architecture: arch });
}

/** The platform of this host, normalised (`linux/amd64` here). */
export function hostPlatform(): Platform {
  return normalizePlatform({ os: process.platform === 'win32' ? 'windows' : process.platform, ...hostArchitecture() });
}

// Which variants a wanted variant can run, best first: an arm v7 host runs v7, v6 and v5.
function compatibleVariants(architecture: string, variant: string): string[] {
  const numbered = (prefix: string, n: number, min: number): string[] => {
    const out: string[] = [];
    for (let i = n; i >= min; i--) out.push(`${prefix}${i}`);
    return out;
  };
  const n = Number(variant.replace(/^v/, ''));
  if (architecture === 'arm' && n >= 5) return numbered('v', n, 5);
  if (architecture === 'amd64') return [...(n >= 2 ? numbered('v', n, 2) : []), ''];
  if (architecture === 'arm64') return variant === '' ? [''] : [variant, ''];
  return [variant];
}

/**
 * How well `have` serves `want`: 0 for an exact match, higher for a compatible older
 * variant, undefined when it cannot run there.
 */
export function platformRank(want: Platform, have: Platform): number | undefined {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return undefined;
  const rank = compatibleVariants(w.architecture, w.variant ?? '').indexOf(h.variant ?? '');
  return rank < 0 ? undefined : rank;
}

/** The best of several platform-tagged items for `want`, or undefined when none can run there. */
export function selectByPlatform<T extends { readonly platform?: Platform }>(items: readonly T[], want: Platform): T | undefined {
  let best: T | undefined;
  let bestRank = Infinity;
  for (const item of items) {
    if (!item.platform) continue;
    const rank = platformRank(want, item.platform);
    if (rank !== undefined && rank < bestRank) {
      best = item;
      bestRank = rank;
    }
  }
  return best;
}
