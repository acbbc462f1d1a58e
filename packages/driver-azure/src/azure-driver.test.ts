import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { hasCode, hasKind } from '@berth/errors';
import { DriverErrorCode, MachineState, SshKeyPair, type DriverConfig, type FlagValues } from '@berth/machine';
import { FakeArm } from '@berth/tools/fakes/arm';
import { makeTestDriverContext, type TestDriverContext } from '@berth/tools/fakes/driver-context';
import { driver, type AzureDriver, type AzureDriverConfig, type AzureDriverError } from './index.js';

let fake: FakeArm;
let ctx: TestDriverContext;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-azure-test-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  fake = await FakeArm.start();
  await writeFile(join(dir, 'ca.pem'), fake.caCertificate);
  ctx = await makeTestDriverContext('h1');
});

afterEach(async () => {
  await fake.close();
  await ctx.cleanup();
});

function flags(extra: FlagValues = {}): FlagValues {
  return {
    'azure-subscription-id': fake.subscriptionId,
    'azure-tenant-id': fake.tenantId,
    'azure-client-id': fake.clientId,
    'azure-client-secret': fake.clientSecret,
    'azure-endpoint': fake.url,
    'azure-authority-host': fake.url,
    'azure-ca-bundle': join(dir, 'ca.pem'),
    'azure-wait-timeout': 30,
    ...extra,
  };
}

function newDriver(extra: FlagValues = {}): AzureDriver {
  return driver.create({ context: ctx.context, flags: flags(extra) }) as AzureDriver;
}

function lastSaved(): AzureDriverConfig {
  return ctx.saved.at(-1) as unknown as AzureDriverConfig;
}

function props(type: string): Record<string, unknown> {
  const [resource] = fake.ofType(type);
  expect(resource, type).toBeDefined();
  return resource!.body['properties'] as Record<string, unknown>;
}

describe('azure driver against a fake Resource Manager', () => {
  test('create, state, stop (deallocate), start, restart, kill and rm leave nothing, the made group included', async () => {
    const azure = newDriver();
    await azure.preCreateCheck();
    await azure.create();

    // A client-secret token from the fake's Entra endpoints signed every ARM call.
    expect(fake.tokens.size).toBeGreaterThan(0);
    expect(fake.get(`/subscriptions/${fake.subscriptionId}/resourceGroups/berth-h1`)?.body['location']).toBe('westus');
    const rules = props('Microsoft.Network/networkSecurityGroups')['securityRules'] as { name: string; properties: { destinationPortRange: string; priority: number } }[];
    expect(rules.map((r) => [r.name, r.properties.destinationPortRange, r.properties.priority])).toEqual([
      ['SSHAllowAny', '22', 100],
      ['DockerAllowAny', '2376', 300],
    ]);
    expect(props('Microsoft.Network/publicIPAddresses')).toMatchObject({ publicIPAllocationMethod: 'Static' });
    expect(fake.ofType('Microsoft.Network/publicIPAddresses')[0]!.body['sku']).toEqual({ name: 'Standard' });
    const vm = props('Microsoft.Compute/virtualMachines') as {
      hardwareProfile: { vmSize: string };
      storageProfile: { imageReference: Record<string, string>; osDisk: { deleteOption: string; name: string } };
      osProfile: { adminUsername: string; linuxConfiguration: { disablePasswordAuthentication: boolean; ssh: { publicKeys: { keyData: string; path: string }[] } } };
    };
    expect(vm.hardwareProfile.vmSize).toBe('Standard_B2s');
    expect(vm.storageProfile.imageReference).toEqual({ publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' });
    expect(vm.storageProfile.osDisk).toMatchObject({ deleteOption: 'Delete', name: 'h1-osdisk' });
    const key = await SshKeyPair.read(azure.sshKeyPath());
    expect(key.type).toBe('rsa');
    expect(vm.osProfile.linuxConfiguration.ssh.publicKeys).toEqual([{ path: '/home/docker-user/.ssh/authorized_keys', keyData: key.publicKey }]);
    expect(vm.osProfile.linuxConfiguration.disablePasswordAuthentication).toBe(true);
    expect(fake.ofType('Microsoft.Compute/disks')).toHaveLength(1);

    expect(await azure.state()).toBe(MachineState.Running);
    expect(await azure.ip()).toBe(fake.publicAddress);
    expect(await azure.url()).toBe(`tcp://${fake.publicAddress}:2376`);
    expect(lastSaved().created).toMatchObject({ resourceGroup: true, networkSecurityGroup: 'h1-nsg', virtualNetwork: 'berth-vnet', publicIp: 'h1-ip', networkInterface: 'h1-nic', virtualMachine: 'h1', osDisk: 'h1-osdisk' });

    await azure.stop();
    expect(fake.callsOf('virtualMachines.deallocate')).toHaveLength(1);
    expect(await azure.state()).toBe(MachineState.Stopped);
    await azure.start();
    expect(await azure.state()).toBe(MachineState.Running);
    await azure.restart();
    expect(fake.callsOf('virtualMachines.restart')).toHaveLength(1);
    await azure.kill();
    expect(fake.callsOf('virtualMachines.powerOff')[0]!.path).toBeDefined();
    expect(await azure.state()).toBe(MachineState.Stopped);

    const again = driver.create({ context: ctx.context, config: ctx.saved.at(-1) as DriverConfig });
    await again.remove();
    expect(fake.leftovers()).toEqual([]);
    expect(lastSaved().created).toEqual({});
    await again.remove();
  });

  test('a VM whose provisioning fails is removed with everything made before it', async () => {
    fake.failVmProvisioning = true;
    const error = await newDriver().create().catch((e: unknown) => e);
    expect(hasKind(error, 'Unavailable')).toBe(true);
    expect((error as AzureDriverError).armCode).toBe('AllocationFailed');
    // The failed VM existed (as on Azure) and was deleted, then the rest in reverse order.
    expect(fake.callsOf('virtualMachines.delete')).toHaveLength(1);
    expect(fake.leftovers()).toEqual([]);
  });

  test('a VM that never reaches running times out and is removed', async () => {
    fake.neverRunning = true;
    const error = await newDriver({ 'azure-wait-timeout': 2 }).create().catch((e: unknown) => e);
    expect(hasCode(error, DriverErrorCode.StateTimeout)).toBe(true);
    expect(fake.leftovers()).toEqual([]);
  });

  test('throttled calls are retried after Retry-After, and operations polled while in progress', async () => {
    await fake.close();
    fake = await FakeArm.start({ transitionPolls: 1 });
    await writeFile(join(dir, 'ca.pem'), fake.caCertificate);
    fake.faults.throttle('virtualMachines.createOrUpdate', 1).throttle('networkInterfaces.createOrUpdate', 2);
    const azure = newDriver();
    await azure.create();
    expect(fake.faults.answered).toHaveLength(3);
    expect(fake.ofType('Microsoft.Compute/virtualMachines')).toHaveLength(1);
    expect(await azure.state()).toBe(MachineState.Running);
    await azure.remove();
    expect(fake.leftovers()).toEqual([]);
  });

  test('a vnet shared by two hosts goes with the last one; a group Berth did not make stays', async () => {
    const group = fake.seedResourceGroup('shared-rg', 'westeurope');
    const ctx2 = await makeTestDriverContext('h2');
    try {
      const first = newDriver({ 'azure-resource-group': 'shared-rg', 'azure-location': 'westeurope', 'azure-open-port': ['8080'] });
      await first.create();
      const second = driver.create({ context: ctx2.context, flags: flags({ 'azure-resource-group': 'shared-rg', 'azure-location': 'westeurope', 'azure-no-public-ip': true }) });
      await second.create();
      // The second host reused the vnet the first one made, and has no public address.
      expect(fake.ofType('Microsoft.Network/virtualNetworks')).toHaveLength(1);
      expect(fake.ofType('Microsoft.Network/publicIPAddresses')).toHaveLength(1);
      expect(await second.ip()).toMatch(/^10\.0\.0\./);
      // rm of the host that made the vnet leaves it while the other host uses it...
      await first.remove();
      expect(fake.ofType('Microsoft.Network/virtualNetworks')).toHaveLength(1);
      // ...and the last host removes it, though it did not make it.
      await second.remove();
      expect(fake.leftovers()).toEqual([]);
      expect(fake.get(group.id)).toBe(group);
    } finally {
      await ctx2.cleanup();
    }
  });

  test('a resource group Berth made for one host and another host used goes with the last one', async () => {
    const ctx2 = await makeTestDriverContext('h2');
    try {
      const first = newDriver({ 'azure-resource-group': 'team-rg' });
      await first.create();
      const second = driver.create({ context: ctx2.context, flags: flags({ 'azure-resource-group': 'team-rg' }) });
      await second.create();
      await first.remove();
      expect(fake.get(`/subscriptions/${fake.subscriptionId}/resourceGroups/team-rg`)).toBeDefined();
      await second.remove();
      expect(fake.leftovers()).toEqual([]);
    } finally {
      await ctx2.cleanup();
    }
  });

  test('a wrong client secret fails the pre-create check as PermissionDenied', async () => {
    const error = await newDriver({ 'azure-client-secret': 'wrong' }).preCreateCheck().catch((e: unknown) => e);
    expect(hasKind(error, 'PermissionDenied')).toBe(true);
    expect(fake.leftovers()).toEqual([]);
  });
});
