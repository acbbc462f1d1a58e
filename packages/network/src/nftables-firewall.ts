import type { Logger } from '@berth/log';
import { execCommand } from './exec-command.js';
import { FirewallBackend, ruleComment, type Firewall, type FirewallRuleset } from './firewall.js';
import { anyHostIp } from './port-spec.js';

/** Options of `NftablesFirewall`. */
export interface NftablesFirewallOptions {
  readonly tag: string;
  readonly logger: Logger;
}

/**
 * The rules of one tag as one nftables table, `ip berth-<tag>`, with its own base chains on the
 * prerouting, output, postrouting and forward hooks. `apply` replaces the table in one nft
 * transaction; `remove` deletes it. A drop here is final, but an accept does not override a drop
 * of another table on the same hook (iptables' FORWARD policy, for one): on hosts where another
 * tool drops forwarded traffic through iptables, use the iptables backend.
 */
export class NftablesFirewall implements Firewall {
  readonly backend = FirewallBackend.Nftables;
  readonly tag: string;
  readonly #table: string;
  readonly #logger: Logger;

  constructor(options: NftablesFirewallOptions) {
    this.tag = options.tag;
    this.#table = `berth-${options.tag}`;
    this.#logger = options.logger;
  }

  async apply(ruleset: FirewallRuleset, signal?: AbortSignal): Promise<void> {
    const c = `comment "${ruleComment(this.tag)}"`;
    const q = (name: string) => `"${name}"`;
    const ports = ruleset.ports.map((p) => {
      const dest = p.hostIp === anyHostIp ? '' : ` ip daddr ${p.hostIp}`;
      return `iifname != ${q(p.bridge)}${dest} ${p.protocol} dport ${p.hostPort} dnat to ${p.containerIp}:${p.containerPort} ${c}`;
    });
    const post = ruleset.networks
      .filter((n) => !n.internal)
      .map((n) => `ip saddr ${n.subnet} oifname != ${q(n.bridge)} masquerade ${c}`);
    const forward = [
      ...ruleset.networks.map((n) => `oifname ${q(n.bridge)} ct state related,established accept ${c}`),
      // Only traffic our DNAT rewrote reaches a published port from outside the bridge.
      ...ruleset.ports.map(
        (p) =>
          `ip daddr ${p.containerIp} iifname != ${q(p.bridge)} oifname ${q(p.bridge)} ${p.protocol} dport ${p.containerPort} ct status dnat accept ${c}`,
      ),
      ...ruleset.networks.flatMap((n) => [
        `iifname ${q(n.bridge)} oifname ${q(n.bridge)} accept ${c}`,
        `iifname ${q(n.bridge)} oifname != ${q(n.bridge)} jump isolation ${c}`,
      ]),
      ...ruleset.networks.flatMap((n) => [
        n.internal ? `iifname ${q(n.bridge)} drop ${c}` : `iifname ${q(n.bridge)} oifname != ${q(n.bridge)} accept ${c}`,
        `oifname ${q(n.bridge)} drop ${c}`,
      ]),
    ];
    const isolation = ruleset.networks.map((n) => `oifname ${q(n.bridge)} drop ${c}`);
    const chain = (name: string, head: string | undefined, rules: readonly string[]) =>
      [`  chain ${name} {`, ...(head ? [`    ${head}`] : []), ...rules.map((r) => `    ${r}`), '  }'].join('\n');
    const script = [
      // Declaring then deleting makes the replacement work whether or not the table exists.
      `table ip ${this.#table}`,
      `delete table ip ${this.#table}`,
      `table ip ${this.#table} {`,
      chain('prerouting', 'type nat hook prerouting priority dstnat; policy accept;', [`fib daddr type local jump ports ${c}`]),
      // Loopback destinations are left to the userland proxy: DNAT from 127.0.0.1 needs route_localnet.
      chain('output', 'type nat hook output priority -100; policy accept;', [`ip daddr != 127.0.0.0/8 fib daddr type local jump ports ${c}`]),
      chain('ports', undefined, ports),
      chain('postrouting', 'type nat hook postrouting priority srcnat; policy accept;', post),
      chain('forward', 'type filter hook forward priority filter; policy accept;', forward),
      chain('isolation', undefined, isolation),
      '}',
    ].join('\n');
    await execCommand('nft', ['-f', '-'], { input: script + '\n', signal });
    this.#logger.debug('firewall rules applied', { backend: this.backend, tag: this.tag, networks: ruleset.networks.length, ports: ruleset.ports.length });
  }

  async remove(signal?: AbortSignal): Promise<void> {
    await execCommand('nft', ['-f', '-'], { input: `table ip ${this.#table}\ndelete table ip ${this.#table}\n`, signal });
  }

  async list(signal?: AbortSignal): Promise<string[]> {
    const tables = await execCommand('nft', ['list', 'tables'], { signal });
    if (!tables.split('\n').some((l) => l.trim() === `table ip ${this.#table}`)) return [];
    const text = await execCommand('nft', ['list', 'table', 'ip', this.#table], { signal });
    return text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.includes(`comment "${ruleComment(this.tag)}"`));
  }
}
