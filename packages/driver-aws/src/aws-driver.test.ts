import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { hasCode, hasKind } from '@berth/errors';
import { DriverErrorCode, MachineState, SshKeyPair, resolveFlagValues, type DriverConfig, type FlagValues } from '@berth/machine';
import { FakeEc2 } from '@berth/tools/fakes/ec2';
import { makeTestDriverContext, type TestDriverContext } from '@berth/tools/fakes/driver-context';
import { driver, type AwsDriver, type AwsDriverConfig } from './index.js';

let fake: FakeEc2;
let ctx: TestDriverContext;

beforeEach(async () => {
  fake = await FakeEc2.start({ region: 'eu-west-1' });
  ctx = await makeTestDriverContext('h1');
});

afterEach(async () => {
  await fake.close();
  await ctx.cleanup();
});

function flags(extra: FlagValues = {}): FlagValues {
  return {
    'aws-endpoint': fake.url,
    'aws-region': 'eu-west-1',
    'aws-access-key': fake.accessKeyId,
    'aws-secret-key': 'secret',
    'aws-wait-timeout': 30,
    ...extra,
  };
}

function newDriver(extra: FlagValues = {}): AwsDriver {
  return driver.create({ context: ctx.context, flags: flags(extra) }) as AwsDriver;
}

function lastSaved(): AwsDriverConfig {
  return ctx.saved.at(-1) as unknown as AwsDriverConfig;
}

describe('aws driver against a fake EC2', () => {
  test('create, state, stop, start, restart, kill and rm through the SDK leave nothing behind', async () => {
    const aws = newDriver({ 'aws-tags': 'team,infra,env,test' });
    await aws.preCreateCheck();
    await aws.create();

    const [instance] = [...fake.instances.values()];
    expect(instance).toBeDefined();
    // The newest Noble amd64 AMI of Canonical, not the arm64 or the older build.
    expect(instance!.imageId).toBe(fake.newestNobleAmd64.imageId);
    expect(instance!.instanceType).toBe('t3.micro');
    expect(instance!.availabilityZone).toBe('eu-west-1a');
    expect(instance!.metadataHttpTokens).toBe('required');
    expect(instance!.tags).toEqual(expect.arrayContaining([{ key: 'Name', value: 'h1' }, { key: 'team', value: 'infra' }, { key: 'env', value: 'test' }]));
    const volume = fake.volumes.get(instance!.rootVolumeId)!;
    expect(volume).toMatchObject({ size: 16, volumeType: 'gp3', deleteOnTermination: true, deviceName: '/dev/sda1' });

    // The key pair holds the public half of the key the driver wrote into the host directory.
    const key = await SshKeyPair.read(aws.sshKeyPath());
    expect(fake.keyPairs.get(instance!.keyName!)!.publicKey).toBe(key.publicKey);
    expect(aws.sshKeyPath()).toBe(join(ctx.context.machineDir, 'id_ed25519'));

    // A group made for this host, open on 22 and 2376.
    const group = fake.securityGroups.get(instance!.securityGroupIds[0]!)!;
    expect(group.groupName).toBe('berth-h1');
    expect(group.ingress.map((r) => `${r.fromPort}/${r.protocol} ${r.cidr}`).sort()).toEqual(['22/tcp 0.0.0.0/0', '2376/tcp 0.0.0.0/0']);

    expect(await aws.state()).toBe(MachineState.Running);
    expect(await aws.ip()).toBe(fake.publicAddress);
    expect(await aws.sshHostname()).toBe(fake.publicAddress);
    expect(await aws.sshPort()).toBe(22);
    expect(aws.sshUser()).toBe('ubuntu');
    expect(await aws.url()).toBe(`tcp://${fake.publicAddress}:2376`);
    expect(lastSaved()).toMatchObject({ instanceId: instance!.instanceId, ipAddress: fake.publicAddress, created: { keyPair: instance!.keyName } });

    await aws.stop();
    expect(instance!.state).toBe('stopped');
    expect(await aws.state()).toBe(MachineState.Stopped);
    expect(fake.callsOf('StopInstances')[0]!.params['Force']).toBeUndefined();

    await aws.start();
    expect(await aws.state()).toBe(MachineState.Running);

    await aws.restart();
    expect(fake.callsOf('RebootInstances')).toHaveLength(1);

    await aws.kill();
    expect(fake.callsOf('StopInstances').at(-1)!.params['Force']).toBe('true');
    expect(await aws.state()).toBe(MachineState.Stopped);

    // rm on a driver made from the saved config, as the CLI does.
    const again = driver.create({ context: ctx.context, config: ctx.saved.at(-1) as DriverConfig });
    await again.remove();
    expect(instance!.state).toBe('terminated');
    expect(fake.leftovers()).toEqual([]);
    expect(lastSaved().created).toEqual({ securityGroupIds: [] });
    // rm twice is fine: nothing is left to remove.
    await again.remove();
  });

  test('throttled calls are retried by the SDK and the create succeeds', async () => {
    fake.faults.throttle('RunInstances', 2).throttle('DescribeInstances', 1).throttle('ImportKeyPair', 1);
    const aws = newDriver();
    await aws.create();
    expect(await aws.state()).toBe(MachineState.Running);
    expect(fake.faults.answered.map((a) => a.operation).sort()).toEqual(['DescribeInstances', 'ImportKeyPair', 'RunInstances', 'RunInstances']);
    expect(fake.callsOf('RunInstances')).toHaveLength(3);
    // The retried RunInstances reuse one idempotency token.
    expect(new Set(fake.callsOf('RunInstances').map((c) => c.params['ClientToken'])).size).toBe(1);
    expect(fake.instances.size).toBe(1);
    await aws.remove();
    expect(fake.leftovers()).toEqual([]);
  });

  test('an instance that never becomes running times out and the failed create removes everything', async () => {
    fake.neverRunning = true;
    const aws = newDriver({ 'aws-wait-timeout': 2 });
    const error = await aws.create().catch((e: unknown) => e);
    expect(hasCode(error, DriverErrorCode.StateTimeout)).toBe(true);
    expect(fake.instances.size).toBe(1);
    expect(fake.leftovers()).toEqual([]);
    expect(lastSaved().instanceId).toBeUndefined();
    expect(lastSaved().created).toEqual({ securityGroupIds: [] });
  });

  test('a failure in the middle of create removes the key pair and group made before it', async () => {
    fake.faults.fail('RunInstances', 1, 'InsufficientInstanceCapacity');
    const aws = newDriver({ 'aws-retries': 0 });
    const error = await aws.create().catch((e: unknown) => e);
    expect(hasKind(error, 'Unavailable')).toBe(true);
    expect(fake.callsOf('ImportKeyPair')).toHaveLength(1);
    expect(fake.callsOf('CreateSecurityGroup')).toHaveLength(1);
    expect(fake.leftovers()).toEqual([]);
  });

  test('rm after the CLI died mid-create finds the instance by its saved client token', async () => {
    // The CLI "dies" right after saving the client token, before RunInstances answers are saved.
    ctx.crashWhen((config) => (config as AwsDriverConfig).instanceId !== undefined);
    await expect(newDriver().create()).rejects.toThrow();
    // The dead CLI's cleanup could not save anything; the instance exists and only the token was saved.
    expect(fake.instances.size).toBe(1);
    const saved = lastSaved();
    expect(saved.instanceId).toBeUndefined();
    expect(saved.clientToken).toBeDefined();
    const fresh = await makeTestDriverContext('h1');
    try {
      const later = driver.create({ context: fresh.context, config: saved as unknown as DriverConfig });
      await later.remove();
      expect(fake.leftovers()).toEqual([]);
    } finally {
      await fresh.cleanup();
    }
  });

  test('a reused group, an existing key pair, spot, private address, profile and user data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-aws-test-'));
    try {
      const key = await SshKeyPair.generate({ type: 'rsa', bits: 2048 });
      await key.write(join(dir, 'mykey'));
      await writeFile(join(dir, 'user-data'), '#cloud-config\npackages: [jq]\n');
      const pair = fake.seedKeyPair('team-key', key.publicKey);
      const shared = fake.seedSecurityGroup('shared-sg');
      const aws = newDriver({
        'aws-security-group': ['shared-sg', 'extra-sg'],
        'aws-open-port': ['8080', '53/udp'],
        'aws-keypair-name': 'team-key',
        'aws-ssh-keypath': join(dir, 'mykey'),
        'aws-request-spot-instance': true,
        'aws-spot-price': '0.05',
        'aws-private-address-only': true,
        'aws-iam-instance-profile': 'berth-role',
        'aws-userdata': join(dir, 'user-data'),
        'aws-instance-type': 'm7i.large',
        'aws-root-size': 40,
        'aws-volume-type': 'gp2',
        'aws-zone': 'b',
      });
      await aws.create();
      const [instance] = [...fake.instances.values()];
      expect(instance!.keyName).toBe('team-key');
      expect(instance!.publicIpAddress).toBeUndefined();
      expect(instance!.iamInstanceProfile).toBe('berth-role');
      expect(instance!.instanceType).toBe('m7i.large');
      expect(instance!.availabilityZone).toBe('eu-west-1b');
      expect(Buffer.from(instance!.userData!, 'base64').toString()).toContain('packages: [jq]');
      expect(fake.volumes.get(instance!.rootVolumeId)).toMatchObject({ size: 40, volumeType: 'gp2' });
      expect(fake.spotRequests.get(instance!.spotInstanceRequestId!)).toMatchObject({ maxPrice: '0.05', state: 'active' });
      expect(instance!.securityGroupIds[0]).toBe(shared.groupId);
      expect(shared.ingress.map((r) => `${r.fromPort}/${r.protocol}`).sort()).toEqual(['22/tcp', '2376/tcp', '53/udp', '8080/tcp']);
      expect(await aws.ip()).toBe(instance!.privateIpAddress);
      // The given RSA key was copied into the host directory.
      expect(aws.sshKeyPath()).toBe(join(ctx.context.machineDir, 'id_rsa'));
      expect(await readFile(aws.sshKeyPath(), 'utf8')).toBe(key.privateKey);

      await aws.remove();
      expect(fake.spotRequests.get(instance!.spotInstanceRequestId!)!.state).toBe('cancelled');
      expect(fake.leftovers()).toEqual([]);
      // What existed before stays.
      expect(fake.securityGroups.get(shared.groupId)).toBeDefined();
      expect(fake.keyPairs.get('team-key')).toBe(pair);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a group one host made and another reused goes with the last host using it', async () => {
    const ctx2 = await makeTestDriverContext('h2');
    try {
      const first = newDriver({ 'aws-security-group': ['team-sg'] });
      await first.create();
      const second = driver.create({ context: ctx2.context, flags: flags({ 'aws-security-group': ['team-sg'] }) });
      await second.create();
      expect([...fake.securityGroups.values()].filter((g) => g.groupName === 'team-sg')).toHaveLength(1);
      await first.remove();
      expect([...fake.securityGroups.values()].filter((g) => g.groupName === 'team-sg')).toHaveLength(1);
      await second.remove();
      expect(fake.leftovers()).toEqual([]);
    } finally {
      await ctx2.cleanup();
    }
  });

  test('credentials come from the standard chain (a shared credentials file and --aws-profile)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-aws-creds-'));
    const saved = { ...process.env };
    try {
      await writeFile(join(dir, 'credentials'), `[berth-test]\naws_access_key_id = ${fake.accessKeyId}\naws_secret_access_key = s\n`);
      process.env['AWS_SHARED_CREDENTIALS_FILE'] = join(dir, 'credentials');
      process.env['AWS_CONFIG_FILE'] = join(dir, 'none');
      // Never fall through to the instance metadata service from a test.
      process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
      const aws = driver.create({ context: ctx.context, flags: { 'aws-endpoint': fake.url, 'aws-region': 'eu-west-1', 'aws-profile': 'berth-test' } });
      await aws.preCreateCheck();
      expect(fake.callsOf('DescribeAccountAttributes')).toHaveLength(1);

      const wrong = driver.create({ context: ctx.context, flags: flags({ 'aws-access-key': 'AKIAWRONG', 'aws-retries': 0 }) });
      const error = await wrong.preCreateCheck().catch((e: unknown) => e);
      expect(hasKind(error, 'PermissionDenied')).toBe(true);
    } finally {
      process.env = saved;
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('flag values are checked before anything is made', () => {
    expect(() => newDriver({ 'aws-tags': 'a,b,c' })).toThrow(/--aws-tags/);
    expect(() => newDriver({ 'aws-zone': 'eu-west-1a' })).toThrow(/--aws-zone/);
    expect(() => newDriver({ 'aws-keypair-name': 'k' })).toThrow(/--aws-ssh-keypath/);
    expect(() => newDriver({ 'aws-open-port': ['http'] })).toThrow(/--aws-open-port/);
    expect(fake.calls).toEqual([]);
  });

  test('a docker-machine command line (amazonec2- flags, AWS_* env vars) creates the same host', async () => {
    const values = resolveFlagValues(
      driver.flags,
      { 'amazonec2-region': 'eu-west-1', 'amazonec2-instance-type': 't3.large', 'amazonec2-endpoint': fake.url, 'amazonec2-root-size': 32 },
      { AWS_ACCESS_KEY_ID: fake.accessKeyId, AWS_SECRET_ACCESS_KEY: 'secret', AWS_SECURITY_GROUP: 'docker-machine' },
    );
    const aws = driver.create({ context: ctx.context, flags: values });
    await aws.create();
    const [instance] = [...fake.instances.values()];
    expect(instance).toMatchObject({ instanceType: 't3.large', availabilityZone: 'eu-west-1a' });
    expect(fake.volumes.get(instance!.rootVolumeId)!.size).toBe(32);
    expect(fake.securityGroups.get(instance!.securityGroupIds[0]!)!.groupName).toBe('docker-machine');
    await aws.remove();
    expect(fake.leftovers()).toEqual([]);
  });

  test('every flag has docker-machine\'s amazonec2- spelling as an alias', () => {
    for (const flag of driver.flags) expect(flag.aliases).toEqual([flag.name.replace(/^aws-/, 'amazonec2-')]);
    expect(driver.aliases).toEqual(['amazonec2']);
  });
});
