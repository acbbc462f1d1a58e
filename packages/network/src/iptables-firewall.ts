import type { Logger } from '@berth/log';
import { execCommand } from './exec-command.js';
import { anyHostIp } from './port-spec.js';
import { ruleComment, type Firewall, type FirewallBackend, type FirewallRuleset } from './firewall.js';

/** Options of `IptablesFirewall`. */
export interface IptablesFirewallOptions {
  /** `iptables`, `iptables-nft` or `iptables-legacy`; `<command>-save` and `-restore` must exist beside it. */
  readonly command: string;
  readonly backend: FirewallBackend;
  readonly tag: string;
  readonly logger: Logger;
}

interface Jump {
  readonly table: 'nat' | 'filter';
  readonly chain: string;
  /** Insert at the top (FORWARD, so that a DROP policy or rule of another tool comes after ours). */
  readonly first: boolean;
  readonly match: string;
  readonly target: string;
}

/**
 * The rules of one tag in iptables (either variant), in four chains of their own:
 * BERTH-DNAT-<tag> (nat, from PREROUTING and OUTPUT for local destinations), BERTH-POST-<tag>
 * (nat, masquerade), BERTH-FWD-<tag> (filter, from the top of FORWARD) and BERTH-ISO-<tag>
 * (isolation between bridges). Every change is one `iptables-restore --noflush`: declaring a
 * chain empties it, so the chains are rewritten whole and atomically.
 */
export class IptablesFirewall implements Firewall {
  readonly backend: FirewallBackend;
  readonly tag: string;
  readonly #command: string;
  readonly #logger: Logger;
  readonly #chains: { readonly dnat: string; readonly post: string; readonly fwd: string; readonly iso: string };
  readonly #jumps: readonly Jump[];

  constructor(options: IptablesFirewallOptions) {
    this.backend = options.backend;
    this.tag = options.tag;
    this.#command = options.command;
    this.#logger = options.logger;
    const t = options.tag;
    this.#chains = { dnat: `BERTH-DNAT-${t}`, post: `BERTH-POST-${t}`, fwd: `BERTH-FWD-${t}`, iso: `BERTH-ISO-${t}` };
    const c = `-m comment --comment ${ruleComment(t)}`;
    this.#jumps = [
      { table: 'nat', chain: 'PREROUTING', first: false, match: `-m addrtype --dst-type LOCAL ${c}`, target: this.#chains.dnat },
      // Loopback destinations are left to the userland proxy: DNAT from 127.0.0.1 needs route_localnet.
      { table: 'nat', chain: 'OUTPUT', first: false, match: `! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL ${c}`, target: this.#chains.dnat },
      { table: 'nat', chain: 'POSTROUTING', first: false, match: c, target: this.#chains.post },
      { table: 'filter', chain: 'FORWARD', first: true, match: c, target: this.#chains.fwd },
    ];
  }

  async apply(ruleset: FirewallRuleset, signal?: AbortSignal): Promise<void> {
    const present = this.#jumpsPresent(await this.#save(signal));
    const c = `-m comment --comment ${ruleComment(this.tag)}`;
    const { dnat, post, fwd, iso } = this.#chains;
    const jumpLines = (table: string) =>
      this.#jumps
        .filter((j) => j.table === table && !present.has(`${j.chain} ${j.target}`))
        .map((j) => `${j.first ? `-I ${j.chain} 1` : `-A ${j.chain}`} ${j.match} -j ${j.target}`);

    const nat = ['*nat', `:${dnat} - [0:0]`, `:${post} - [0:0]`, ...jumpLines('nat')];
    for (const p of ruleset.ports) {
      const dest = p.hostIp === anyHostIp ? '' : ` -d ${p.hostIp}/32`;
      nat.push(
        `-A ${dnat} ! -i ${p.bridge}${dest} -p ${p.protocol} -m ${p.protocol} --dport ${p.hostPort} ${c} -j DNAT --to-destination ${p.containerIp}:${p.containerPort}`,
      );
    }
    for (const n of ruleset.networks) {
      if (!n.internal) nat.push(`-A ${post} -s ${n.subnet} ! -o ${n.bridge} ${c} -j MASQUERADE`);
    }
    nat.push('COMMIT');

    const filter = ['*filter', `:${fwd} - [0:0]`, `:${iso} - [0:0]`, ...jumpLines('filter')];
    for (const n of ruleset.networks) {
      filter.push(`-A ${fwd} -o ${n.bridge} -m conntrack --ctstate RELATED,ESTABLISHED ${c} -j ACCEPT`);
    }
    // Only traffic our DNAT rewrote reaches a published port from outside the bridge (another
    // bridge included): a container address is not reachable directly, published or not.
    for (const p of ruleset.ports) {
      filter.push(
        `-A ${fwd} -d ${p.containerIp}/32 ! -i ${p.bridge} -o ${p.bridge} -p ${p.protocol} -m ${p.protocol} --dport ${p.containerPort} -m conntrack --ctstate DNAT ${c} -j ACCEPT`,
      );
    }
    for (const n of ruleset.networks) {
      filter.push(`-A ${fwd} -i ${n.bridge} -o ${n.bridge} ${c} -j ACCEPT`);
      filter.push(`-A ${fwd} -i ${n.bridge} ! -o ${n.bridge} ${c} -j ${iso}`);
      filter.push(`-A ${iso} -o ${n.bridge} ${c} -j DROP`);
    }
    for (const n of ruleset.networks) {
      if (n.internal) filter.push(`-A ${fwd} -i ${n.bridge} ${c} -j DROP`);
      else filter.push(`-A ${fwd} -i ${n.bridge} ! -o ${n.bridge} ${c} -j ACCEPT`);
      filter.push(`-A ${fwd} -o ${n.bridge} ${c} -j DROP`);
    }
    filter.push('COMMIT');
    await this.#restore([...nat, ...filter], signal);
    this.#logger.debug('firewall rules applied', { backend: this.backend, tag: this.tag, networks: ruleset.networks.length, ports: ruleset.ports.length });
  }

  async remove(signal?: AbortSignal): Promise<void> {
    const saved = await this.#save(signal);
    const ours = new Set(Object.values(this.#chains));
    const byTable = new Map<string, string[]>();
    let table = '';
    const chainsOf = new Map<string, string[]>();
    for (const line of saved.split('\n')) {
      if (line.startsWith('*')) table = line.slice(1);
      const declared = /^:(\S+)/.exec(line)?.[1];
      if (declared && ours.has(declared)) chainsOf.set(table, [...(chainsOf.get(table) ?? []), declared]);
      const rule = /^-A (\S+) (.*)$/.exec(line);
      if (rule && !ours.has(rule[1]!) && [...ours].some((chain) => rule[2]!.endsWith(`-j ${chain}`))) {
        byTable.set(table, [...(byTable.get(table) ?? []), `-D ${rule[1]} ${rule[2]}`]);
      }
    }
    const lines: string[] = [];
    for (const t of new Set([...byTable.keys(), ...chainsOf.keys()])) {
      const chains = chainsOf.get(t) ?? [];
      lines.push(`*${t}`, ...(byTable.get(t) ?? []), ...chains.map((ch) => `-F ${ch}`), ...chains.map((ch) => `-X ${ch}`), 'COMMIT');
    }
    if (lines.length) await this.#restore(lines, signal);
  }

  async list(signal?: AbortSignal): Promise<string[]> {
    const mark = new RegExp(`--comment "?${ruleComment(this.tag)}"?(\\s|$)`);
    return (await this.#save(signal)).split('\n').filter((line) => line.startsWith('-A ') && mark.test(line));
  }

  #jumpsPresent(saved: string): Set<string> {
    const present = new Set<string>();
    for (const line of saved.split('\n')) {
      for (const j of this.#jumps) {
        if (line.startsWith(`-A ${j.chain} `) && line.endsWith(`-j ${j.target}`)) present.add(`${j.chain} ${j.target}`);
      }
    }
    return present;
  }

  #save(signal?: AbortSignal): Promise<string> {
    return execCommand(`${this.#command}-save`, [], { signal });
  }

  async #restore(lines: readonly string[], signal?: AbortSignal): Promise<void> {
    await execCommand(`${this.#command}-restore`, ['-w', '--noflush'], { input: lines.join('\n') + '\n', signal });
  }
}
