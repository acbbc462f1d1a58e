import { describeError } from '@berth/errors';
import { noopLogger, type Logger } from '@berth/log';
import { dockerHubDomain, familiarReference, parseReference, type ImageReference } from '@berth/oci';
import { RegistryClient, type Operation, type PullOptions, type PullResult, type RegistryClientOptions } from '@berth/registry';
import type { RegistryMirror } from './registry-mirror.js';

/** One try of a pull: its operation, the name it reports for the image, and the next try when this one fails and another is left. */
interface PullAttempt {
  readonly op: Operation<PullResult>;
  readonly shownAs: string;
  readonly next: Promise<PullAttempt | undefined>;
}

/**
 * The registry client with dockerd's `--registry-mirror`: a pull from Docker Hub tries each
 * mirror in turn, then Docker Hub itself; whatever a mirror serves is recorded under the
 * Docker Hub name that was asked for. Other registries, and pushes, are not mirrored.
 */
export class MirroringRegistryClient extends RegistryClient {
  readonly #mirrors: readonly RegistryMirror[];
  readonly #logger: Logger;

  constructor(options: RegistryClientOptions & { readonly mirrors: readonly RegistryMirror[] }) {
    const { mirrors, ...client } = options;
    super({ ...client, insecureRegistries: [...(client.insecureRegistries ?? []), ...mirrors.filter((m) => m.insecure).map((m) => m.host)] });
    this.#mirrors = mirrors;
    this.#logger = options.logger ?? noopLogger;
  }

  override pull(ref: ImageReference | string, options: PullOptions): Operation<PullResult> {
    const target = typeof ref === 'string' ? parseReference(ref) : ref;
    if (target.domain !== dockerHubDomain || this.#mirrors.length === 0) return super.pull(target, options);
    const hosts = [...this.#mirrors.map((m) => m.host), dockerHubDomain];
    const asked = familiarReference(target);
    const attempt = (i: number): PullAttempt => {
      const source = { ...target, domain: hosts[i]! };
      const op = super.pull(source, options);
      const next = op.result.then(
        () => undefined,
        (err: unknown) => {
          if (i + 1 >= hosts.length || options.signal?.aborted) return undefined;
          this.#logger.warn('pull from a registry mirror failed; trying the next source', { mirror: hosts[i], next: hosts[i + 1], error: describeError(err) });
          return attempt(i + 1);
        },
      );
      return { op, shownAs: familiarReference(source), next };
    };
    const first = attempt(0);
    const result = (async () => {
      for (let a: PullAttempt | undefined = first; ; ) {
        try {
          // What a mirror served carries the name asked for, so it is stored as Docker Hub's image.
          return { ...(await a.op.result), reference: target };
        } catch (err) {
          a = await a.next;
          if (!a) throw err;
        }
      }
    })();
    result.catch(() => {});
    return {
      result,
      async *[Symbol.asyncIterator]() {
        for (let a: PullAttempt | undefined = first; ; ) {
          try {
            // The closing `Status: ... for NAME` names the image asked for, not the mirror's copy.
            for await (const event of a.op) yield a.shownAs === asked ? event : { ...event, status: event.status.replace(a.shownAs, asked) };
            return;
          } catch (err) {
            a = await a.next;
            if (!a) throw err;
          }
        }
      },
    };
  }
}
