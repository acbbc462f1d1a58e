import { EngineErrorCode, engineError } from '../../engine.js';
import type { BuildOptions } from '../../types/image.js';
import type { ApiExchange } from '../api-exchange.js';
import { decodeRegistryAuth, decodeRegistryConfig } from '../registry-auth.js';
import type { Router } from '../router.js';
import { sendJsonLines, sendReadable } from '../stream-writers.js';

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function buildOptionsOf(x: ApiExchange): BuildOptions {
  if (x.string('remote')) {
    throw engineError('building from a remote context (git or URL) is not supported: send the context as a tar', EngineErrorCode.NotImplemented, 'NotImplemented');
  }
  if (x.string('version') === '2') {
    throw engineError('BuildKit builds (version=2) are not supported: use the classic builder (version=1)', EngineErrorCode.NotImplemented, 'NotImplemented');
  }
  const authConfigs = decodeRegistryConfig(x.req.headers['x-registry-config']);
  return {
    tags: x.strings('t'),
    ...optional('dockerfile', x.string('dockerfile')),
    ...optional('buildArgs', x.jsonParam<Record<string, string | null>>('buildargs')),
    ...optional('labels', x.jsonParam<Record<string, string>>('labels')),
    ...optional('cacheFrom', x.jsonParam<string[]>('cachefrom')),
    ...optional('target', x.string('target')),
    ...optional('platform', x.string('platform')),
    ...optional('networkMode', x.string('networkmode')),
    ...optional('shmSize', x.int('shmsize')),
    ...optional('memory', x.int('memory')),
    ...optional('memorySwap', x.int('memswap')),
    ...optional('cpuShares', x.int('cpushares')),
    ...optional('cpuSetCpus', x.string('cpusetcpus')),
    ...optional('cpuPeriod', x.int('cpuperiod')),
    ...optional('cpuQuota', x.int('cpuquota')),
    ...optional('authConfigs', authConfigs),
    extraHosts: x.strings('extrahosts'),
    noCache: x.bool('nocache'),
    pull: x.bool('pull'),
    quiet: x.bool('q'),
    remove: x.bool('rm', true),
    forceRemove: x.bool('forcerm'),
  };
}

/** Everything under `/images` and `/build`. */
export function addImageRoutes(router: Router): void {
  router.add('GET', '/images/json', async (x) => {
    const filters = { ...x.filters() };
    // API < 1.41 clients may still send the single-name `filter` parameter.
    const legacy = x.string('filter');
    if (legacy) filters['reference'] = [...(filters['reference'] ?? []), legacy];
    x.sendJson(200, await x.engine.listImages({ signal: x.signal, all: x.bool('all'), filters, digests: x.bool('digests'), sharedSize: x.bool('shared-size') }));
  });
  router.add('POST', '/images/create', async (x) => {
    const fromImage = x.string('fromImage');
    const fromSrc = x.string('fromSrc');
    const platform = x.string('platform');
    const tag = x.string('tag');
    if (fromImage) {
      const auth = decodeRegistryAuth(x.req.headers['x-registry-auth']);
      return sendJsonLines(x, x.engine.pullImage({ signal: x.signal, fromImage, ...optional('tag', tag), ...optional('platform', platform), ...optional('auth', auth) }));
    }
    if (fromSrc) {
      return sendJsonLines(
        x,
        x.engine.importImage({
          signal: x.signal,
          source: fromSrc === '-' ? x.body() : fromSrc,
          changes: x.strings('changes'),
          ...optional('repo', x.string('repo')),
          ...optional('tag', tag),
          ...optional('message', x.string('message')),
          ...optional('platform', platform),
        }),
      );
    }
    throw engineError('fromImage or fromSrc is required', EngineErrorCode.InvalidParameter, 'InvalidArgument');
  });
  router.add('GET', '/images/get', async (x) => {
    const names = x.strings('names');
    if (names.length === 0) throw engineError('names parameter is required', EngineErrorCode.InvalidParameter, 'InvalidArgument');
    const tar = await x.engine.saveImages(names, { signal: x.signal, ...optional('platform', x.string('platform')) });
    await sendReadable(x, tar, { 'Content-Type': 'application/x-tar' });
  });
  router.add('POST', '/images/load', async (x) => {
    await sendJsonLines(x, x.engine.loadImages(x.body(), { signal: x.signal, quiet: x.bool('quiet'), ...optional('platform', x.string('platform')) }));
  });
  router.add('POST', '/images/prune', async (x) => x.sendJson(200, await x.engine.pruneImages({ signal: x.signal, filters: x.filters() })));
  router.add('GET', '/images/search', async () => {
    throw engineError('image search is not supported: Berth has no index to search', EngineErrorCode.NotImplemented, 'NotImplemented');
  });
  router.add('GET', '/images/{name*}/json', async (x) => x.sendJson(200, await x.engine.inspectImage(x.param('name'), { signal: x.signal })));
  router.add('GET', '/images/{name*}/history', async (x) => {
    x.sendJson(200, await x.engine.imageHistory(x.param('name'), { signal: x.signal, ...optional('platform', x.string('platform')) }));
  });
  router.add('GET', '/images/{name*}/get', async (x) => {
    const tar = await x.engine.saveImages([x.param('name')], { signal: x.signal, ...optional('platform', x.string('platform')) });
    await sendReadable(x, tar, { 'Content-Type': 'application/x-tar' });
  });
  router.add('POST', '/images/{name*}/push', async (x) => {
    const auth = decodeRegistryAuth(x.req.headers['x-registry-auth']);
    await sendJsonLines(
      x,
      x.engine.pushImage(x.param('name'), { signal: x.signal, ...optional('tag', x.string('tag')), ...optional('platform', x.string('platform')), ...optional('auth', auth) }),
    );
  });
  router.add('POST', '/images/{name*}/tag', async (x) => {
    const repo = x.string('repo');
    if (!repo) throw engineError('repo parameter is required', EngineErrorCode.InvalidParameter, 'InvalidArgument');
    await x.engine.tagImage(x.param('name'), { repo, ...optional('tag', x.string('tag')) }, { signal: x.signal });
    x.sendEmpty(201);
  });
  router.add('DELETE', '/images/{name*}', async (x) => {
    x.sendJson(200, await x.engine.removeImage(x.param('name'), { signal: x.signal, force: x.bool('force'), noprune: x.bool('noprune') }));
  });
  router.add('POST', '/build', async (x) => {
    const options = buildOptionsOf(x);
    await sendJsonLines(x, x.engine.buildImage(x.body(), { ...options, signal: x.signal }));
  });
  router.add('POST', '/build/prune', async (x) => {
    x.sendJson(200, await x.engine.pruneBuildCache({ signal: x.signal, all: x.bool('all'), filters: x.filters() }));
  });
}
