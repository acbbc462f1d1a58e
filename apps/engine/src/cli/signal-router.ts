/**
 * Where SIGINT and SIGTERM go. By default they abort the running command; a command that proxies
 * signals to a container (`run`, `attach` with --sig-proxy) takes them over while it does.
 */
export class SignalRouter {
  readonly #controller = new AbortController();
  #proxy: ((signal: NodeJS.Signals) => void) | undefined;

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** True when a proxy took the signal; false when it aborted the command. */
  deliver(signal: NodeJS.Signals): boolean {
    if (this.#proxy) {
      this.#proxy(signal);
      return true;
    }
    this.#controller.abort(new Error(`received ${signal}`));
    return false;
  }

  /** Sends signals to `proxy` until the returned function is called. */
  intercept(proxy: (signal: NodeJS.Signals) => void): () => void {
    this.#proxy = proxy;
    return () => {
      if (this.#proxy === proxy) this.#proxy = undefined;
    };
  }
}
