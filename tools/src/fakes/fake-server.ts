import { execFile } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A request as the fakes see it: method, path, query, headers and the whole body. */
export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** What a fake answers: a status, headers and a body (already serialised). */
export interface FakeResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** One fault a test arranged: answer the next `times` calls of `operation` with `kind`. */
interface PlannedFault {
  readonly operation: string;
  times: number;
  readonly kind: 'throttle' | 'fail';
  readonly code: string | undefined;
}

/** An injected fault a fake must answer with instead of doing the call. */
export interface Fault {
  readonly kind: 'throttle' | 'fail';
  readonly code: string | undefined;
}

/**
 * The faults a test arranged for a fake, per operation name (`RunInstances`, `instances.insert`,
 * `virtualMachines.createOrUpdate`, ...). Each fake decides what a throttle or a failure looks like
 * on its own wire.
 */
export class FaultPlan {
  readonly #faults: PlannedFault[] = [];
  /** Faults answered so far, by operation, so tests can see a retry happened. */
  readonly answered: { operation: string; kind: Fault['kind'] }[] = [];

  /** The next `times` calls of `operation` are refused as throttled (429/503 with the cloud's code). */
  throttle(operation: string, times = 1): this {
    this.#faults.push({ operation, times, kind: 'throttle', code: undefined });
    return this;
  }

  /** The next `times` calls of `operation` fail with the cloud's error `code` (or a generic server error). */
  fail(operation: string, times = 1, code?: string): this {
    this.#faults.push({ operation, times, kind: 'fail', code });
    return this;
  }

  /** The fault for this call of `operation`, if one is planned; consumes it. */
  take(operation: string): Fault | undefined {
    const fault = this.#faults.find((f) => f.operation === operation && f.times > 0);
    if (!fault) return undefined;
    fault.times--;
    this.answered.push({ operation, kind: fault.kind });
    return { kind: fault.kind, code: fault.code };
  }
}

/** A self-signed certificate for 127.0.0.1, for fakes whose SDK refuses plain HTTP (Azure). */
export interface FakeTls {
  readonly cert: string;
  readonly key: string;
}

/** Makes a throw-away certificate for `127.0.0.1` and `localhost` with the openssl CLI. */
export async function makeLoopbackCertificate(): Promise<FakeTls> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-fake-tls-'));
  try {
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ]);
    return { cert: await readFile(join(dir, 'cert.pem'), 'utf8'), key: await readFile(join(dir, 'key.pem'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A listening fake: its base URL (`http://127.0.0.1:PORT`) and how to stop it. */
export interface Listening {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `handle` on 127.0.0.1 on a free port (HTTPS when `tls` is given). A handler that
 * throws answers 500 with the error text, so a bug in a fake shows in the SDK's error.
 */
export async function listen(handle: (request: FakeRequest) => Promise<FakeResponse> | FakeResponse, tls?: FakeTls): Promise<Listening> {
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const request: FakeRequest = {
        method: req.method ?? 'GET',
        path: decodeURIComponent(url.pathname),
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      Promise.resolve()
        .then(() => handle(request))
        .then(
          (answer) => {
            res.writeHead(answer.status, answer.headers ?? {});
            res.end(answer.body ?? '');
          },
          (error: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(`fake server error: ${error instanceof Error ? error.stack : String(error)}`);
          },
        );
    });
  };
  const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, onRequest) : createHttpServer(onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A short random hex id, as clouds put in resource ids (`i-0abc...`, operation names). */
export function randomHex(length: number): string {
  let out = '';
  while (out.length < length) out += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  return out.slice(0, length);
}
