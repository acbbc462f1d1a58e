import { readFileSync } from 'node:fs';

/**
 * The start time of a process (field 22 of /proc/<pid>/stat), empty when it does not exist.
 * procfs answers from memory: a synchronous read is cheaper than a thread-pool round trip.
 */
export async function processStartTime(pid: number): Promise<string> {
  if (!Number.isInteger(pid) || pid <= 0) return '';
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // A zombie is dead for every purpose here (its parent has not reaped it yet).
    if (fields[0] === 'Z' || fields[0] === 'X') return '';
    return fields[19] ?? '';
  } catch {
    return '';
  }
}

/** True while the process `pid` that started at `startTime` still runs (a reused pid does not count). */
export async function processAlive(pid: number, startTime: string): Promise<boolean> {
  const now = await processStartTime(pid);
  return now !== '' && (startTime === '' || now === startTime);
}
