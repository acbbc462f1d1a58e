import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { promisify } from 'node:util';

/**
 * `count` distinct 10.200-249.x.0/24 subnets that no route of the host overlaps (a crashed
 * run's leftovers included), for the bridges of a test or benchmark.
 */
export async function freeSubnets(count: number): Promise<string[]> {
  const { stdout: routes } = await promisify(execFile)('ip', ['-4', 'route', 'show', 'table', 'all']);
  const picked = new Set<string>();
  while (picked.size < count) {
    const prefix = `10.${randomInt(200, 250)}.${randomInt(0, 250)}.`;
    if (!routes.includes(prefix)) picked.add(prefix);
  }
  return [...picked].map((p) => `${p}0/24`);
}

/** One subnet of `freeSubnets`. */
export async function freeSubnet(): Promise<string> {
  return (await freeSubnets(1))[0]!;
}
