/**
 * One progress message, shaped like docker's JSON progress stream: `id` is a short layer id
 * (or the tag), `status` the phrase (`Downloading`, `Pull complete`, ...), `current`/`total`
 * the byte counts of a transfer.
 */
export interface ProgressEvent {
  readonly id?: string;
  readonly status: string;
  readonly current?: number;
  readonly total?: number;
}

/**
 * Long work in progress: iterate it for its messages (the iteration ends when the work does,
 * and throws its error), and await `result` for the outcome. Either alone is enough. Pulls and
 * pushes report `ProgressEvent`s; a build reports docker's build messages.
 */
export interface Operation<R, M = ProgressEvent> extends AsyncIterable<M> {
  readonly result: Promise<R>;
}

/** Runs `work`, buffering the messages it emits for one consumer. */
export function startOperation<R, M = ProgressEvent>(work: (emit: (message: M) => void) => Promise<R>): Operation<R, M> {
  const buffer: M[] = [];
  let finished = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const emit = (message: M) => {
    if (finished) return;
    buffer.push(message);
    notify();
  };
  const result = (async () => work(emit))();
  result.then(
    () => {
      finished = true;
      notify();
    },
    (error: unknown) => {
      failure = { error };
      finished = true;
      notify();
    },
  );
  // The caller may only iterate; the error then surfaces there, not as an unhandled rejection.
  result.catch(() => {});
  return {
    result,
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (buffer.length) yield buffer.shift()!;
        if (finished) {
          if (failure) throw failure.error;
          return;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

/** Runs at most `limit` of the queued tasks at a time, in the order they were queued. */
export function createTaskLimit(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  const next = () => {
    if (active >= limit) return;
    const start = queue.shift();
    if (start) {
      active++;
      start();
    }
  };
  return <T>(task: () => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      queue.push(() => {
        task()
          .then(resolve, reject)
          .finally(() => {
            active--;
            next();
          });
      });
      next();
    });
}

/**
 * Throttles `Downloading`/`Pushing` events to one per 1/50 of the blob (at least 64 KiB), so a
 * fast local transfer does not flood a terminal or a slow consumer.
 */
export function progressReporter(total: number, report: (current: number) => void): (current: number) => void {
  const step = Math.max(64 << 10, Math.floor(total / 50));
  let last = -Infinity;
  return (current: number) => {
    if (current - last >= step || current === total) {
      last = current;
      report(current);
    }
  };
}
