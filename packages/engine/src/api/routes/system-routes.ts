import type { AuthConfig } from '../../types/common.js';
import { maxApiVersion } from '../api-version.js';
import type { Router } from '../router.js';
import { sendJsonObjects } from '../stream-writers.js';

/** `/_ping`, `/version`, `/info`, `/events`, `/system/df`, `/auth`. */
export function addSystemRoutes(router: Router): void {
  // The ping is answered by the server itself: clients call it before anything else, often, and
  // it must stay cheap. Builder-Version 1 sends the v28 CLI to the classic build API.
  const pingHeaders = {
    'Api-Version': maxApiVersion,
    'Builder-Version': '1',
    'Docker-Experimental': 'false',
    Swarm: 'inactive',
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    Pragma: 'no-cache',
  };
  router.add('HEAD', '/_ping', async (x) => x.sendEmpty(200, { ...pingHeaders, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': '0' }));
  router.add('GET', '/_ping', async (x) => {
    const sink = x.startStream(200, { ...pingHeaders, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': '2' });
    sink.end('OK');
  });
  router.add('GET', '/version', async (x) => x.sendJson(200, await x.engine.version({ signal: x.signal })));
  router.add('GET', '/info', async (x) => x.sendJson(200, await x.engine.info({ signal: x.signal })));
  router.add('GET', '/system/df', async (x) => {
    const types = x.strings('type');
    x.sendJson(200, await x.engine.dataUsage({ signal: x.signal, ...(types.length ? { types } : {}) }));
  });
  router.add('GET', '/events', async (x) => {
    const since = x.int('since');
    const until = x.int('until');
    const events = x.engine.events({
      signal: x.signal,
      filters: x.filters(),
      ...(since === undefined ? {} : { since }),
      ...(until === undefined ? {} : { until }),
    });
    await sendJsonObjects(x, events);
  });
  router.add('POST', '/auth', async (x) => x.sendJson(200, await x.engine.login(await x.json<AuthConfig>(), { signal: x.signal })));
}
