import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { modulesLoadedBy } from '@berth/tools/fakes/module-loads';

// Any cloud SDK, and what they are built on.
const cloudSdk = /\/node_modules\/(@aws-sdk|@aws-crypto|@smithy|@google-cloud|google-gax|google-auth-library|@grpc|protobufjs|@azure)\//;

test('importing the package for its flags loads no cloud SDK module', async () => {
  const loaded = await modulesLoadedBy('@berth/driver-azure', 'm.driver.flags.length', fileURLToPath(new URL('..', import.meta.url)));
  expect(loaded.some((url) => url.includes('/driver-azure/dist/index.js'))).toBe(true);
  expect(loaded.filter((url) => cloudSdk.test(url))).toEqual([]);
});
