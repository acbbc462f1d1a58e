import { readFileSync } from 'node:fs';

/**
 * The fields of /proc/<pid>/stat after the command name (the state is the first), or undefined
 * when the process does not exist. procfs answers from memory: a synchronous read is cheaper
 * than a thread-pool round trip.
 */
function statFields(pid: number): string[] | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The start time of a process (field 22 of /proc/<pid>/stat), empty when it does not exist. */
export async function processStartTime(pid: number): Promise<string> {
  const fields = statFields(pid);
  // A zombie is dead for every purpose here (its parent has not reaped it yet).
  if (!fields || fields[0] === 'Z' || fields[0] === 'X') return '';
  return fields[19] ?? '';
}

/** True while the process `pid` that started at `startTime` still runs (a reused pid does not count). */
export async function processAlive(pid: number, startTime: string): Promise<boolean> {
  const now = await processStartTime(pid);
  return now !== '' && (startTime === '' || now === startTime);
}

/** The parent of a process (field 4 of /proc/<pid>/stat); 0 when it is gone. */
export function parentPid(pid: number): number {
  return Number(statFields(pid)?.[1] ?? 0) || 0;
}
