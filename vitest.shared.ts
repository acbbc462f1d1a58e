import { defineConfig } from 'vitest/config';

// One config for every project: tests import workspace packages from source through the
// @berth/source export condition, and run as separate processes because many of them
// create namespaces, mounts and cgroups.
export default defineConfig({
  root: process.cwd(),
  resolve: { conditions: ['@berth/source'] },
  ssr: { resolve: { conditions: ['@berth/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', '*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
});
