import type { JsonMessage } from '../types/common.js';

const sizeUnits = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

// Go's %.4g: four significant digits, trailing zeros dropped.
function fourSignificant(n: number): string {
  return Number(n.toPrecision(4)).toString();
}

/** docker's `units.HumanSize`: decimal units, four significant digits (`1.23MB`, `4.26kB`). */
export function humanSize(bytes: number): string {
  let size = bytes;
  let unit = 0;
  while (size >= 1000 && unit < sizeUnits.length - 1) {
    size /= 1000;
    unit++;
  }
  return `${fourSignificant(size)}${sizeUnits[unit]}`;
}

/** docker's progress bar text (`JSONProgress.String`): `[=====>     ]  1.2MB/3.4MB`. */
export function progressBar(current: number, total: number): string {
  if (total <= 0) return `${humanSize(current).padStart(8)}`;
  const width = 50;
  const filled = Math.min(width, Math.floor((current / total) * width));
  const bar = `[${'='.repeat(filled)}${filled < width ? '>' : ''}${' '.repeat(Math.max(0, width - filled - 1))}] `;
  return `${bar}${humanSize(current).padStart(8)}/${humanSize(total)}`;
}

/** A library progress event (`{id, status, current, total}`) as one line of docker's JSON message stream. */
export function progressMessage(event: { readonly id?: string; readonly status: string; readonly current?: number; readonly total?: number }): JsonMessage {
  const hasBytes = event.current !== undefined;
  return {
    status: event.status,
    ...(event.id !== undefined ? { id: event.id } : {}),
    ...(hasBytes ? { progressDetail: { current: event.current!, ...(event.total !== undefined ? { total: event.total } : {}) } } : { progressDetail: {} }),
    ...(hasBytes ? { progress: progressBar(event.current!, event.total ?? 0) } : {}),
  };
}
