import { watch, type FSWatcher } from 'node:fs';
import { attachSocket } from '@berth/runtime';

/**
 * Change notification for container records: changes made in this process are announced
 * directly; changes made by other processes (another CLI, the supervisor) show as renames in
 * the containers directory and in the container's own, which inotify reports.
 */
export class RecordWatch {
  readonly #containersDir: string;
  readonly #waiters = new Map<string, Set<() => void>>();

  constructor(containersDir: string) {
    this.#containersDir = containersDir;
  }

  /** Tells this process's waiters that the record of `id` changed. */
  notify(id: string): void {
    for (const wake of this.#waiters.get(id) ?? []) wake();
  }

  /**
   * Resolves at the next change of the container's record (or its removal), or when `also`
   * settles, or when the signal fires. Call it before re-reading the record, so that nothing is
   * missed in between: `const changed = watch.next(id); const r = await read(); ...; await changed`.
   */
  next(id: string, options: { readonly signal?: AbortSignal; readonly also?: Promise<unknown> } = {}): { readonly changed: Promise<void>; cancel(): void } {
    let wake!: () => void;
    const changed = new Promise<void>((resolve) => (wake = resolve));
    const watchers: FSWatcher[] = [];
    const set = this.#waiters.get(id) ?? new Set();
    this.#waiters.set(id, set);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      set.delete(finish);
      if (set.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
      for (const w of watchers) w.close();
      options.signal?.removeEventListener('abort', finish);
      wake();
    };
    set.add(finish);
    options.signal?.addEventListener('abort', finish, { once: true });
    void options.also?.then(finish, finish);
    // Persistent: the change awaited may come from another process (one that finished and is
    // removing the container), and a waiter with nothing else to do must still be there to see it.
    // Every caller ends its wait with its signal or with the engine's close.
    for (const dir of [this.#containersDir, `${this.#containersDir}/${id}`]) {
      try {
        const w = watch(dir, (_event, file) => {
          if (dir === this.#containersDir ? file === id || file === null : file === 'config.v2.json' || file === null) finish();
        });
        w.on('error', finish);
        watchers.push(w);
      } catch {
        // The container's directory is gone: that is a change.
        finish();
      }
    }
    return { changed, cancel: finish };
  }
}

/**
 * Resolves when the monitor of a running container ends (the container exited), by holding a
 * connection to its attach socket, which the monitor closes last. Resolves at once when nothing
 * listens there any more.
 */
export async function monitorGone(socketPath: string, signal?: AbortSignal): Promise<void> {
  let session;
  try {
    session = await attachSocket(socketPath, signal ? { signal } : {});
  } catch {
    return;
  }
  session.stdout.resume();
  session.stderr.resume();
  const onAbort = () => session.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await session.exit;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
