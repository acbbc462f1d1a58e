import { EngineErrorCode, engineError } from '../../engine.js';
import type { ContainerConfig, ContainerCreateRequest, ContainerUpdateRequest, WaitCondition } from '../../types/container.js';
import type { ContainerStream } from '../../types/stream.js';
import type { ApiExchange } from '../api-exchange.js';
import type { Router } from '../router.js';
import { sendJsonObjects, sendReadable, writeChunk, writeOutput } from '../stream-writers.js';

export const rawStream = 'application/vnd.docker.raw-stream';
export const multiplexedStream = 'application/vnd.docker.multiplexed-stream';

/** The content type of a process's output: multiplexed without a terminal since API 1.42, raw otherwise. */
export function outputContentType(x: ApiExchange, tty: boolean): string {
  return !tty && x.atLeast('1.42') ? multiplexedStream : rawStream;
}

/**
 * Serves a hijacked attach or exec: client bytes go to the process's stdin (its end, the client's
 * half-close, closes stdin), output goes back framed or raw until the process is done.
 */
export async function serveHijacked(x: ApiExchange, stream: ContainerStream): Promise<void> {
  const conn = x.hijack(outputContentType(x, stream.tty));
  const stopOnClose = () => stream.close();
  conn.output.once('close', stopOnClose);
  if (stream.stdin) {
    const stdin = stream.stdin;
    stdin.on('error', () => conn.input.unpipe(stdin));
    conn.input.pipe(stdin);
  } else {
    conn.input.resume();
  }
  try {
    await writeOutput(stream.output, conn.output, stream.tty);
  } finally {
    conn.output.off('close', stopOnClose);
    conn.output.end();
  }
}

const waitConditions = new Set<string>(['not-running', 'next-exit', 'removed']);
const pathStatHeader = 'X-Docker-Container-Path-Stat';

function requiredPath(x: ApiExchange): string {
  const path = x.string('path');
  if (!path) throw engineError('path parameter is required', EngineErrorCode.InvalidParameter, 'InvalidArgument');
  return path;
}

function timeoutOf(x: ApiExchange): { timeout?: number; signalName?: string } {
  const timeout = x.int('t');
  const signalName = x.string('signal');
  return { ...(timeout === undefined ? {} : { timeout }), ...(signalName === undefined ? {} : { signalName }) };
}

/** Everything under `/containers` and `/commit`. */
export function addContainerRoutes(router: Router): void {
  router.add('GET', '/containers/json', async (x) => {
    const limit = x.int('limit');
    const list = await x.engine.listContainers({
      signal: x.signal,
      all: x.bool('all'),
      size: x.bool('size'),
      filters: x.filters(),
      ...(limit === undefined ? {} : { limit }),
    });
    x.sendJson(200, list);
  });
  router.add('POST', '/containers/create', async (x) => {
    const body = await x.json<ContainerCreateRequest>();
    const name = x.string('name');
    const platform = x.string('platform');
    const created = await x.engine.createContainer(body, {
      signal: x.signal,
      ...(name === undefined ? {} : { name }),
      ...(platform === undefined ? {} : { platform }),
    });
    x.sendJson(201, created);
  });
  router.add('POST', '/containers/prune', async (x) => x.sendJson(200, await x.engine.pruneContainers({ signal: x.signal, filters: x.filters() })));
  router.add('GET', '/containers/{id}/json', async (x) => x.sendJson(200, await x.engine.inspectContainer(x.param('id'), { signal: x.signal, size: x.bool('size') })));
  router.add('GET', '/containers/{id}/top', async (x) => {
    const psArgs = x.string('ps_args');
    x.sendJson(200, await x.engine.topContainer(x.param('id'), { signal: x.signal, ...(psArgs === undefined ? {} : { psArgs }) }));
  });
  router.add('GET', '/containers/{id}/logs', async (x) => {
    const stdout = x.bool('stdout');
    const stderr = x.bool('stderr');
    if (!stdout && !stderr) throw engineError('Bad parameters: you must choose at least one stream', EngineErrorCode.InvalidParameter, 'InvalidArgument');
    const since = x.string('since');
    const until = x.string('until');
    const tail = x.string('tail');
    const logs = await x.engine.containerLogs(x.param('id'), {
      signal: x.signal,
      follow: x.bool('follow'),
      stdout,
      stderr,
      timestamps: x.bool('timestamps'),
      ...(since === undefined ? {} : { since: Number(since) }),
      ...(until === undefined ? {} : { until: Number(until) }),
      ...(tail === undefined || tail === 'all' ? {} : { tail: Number(tail) }),
    });
    const sink = x.startStream(200, { 'Content-Type': outputContentType(x, logs.tty) });
    try {
      await writeOutput(logs.output, sink, logs.tty);
    } finally {
      sink.end();
    }
  });
  router.add('GET', '/containers/{id}/changes', async (x) => x.sendJson(200, await x.engine.containerChanges(x.param('id'), { signal: x.signal })));
  router.add('GET', '/containers/{id}/export', async (x) => {
    const tar = await x.engine.exportContainer(x.param('id'), { signal: x.signal });
    await sendReadable(x, tar, { 'Content-Type': 'application/x-tar' });
  });
  router.add('GET', '/containers/{id}/stats', async (x) => {
    const stream = x.bool('stream', true);
    const samples = x.engine.containerStats(x.param('id'), { signal: x.signal, stream, oneShot: x.bool('one-shot') });
    if (stream) return sendJsonObjects(x, samples);
    for await (const sample of samples) return x.sendJson(200, sample);
    throw engineError('no stats sample', EngineErrorCode.ContainerNotRunning, 'Conflict');
  });
  router.add('POST', '/containers/{id}/resize', async (x) => {
    await x.engine.resizeContainer(x.param('id'), { height: x.int('h') ?? 0, width: x.int('w') ?? 0 }, { signal: x.signal });
    x.sendEmpty(200);
  });
  router.add('POST', '/containers/{id}/start', async (x) => {
    const detachKeys = x.string('detachKeys');
    const changed = await x.engine.startContainer(x.param('id'), { signal: x.signal, ...(detachKeys === undefined ? {} : { detachKeys }) });
    x.sendEmpty(changed ? 204 : 304);
  });
  router.add('POST', '/containers/{id}/stop', async (x) => x.sendEmpty((await x.engine.stopContainer(x.param('id'), { signal: x.signal, ...timeoutOf(x) })) ? 204 : 304));
  router.add('POST', '/containers/{id}/restart', async (x) => {
    await x.engine.restartContainer(x.param('id'), { signal: x.signal, ...timeoutOf(x) });
    x.sendEmpty(204);
  });
  router.add('POST', '/containers/{id}/kill', async (x) => {
    const signalName = x.string('signal');
    await x.engine.killContainer(x.param('id'), { signal: x.signal, ...(signalName === undefined ? {} : { signalName }) });
    x.sendEmpty(204);
  });
  router.add('POST', '/containers/{id}/update', async (x) => {
    x.sendJson(200, await x.engine.updateContainer(x.param('id'), await x.json<ContainerUpdateRequest>(), { signal: x.signal }));
  });
  router.add('POST', '/containers/{id}/rename', async (x) => {
    const name = x.string('name');
    if (!name) throw engineError('name parameter is required', EngineErrorCode.InvalidParameter, 'InvalidArgument');
    await x.engine.renameContainer(x.param('id'), name, { signal: x.signal });
    x.sendEmpty(204);
  });
  router.add('POST', '/containers/{id}/pause', async (x) => {
    await x.engine.pauseContainer(x.param('id'), { signal: x.signal });
    x.sendEmpty(204);
  });
  router.add('POST', '/containers/{id}/unpause', async (x) => {
    await x.engine.unpauseContainer(x.param('id'), { signal: x.signal });
    x.sendEmpty(204);
  });
  router.add('POST', '/containers/{id}/attach', async (x) => {
    const detachKeys = x.string('detachKeys');
    const stream = await x.engine.attachContainer(x.param('id'), {
      signal: x.signal,
      stream: x.bool('stream'),
      stdin: x.bool('stdin'),
      stdout: x.bool('stdout'),
      stderr: x.bool('stderr'),
      logs: x.bool('logs'),
      ...(detachKeys === undefined ? {} : { detachKeys }),
    });
    await serveHijacked(x, stream);
  });
  router.add('POST', '/containers/{id}/wait', async (x) => {
    const condition = x.string('condition') ?? 'not-running';
    if (!waitConditions.has(condition)) {
      throw engineError(`invalid condition: ${JSON.stringify(condition)} (want not-running, next-exit or removed)`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
    }
    const wait = await x.engine.waitContainer(x.param('id'), { signal: x.signal, condition: condition as WaitCondition });
    // The headers go out now: the CLI starts the container only once its wait is in place.
    const sink = x.startStream(200, { 'Content-Type': 'application/json' });
    try {
      const result = await wait.result;
      await writeChunk(sink, JSON.stringify(result) + '\n');
    } catch (err) {
      await writeChunk(sink, JSON.stringify({ StatusCode: -1, Error: { Message: (err as Error).message } }) + '\n');
    } finally {
      sink.end();
    }
  });
  router.add('DELETE', '/containers/{id}', async (x) => {
    await x.engine.removeContainer(x.param('id'), { signal: x.signal, force: x.bool('force'), volumes: x.bool('v'), link: x.bool('link') });
    x.sendEmpty(204);
  });
  router.add('HEAD', '/containers/{id}/archive', async (x) => {
    const stat = await x.engine.statContainerPath(x.param('id'), requiredPath(x), { signal: x.signal });
    x.sendEmpty(200, { [pathStatHeader]: Buffer.from(JSON.stringify(stat)).toString('base64') });
  });
  router.add('GET', '/containers/{id}/archive', async (x) => {
    const { stat, archive } = await x.engine.getContainerArchive(x.param('id'), requiredPath(x), { signal: x.signal });
    await sendReadable(x, archive, { 'Content-Type': 'application/x-tar', [pathStatHeader]: Buffer.from(JSON.stringify(stat)).toString('base64') });
  });
  router.add('PUT', '/containers/{id}/archive', async (x) => {
    await x.engine.putContainerArchive(x.param('id'), requiredPath(x), x.body(), {
      signal: x.signal,
      noOverwriteDirNonDir: x.bool('noOverwriteDirNonDir'),
      copyUIDGID: x.bool('copyUIDGID'),
    });
    x.sendEmpty(200);
  });
  router.add('POST', '/commit', async (x) => {
    const container = x.string('container');
    if (!container) throw engineError('container parameter is required', EngineErrorCode.InvalidParameter, 'InvalidArgument');
    const config = await x.json<ContainerConfig | null>(null);
    const repo = x.string('repo');
    const tag = x.string('tag');
    const comment = x.string('comment');
    const author = x.string('author');
    const result = await x.engine.commitContainer({
      signal: x.signal,
      container,
      pause: x.bool('pause', true),
      changes: x.strings('changes'),
      ...(repo === undefined ? {} : { repo }),
      ...(tag === undefined ? {} : { tag }),
      ...(comment === undefined ? {} : { comment }),
      ...(author === undefined ? {} : { author }),
      ...(config ? { config } : {}),
    });
    x.sendJson(201, result);
  });
}
