import type { Logger } from '@berth/log';
import { execCommand } from './exec-command.js';
import { FirewallBackend, NoFirewall, type Firewall, type FirewallPreference } from './firewall.js';
import { IptablesFirewall } from './iptables-firewall.js';
import { NetworkErrorCode, networkError } from './network-error.js';
import { NftablesFirewall } from './nftables-firewall.js';

/** Options of `detectFirewall`. */
export interface DetectFirewallOptions {
  readonly preference: FirewallPreference;
  readonly tag: string;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

async function output(file: string, args: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
  try {
    return await execCommand(file, args, { signal });
  } catch {
    return undefined;
  }
}

async function iptablesVariant(command: string, signal?: AbortSignal): Promise<FirewallBackend | undefined> {
  if ((await output(command, ['-w', '-t', 'nat', '-S', 'POSTROUTING'], signal)) === undefined) return undefined;
  const version = (await output(command, ['--version'], signal)) ?? '';
  return version.includes('legacy') ? FirewallBackend.IptablesLegacy : FirewallBackend.IptablesNft;
}

/**
 * The Firewall to use. `auto` takes `iptables` when it can list the nat table (what docker and
 * most host tooling drive, so their rules and Berth's meet in the same chains), in whichever
 * variant (nf_tables or legacy) it is; then `nft`; and `none`, with a warning, when neither
 * works. A backend named explicitly that does not work is an error.
 */
export async function detectFirewall(options: DetectFirewallOptions): Promise<Firewall> {
  const { preference, tag, logger, signal } = options;
  const iptables = (command: string, backend: FirewallBackend) => new IptablesFirewall({ command, backend, tag, logger });
  const nftWorks = async () => (await output('nft', ['list', 'tables'], signal)) !== undefined;
  if (preference === 'none') return new NoFirewall({ tag });
  if (preference === 'auto' || preference === 'iptables') {
    const variant = await iptablesVariant('iptables', signal);
    if (variant) return iptables('iptables', variant);
    if (preference === 'auto') {
      if (await nftWorks()) return new NftablesFirewall({ tag, logger });
      logger.warn('no working iptables or nft: no NAT or isolation, published ports only through the userland proxy');
      return new NoFirewall({ tag });
    }
  } else if (preference === 'iptables-nft' || preference === 'iptables-legacy') {
    if ((await iptablesVariant(preference, signal)) !== undefined) return iptables(preference, preference);
  } else if (preference === 'nftables') {
    if (await nftWorks()) return new NftablesFirewall({ tag, logger });
  }
  throw networkError(
    `firewall ${preference} is not usable on this host: its command is missing or the kernel refused it`,
    'FailedPrecondition',
    NetworkErrorCode.FirewallUnavailable,
  );
}
