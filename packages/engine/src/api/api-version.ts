/**
 * The API versions the server speaks. 1.47 (docker 27.3) is the newest whose shapes Berth fills:
 * 1.48 adds image manifests/descriptors in inspect and list, platform selection on save/load and
 * image mounts, which Berth does not implement. 1.24 is docker's own floor.
 */
export const maxApiVersion = '1.47';
export const minApiVersion = '1.24';

/** Compares two `major.minor` versions: negative, zero or positive. */
export function compareApiVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am !== bm ? am - bm : an - bn;
}

/** True when `version` is at least `floor`. */
export function apiVersionAtLeast(version: string, floor: string): boolean {
  return compareApiVersions(version, floor) >= 0;
}
