import { describeError, isBerthError } from '@berth/errors';

// A build is long work like a pull: the registry client's operation carries its messages. Its
// own entry point, because the package's index starts the HTTP client (undici), which a build
// from cache never needs.
export { startOperation } from '@berth/registry/progress';
export type { Operation } from '@berth/registry/progress';

/**
 * One message of a build's output, shaped like docker's JSON messages on `POST /build` with
 * the classic builder: `{stream}` lines (`Step 2/5 : RUN make`, ` ---> Using cache`, RUN
 * output), `{status, id, progressDetail}` while a base image is pulled, `{aux: {ID}}` with the
 * image ID at the end.
 */
export interface BuildMessage {
  readonly stream?: string;
  readonly status?: string;
  readonly id?: string;
  readonly progressDetail?: { readonly current?: number; readonly total?: number };
  readonly aux?: { readonly ID: string };
  readonly errorDetail?: { readonly code?: number; readonly message: string };
  readonly error?: string;
}

/**
 * docker's last message of a failed build, `{errorDetail: {code, message}, error}`: the code
 * is a failing RUN's exit status (the docker CLI exits with it), absent otherwise.
 */
export function buildErrorMessage(err: unknown): BuildMessage {
  const message = describeError(err);
  const code = isBerthError(err) ? err.exitCode : undefined;
  return { errorDetail: { ...(code !== undefined ? { code } : {}), message }, error: message };
}

/**
 * Keeps the output of stages that build in parallel in the order the classic builder would
 * print it: the earliest unfinished stage streams live, later ones are held back and flushed
 * as the ones before them finish.
 */
export class OrderedOutput<M> {
  readonly #emit: (message: M) => void;
  readonly #held: M[][];
  readonly #done: boolean[];
  #head = 0;

  constructor(count: number, emit: (message: M) => void) {
    this.#emit = emit;
    this.#held = Array.from({ length: count }, () => []);
    this.#done = Array.from({ length: count }, () => false);
  }

  /** Writes a message of the stage at `position` (its place in the printed order). */
  write(position: number, message: M): void {
    if (position === this.#head) this.#emit(message);
    else this.#held[position]!.push(message);
  }

  /** Marks the stage at `position` finished, releasing what later stages held. */
  finish(position: number): void {
    this.#done[position] = true;
    while (this.#head < this.#done.length && this.#done[this.#head]) {
      this.#head++;
      if (this.#head < this.#held.length) for (const m of this.#held[this.#head]!.splice(0)) this.#emit(m);
    }
  }
}
