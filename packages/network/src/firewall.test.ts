import { join } from 'node:path';
import { noopLogger } from '@berth/log';
import { afterAll, describe, expect, it } from 'vitest';
import { detectFirewall } from './detect-firewall.js';
import type { FirewallBackend, FirewallRuleset } from './firewall.js';
import { NetworkManager, parsePublish } from './index.js';
import { NetnsRig, freeSubnets, leftovers, missingPrerequisite, run, testId } from '../test/netns-rig.js';

// Each firewall backend this host can run, alone (rules in, listed, replaced, removed) and under
// real traffic: masquerade to another machine, DNAT from it, isolation between bridges.

const skip = await missingPrerequisite();
const backends: { backend: FirewallBackend; command: string }[] = [
  { backend: 'iptables-nft', command: 'iptables-nft' },
  { backend: 'iptables-legacy', command: 'iptables-legacy' },
  { backend: 'nftables', command: 'nft' },
];

async function unusable(backend: FirewallBackend): Promise<string | undefined> {
  if (skip) return skip;
  try {
    await detectFirewall({ preference: backend, tag: 'probe', logger: noopLogger });
    return undefined;
  } catch (err) {
    return `${backend} is not usable here: ${(err as Error).message}`;
  }
}

describe.skipIf(skip)('detectFirewall', () => {
  it('picks a working backend for auto and refuses a named one that is missing', async () => {
    const auto = await detectFirewall({ preference: 'auto', tag: 'probe', logger: noopLogger });
    expect(['iptables-nft', 'iptables-legacy', 'nftables']).toContain(auto.backend);
    const none = await detectFirewall({ preference: 'none', tag: 'probe', logger: noopLogger });
    expect(none.backend).toBe('none');
    expect(await none.list()).toEqual([]);
  });
});

for (const { backend } of backends) {
  const reason = await unusable(backend);
  describe.skipIf(reason)(`${backend} backend`, () => {
    const id = testId();
    const tag = `f${id}`;
    const rig = new NetnsRig(id);
    let manager: NetworkManager | undefined;
    let stateDir = '';

    afterAll(async () => {
      await manager?.removeAll().catch(() => {});
      const firewall = await detectFirewall({ preference: backend, tag, logger: noopLogger });
      await firewall.remove();
      await rig.cleanup();
    });

    it('applies a ruleset atomically, replaces it whole, lists and removes it by tag', async () => {
      const firewall = await detectFirewall({ preference: backend, tag, logger: noopLogger });
      expect(firewall.backend).toBe(backend);
      const ruleset: FirewallRuleset = {
        networks: [
          { bridge: `bt${id}a`, subnet: '10.250.1.0/24', internal: false },
          { bridge: `bt${id}b`, subnet: '10.250.2.0/24', internal: true },
        ],
        ports: [{ protocol: 'udp', hostIp: '0.0.0.0', hostPort: 5353, containerIp: '10.250.1.2', containerPort: 53, bridge: `bt${id}a` }],
      };
      await firewall.apply(ruleset);
      const first = await firewall.list();
      expect(first.length).toBeGreaterThan(10);
      expect(first.join('\n')).toContain('10.250.1.0/24');
      expect(first.join('\n')).toMatch(/5353/);
      await firewall.apply(ruleset);
      expect((await firewall.list()).length).toBe(first.length);
      await firewall.apply({ networks: ruleset.networks.slice(0, 1), ports: [] });
      const smaller = await firewall.list();
      expect(smaller.join('\n')).not.toContain('10.250.2.0/24');
      expect(smaller.join('\n')).not.toMatch(/5353/);
      await firewall.remove();
      expect(await firewall.list()).toEqual([]);
      await firewall.remove();
    });

    it('carries real traffic: masquerade out, DNAT in, isolation between bridges', async () => {
      const subnets = await freeSubnets(3);
      stateDir = join(await rig.tempDir('fw'), 'network');
      manager = new NetworkManager({
        stateDir,
        defaultBridge: `bt${id}0`,
        defaultSubnet: subnets[0],
        bridgePrefix: `bt${id}`,
        vethPrefix: `vt${id}`,
        ruleTag: tag,
        firewall: backend,
      });
      expect((await manager.init()).firewall).toBe(backend);
      const outside = await rig.outside(subnets[2]!);
      const a = await rig.netns('a');
      const b = await rig.netns('b');
      const ea = await manager.connect({ containerId: `${id}-a`, netnsPath: a.path, network: 'bridge' });
      const net = await manager.createNetwork({ name: `iso${id}`, subnet: subnets[1] });
      await manager.connect({ containerId: `${id}-b`, netnsPath: b.path, network: net.name });
      await rig.httpd(a.name);
      await rig.httpd(outside.name, 8080);

      const out = await run(['curl', '-s', '-m', '3', `http://${outside.address}:8080/cgi-bin/addr`], { ns: a.name });
      expect(out.stdout.trim()).toBe(outside.hostAddress);
      const [m] = await manager.publish({ containerId: `${id}-a`, ports: parsePublish('80') });
      const dnat = await run(['curl', '-s', '-m', '3', `http://${outside.hostAddress}:${m!.hostPort}/cgi-bin/addr`], { ns: outside.name });
      expect(dnat.stdout.trim()).toBe(outside.address);
      // Routed straight at the container, past DNAT: dropped, published port or not.
      await run(['ip', 'route', 'add', subnets[0]!, 'via', outside.hostAddress], { ns: outside.name });
      expect((await run(['curl', '-s', '-m', '2', `http://${ea.ipAddress}/`], { ns: outside.name })).code).not.toBe(0);
      expect((await run(['curl', '-s', '-m', '2', `http://${ea.ipAddress}/`], { ns: b.name })).code).not.toBe(0);

      await manager.removeAll();
      expect(await leftovers(tag, [`bt${id}`, `vt${id}`], stateDir)).toEqual({ links: [], rules: [], processes: [] });
    });
  });
}
