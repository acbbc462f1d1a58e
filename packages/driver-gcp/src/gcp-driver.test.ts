import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { hasCode, hasKind } from '@berth/errors';
import { DriverErrorCode, MachineState, SshKeyPair, resolveFlagValues, type DriverConfig, type FlagValues } from '@berth/machine';
import { FakeGce } from '@berth/tools/fakes/gce';
import { makeTestDriverContext, type TestDriverContext } from '@berth/tools/fakes/driver-context';
import { driver, GcpErrorCode, type GcpDriver, type GcpDriverConfig } from './index.js';

let fake: FakeGce;
let ctx: TestDriverContext;
let keyDir: string;

beforeAll(async () => {
  keyDir = await mkdtemp(join(tmpdir(), 'berth-gcp-key-'));
});

afterAll(async () => {
  await rm(keyDir, { recursive: true, force: true });
});

beforeEach(async () => {
  fake = await FakeGce.start();
  await fake.writeServiceAccountKey(join(keyDir, 'key.json'));
  ctx = await makeTestDriverContext('h1');
});

afterEach(async () => {
  await fake.close();
  await ctx.cleanup();
});

function newDriver(extra: FlagValues = {}): GcpDriver {
  const flags: FlagValues = {
    'gcp-project': fake.project,
    'gcp-endpoint': fake.url,
    'gcp-credentials-file': join(keyDir, 'key.json'),
    'gcp-operation-timeout': 30,
    ...extra,
  };
  return driver.create({ context: ctx.context, flags }) as GcpDriver;
}

function lastSaved(): GcpDriverConfig {
  return ctx.saved.at(-1) as unknown as GcpDriverConfig;
}

describe('gcp driver against a fake Compute Engine', () => {
  test('create, state, stop, start, restart and rm through the REST client leave nothing behind', async () => {
    const gcp = newDriver({ 'gcp-tags': 'web,docker' });
    await gcp.preCreateCheck();
    await gcp.create();

    const instance = fake.instances.get('us-central1-a/h1')!;
    expect(instance).toBeDefined();
    expect(instance.machineType).toBe('zones/us-central1-a/machineTypes/e2-small');
    expect(instance.body['tags']).toEqual({ items: ['web', 'docker', 'berth-h1'] });
    const disk = fake.disks.get('us-central1-a/h1')!;
    expect(disk).toMatchObject({ sizeGb: '20', type: 'pd-balanced', autoDelete: true, sourceImage: 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64' });
    // The SSH key in the metadata is the public half of the key written into the host directory.
    const key = await SshKeyPair.read(gcp.sshKeyPath());
    const metadata = instance.body['metadata'] as { items: { key: string; value: string }[] };
    expect(metadata.items).toEqual([{ key: 'ssh-keys', value: `docker-user:${key.publicKey.split(' ').slice(0, 2).join(' ')} docker-user` }]);
    expect(instance.body['serviceAccounts']).toEqual([{ email: 'default', scopes: ['https://www.googleapis.com/auth/devstorage.read_only', 'https://www.googleapis.com/auth/logging.write'] }]);
    // The host's own firewall rule opens SSH and 2376 to its tag.
    const rule = fake.firewalls.get('berth-h1')!;
    expect(rule.body).toMatchObject({ targetTags: ['berth-h1'], sourceRanges: ['0.0.0.0/0'], allowed: [{ IPProtocol: 'tcp', ports: ['22', '2376'] }] });
    // Operations were waited on, and a token came from the key's token endpoint.
    expect(fake.callsOf('zoneOperations.wait').length).toBeGreaterThan(0);
    expect(fake.callsOf('globalOperations.wait').length).toBeGreaterThan(0);

    expect(await gcp.state()).toBe(MachineState.Running);
    expect(await gcp.ip()).toBe(fake.ephemeralAddress);
    expect(await gcp.url()).toBe(`tcp://${fake.ephemeralAddress}:2376`);
    expect(gcp.sshUser()).toBe('docker-user');
    expect(lastSaved().created).toEqual({ instance: 'h1', disk: 'h1', firewall: 'berth-h1' });

    await gcp.stop();
    expect(instance.status).toBe('TERMINATED');
    expect(await gcp.state()).toBe(MachineState.Stopped);
    await gcp.start();
    expect(await gcp.state()).toBe(MachineState.Running);
    await gcp.restart();
    expect(fake.callsOf('instances.reset')).toHaveLength(1);
    await gcp.kill();
    expect(await gcp.state()).toBe(MachineState.Stopped);

    const again = driver.create({ context: ctx.context, config: ctx.saved.at(-1) as DriverConfig });
    await again.remove();
    expect(fake.leftovers()).toEqual([]);
    await again.remove();
  });

  test('throttled calls are retried and the create succeeds', async () => {
    fake.faults.throttle('instances.insert', 2).throttle('firewalls.insert', 1).throttle('zoneOperations.wait', 1);
    const gcp = newDriver();
    await gcp.create();
    expect(await gcp.state()).toBe(MachineState.Running);
    expect(fake.faults.answered).toHaveLength(4);
    expect(fake.instances.size).toBe(1);
    // Every try of the insert carried the same request ID, so GCE would run it once.
    const ids = fake.callsOf('instances.insert').map((c) => new URLSearchParams(c.path.split('?')[1] ?? '').get('requestId'));
    expect(fake.callsOf('instances.insert')).toHaveLength(3);
    expect(new Set(ids).size).toBe(1);
    await gcp.remove();
    expect(fake.leftovers()).toEqual([]);
  });

  test('an operation that fails half-way through create removes the firewall rule and the address', async () => {
    fake.faults.fail('instances.insert', 1, 'ZONE_RESOURCE_POOL_EXHAUSTED');
    const gcp = newDriver({ 'gcp-static-address': true });
    const error = await gcp.create().catch((e: unknown) => e);
    expect(hasCode(error, GcpErrorCode.Operation)).toBe(true);
    expect(hasKind(error, 'Unavailable')).toBe(true);
    expect(fake.callsOf('addresses.insert')).toHaveLength(1);
    expect(fake.callsOf('firewalls.insert')).toHaveLength(1);
    expect(fake.leftovers()).toEqual([]);
    expect(lastSaved().created).toEqual({});
  });

  test('an instance that never becomes running times out and is removed with its disk', async () => {
    fake.neverRunning = true;
    const gcp = newDriver({ 'gcp-operation-timeout': 2 });
    const error = await gcp.create().catch((e: unknown) => e);
    expect(hasCode(error, DriverErrorCode.StateTimeout)).toBe(true);
    expect(fake.callsOf('instances.delete')).toHaveLength(1);
    expect(fake.leftovers()).toEqual([]);
  });

  test('static address, preemptible, internal address and an existing address', async () => {
    const gcp = newDriver({ 'gcp-static-address': true, 'gcp-preemptible': true, 'gcp-zone': 'europe-west1-b', 'gcp-machine-type': 'n2-standard-2', 'gcp-open-port': ['8080', '53/udp'] });
    await gcp.create();
    const instance = fake.instances.get('europe-west1-b/h1')!;
    expect(instance.body['scheduling']).toMatchObject({ preemptible: true, automaticRestart: false, onHostMaintenance: 'TERMINATE' });
    expect(fake.addresses.get('europe-west1/berth-h1')).toBeDefined();
    expect(instance.natIP).toBe(fake.addresses.get('europe-west1/berth-h1')!.address);
    expect(fake.firewalls.get('berth-h1')!.body['allowed']).toEqual([
      { IPProtocol: 'tcp', ports: ['22', '2376', '8080'] },
      { IPProtocol: 'udp', ports: ['53'] },
    ]);
    await gcp.remove();
    expect(fake.leftovers()).toEqual([]);

    const seeded = fake.seedAddress('team-ip', 'us-central1', '198.51.100.20');
    const ctx2 = await makeTestDriverContext('h2');
    try {
      const other = driver.create({
        context: ctx2.context,
        flags: { 'gcp-project': fake.project, 'gcp-endpoint': fake.url, 'gcp-credentials-file': join(keyDir, 'key.json'), 'gcp-address': 'team-ip', 'gcp-use-internal-ip': true },
      });
      await other.create();
      const h2 = fake.instances.get('us-central1-a/h2')!;
      expect(h2.natIP).toBe(seeded.address);
      expect(await other.ip()).toBe(h2.networkIP);
      await other.remove();
      expect(fake.leftovers()).toEqual([]);
      expect(fake.addresses.get('us-central1/team-ip')).toBe(seeded);
    } finally {
      await ctx2.cleanup();
    }
  });

  test('a key the API does not know is refused as PermissionDenied', async () => {
    const other = await FakeGce.start();
    try {
      await other.writeServiceAccountKey(join(keyDir, 'other.json'));
      const error = await newDriver({ 'gcp-credentials-file': join(keyDir, 'other.json'), 'gcp-retries': 0 }).preCreateCheck().catch((e: unknown) => e);
      expect(hasKind(error, 'PermissionDenied')).toBe(true);
    } finally {
      await other.close();
    }
  });

  test('a wrong project or zone fails the pre-create check before anything is made', async () => {
    const error = await newDriver({ 'gcp-zone': 'mars-central1-a' }).preCreateCheck().catch((e: unknown) => e);
    expect(hasKind(error, 'NotFound')).toBe(true);
    expect(() => newDriver({ 'gcp-project': '' })).toThrow(/--gcp-project/);
    expect(fake.leftovers()).toEqual([]);
  });

  test('a docker-machine command line (google- flags, GOOGLE_* env vars) creates the same host', async () => {
    const values = resolveFlagValues(
      driver.flags,
      { 'google-zone': 'us-central1-b', 'google-machine-type': 'e2-medium', 'google-endpoint': fake.url, 'google-credentials-file': join(keyDir, 'key.json') },
      { GOOGLE_PROJECT: fake.project, GOOGLE_TAGS: 'a,b', GOOGLE_PREEMPTIBLE: '1' },
    );
    const gcp = driver.create({ context: ctx.context, flags: values });
    await gcp.create();
    const instance = fake.instances.get('us-central1-b/h1')!;
    expect(instance.machineType).toBe('zones/us-central1-b/machineTypes/e2-medium');
    expect(instance.body['tags']).toEqual({ items: ['a', 'b', 'berth-h1'] });
    expect(instance.body['scheduling']).toMatchObject({ preemptible: true });
    await gcp.remove();
    expect(fake.leftovers()).toEqual([]);
  });

  test('flags keep docker-machine\'s google- spelling as aliases', () => {
    for (const flag of driver.flags) expect(flag.aliases).toEqual([flag.name.replace(/^gcp-/, 'google-')]);
    expect(driver.aliases).toEqual(['google']);
  });
});
