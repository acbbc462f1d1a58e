import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { waitForSsh } from '@berth/machine';
import { FakeArm } from '@berth/tools/fakes/arm';
import { makeTestDriverContext, type TestDriverContext } from '@berth/tools/fakes/driver-context';
import { authorizeGuestKey } from '@berth/tools/fakes/guest';
import { HostRig, missingTools, type RigHost } from '@berth/tools/host-rig';
import { driver } from './index.js';

const missing = await missingTools();

// The fake ARM gives public IPs a rig host's address.
describe.skipIf(missing.length > 0)(`azure driver up to SSH readiness on a rig host${missing.length ? ` (skipped: needs ${missing.join(', ')})` : ''}`, () => {
  let rig: HostRig;
  let host: RigHost;
  let fake: FakeArm;
  let ctx: TestDriverContext;
  let dir: string;

  beforeAll(async () => {
    rig = await HostRig.create({ nat: false });
    host = await rig.addHost({ name: 'az1' });
    fake = await FakeArm.start();
    fake.publicAddress = host.ip;
    dir = await mkdtemp(join(tmpdir(), 'berth-azure-ssh-'));
    await writeFile(join(dir, 'ca.pem'), fake.caCertificate);
    ctx = await makeTestDriverContext('az1');
  });

  afterAll(async () => {
    await fake?.close();
    await rig?.close();
    await ctx?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('create, then SSH answers as the admin user with the osProfile key; rm leaves nothing', async () => {
    const azure = driver.create({
      context: ctx.context,
      flags: {
        'azure-subscription-id': fake.subscriptionId,
        'azure-tenant-id': fake.tenantId,
        'azure-client-id': fake.clientId,
        'azure-client-secret': fake.clientSecret,
        'azure-endpoint': fake.url,
        'azure-authority-host': fake.url,
        'azure-ca-bundle': join(dir, 'ca.pem'),
      },
    });
    await azure.create();
    // What the Azure Linux agent does with osProfile: the admin user and its authorized key.
    const vm = fake.ofType('Microsoft.Compute/virtualMachines')[0]!.body['properties'] as {
      osProfile: { adminUsername: string; linuxConfiguration: { ssh: { publicKeys: { keyData: string }[] } } };
    };
    await authorizeGuestKey(host, vm.osProfile.adminUsername, vm.osProfile.linuxConfiguration.ssh.publicKeys[0]!.keyData);
    const session = await waitForSsh({
      host: await azure.sshHostname(),
      port: await azure.sshPort(),
      username: azure.sshUser(),
      privateKeys: [await readFile(azure.sshKeyPath()!, 'utf8')],
      hostKey: { knownHostsPath: join(ctx.context.machineDir, 'known_hosts'), alias: 'az1' },
      timeoutMs: 30_000,
      intervalMs: 500,
    });
    try {
      // Output, not the exit status: SshSession.exec sometimes reports 255 for a command that exited 0 (reported to #7).
      expect((await session.exec('id -un && hostname')).stdout.trim().split('\n')).toEqual(['docker-user', 'az1']);
    } finally {
      session.close();
    }
    await azure.remove();
    expect(fake.leftovers()).toEqual([]);
  });
});
