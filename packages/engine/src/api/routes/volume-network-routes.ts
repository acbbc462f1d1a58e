import type { NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest } from '../../types/network.js';
import type { VolumeCreateRequest } from '../../types/volume.js';
import type { Router } from '../router.js';

/** Everything under `/volumes`. */
export function addVolumeRoutes(router: Router): void {
  router.add('GET', '/volumes', async (x) => x.sendJson(200, await x.engine.listVolumes({ signal: x.signal, filters: x.filters() })));
  router.add('POST', '/volumes/create', async (x) => x.sendJson(201, await x.engine.createVolume(await x.json<VolumeCreateRequest>({}), { signal: x.signal })));
  router.add('POST', '/volumes/prune', async (x) => x.sendJson(200, await x.engine.pruneVolumes({ signal: x.signal, filters: x.filters() })));
  router.add('GET', '/volumes/{name}', async (x) => x.sendJson(200, await x.engine.inspectVolume(x.param('name'), { signal: x.signal })));
  router.add('DELETE', '/volumes/{name}', async (x) => {
    await x.engine.removeVolume(x.param('name'), { signal: x.signal, force: x.bool('force') });
    x.sendEmpty(204);
  });
}

/** Everything under `/networks`. */
export function addNetworkRoutes(router: Router): void {
  router.add('GET', '/networks', async (x) => x.sendJson(200, await x.engine.listNetworks({ signal: x.signal, filters: x.filters() })));
  router.add('POST', '/networks/create', async (x) => x.sendJson(201, await x.engine.createNetwork(await x.json<NetworkCreateRequest>(), { signal: x.signal })));
  router.add('POST', '/networks/prune', async (x) => x.sendJson(200, await x.engine.pruneNetworks({ signal: x.signal, filters: x.filters() })));
  router.add('GET', '/networks/{id}', async (x) => x.sendJson(200, await x.engine.inspectNetwork(x.param('id'), { signal: x.signal, verbose: x.bool('verbose') })));
  router.add('DELETE', '/networks/{id}', async (x) => {
    await x.engine.removeNetwork(x.param('id'), { signal: x.signal });
    x.sendEmpty(204);
  });
  router.add('POST', '/networks/{id}/connect', async (x) => {
    await x.engine.connectNetwork(x.param('id'), await x.json<NetworkConnectRequest>(), { signal: x.signal });
    x.sendEmpty(200);
  });
  router.add('POST', '/networks/{id}/disconnect', async (x) => {
    await x.engine.disconnectNetwork(x.param('id'), await x.json<NetworkDisconnectRequest>(), { signal: x.signal });
    x.sendEmpty(200);
  });
}
