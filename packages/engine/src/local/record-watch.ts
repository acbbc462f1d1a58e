import { watch, type FSWatcher } from 'node:fs';
import { attachSocket, type AttachSession } from '@berth/runtime';

/**
 * Change notification for container records: changes made in this process are announced
 * directly; changes made by other processes (another CLI, the supervisor) show as renames in
 * the container's directory (a record replaced) or of the directory itself (the container
 * removed), which inotify reports. Not the containers directory: adding a watch there makes the
 * kernel visit every name it ever held (negative dentries included), which grows with every
 * container a host has run.
 */
export class RecordWatch {
  readonly #containersDir: string;
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #sessions = new Map<string, AttachSession>();

  constructor(containersDir: string) {
    this.#containersDir = containersDir;
  }

  /**
   * Records a connection of this process to a monitor's attach socket, for `monitorGone` to
   * share while it lasts.
   */
  attached(socketPath: string, session: AttachSession): void {
    this.#sessions.set(socketPath, session);
    void session.exit.then(() => {
      if (this.#sessions.get(socketPath) === session) this.#sessions.delete(socketPath);
    });
  }

  /** The end of a container's monitor (`monitorGone`), told by this process's own session to it when there is one. */
  monitorGone(socketPath: string, signal?: AbortSignal): Promise<void> {
    return monitorGone(socketPath, signal, this.#sessions.get(socketPath));
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
    let watcher: FSWatcher | undefined;
    const set = this.#waiters.get(id) ?? new Set();
    this.#waiters.set(id, set);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      set.delete(finish);
      if (set.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
      watcher?.close();
      options.signal?.removeEventListener('abort', finish);
      wake();
    };
    set.add(finish);
    options.signal?.addEventListener('abort', finish, { once: true });
    void options.also?.then(finish, finish);
    // Persistent: the change awaited may come from another process (one that finished and is
    // removing the container), and a waiter with nothing else to do must still be there to see it.
    // Every caller ends its wait with its signal or with the engine's close.
    try {
      // The directory's own events (renamed away, deleted) carry its name.
      watcher = watch(`${this.#containersDir}/${id}`, (_event, file) => {
        if (file === 'config.v2.json' || file === id || file === null) finish();
      });
      watcher.on('error', finish);
    } catch {
      // The container's directory is gone: that is a change.
      finish();
    }
    return { changed, cancel: finish };
  }
}

/**
 * Resolves when the monitor of a running container ends (the container exited), by holding a
 * connection to its attach socket, which the monitor closes last. Resolves at once when nothing
 * listens there any more. A session this process already holds there (`shared`) serves when it
 * ends with the exit: the monitor then does not wait for a second client to let go.
 */
async function monitorGone(socketPath: string, signal?: AbortSignal, shared?: AttachSession): Promise<void> {
  if (shared) {
    let stop = () => {};
    const aborted = new Promise<undefined>((resolve) => {
      stop = () => resolve(undefined);
      signal?.addEventListener('abort', stop, { once: true });
    });
    const code = await Promise.race([shared.exit, aborted]);
    signal?.removeEventListener('abort', stop);
    // Closed before the exit (its owner detached): the monitor may live on.
    if (code !== undefined || signal?.aborted) return;
  }
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
