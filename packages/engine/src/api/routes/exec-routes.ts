import type { ExecConfig, ExecStartConfig } from '../../types/exec.js';
import type { Router } from '../router.js';
import { serveHijacked } from './container-routes.js';

/** `POST /containers/{id}/exec` and `/exec/{id}/...`. */
export function addExecRoutes(router: Router): void {
  router.add('POST', '/containers/{id}/exec', async (x) => {
    x.sendJson(201, await x.engine.createExec(x.param('id'), await x.json<ExecConfig>(), { signal: x.signal }));
  });
  router.add('POST', '/exec/{id}/start', async (x) => {
    const config = await x.json<ExecStartConfig>({});
    const stream = await x.engine.startExec(x.param('id'), config, { signal: x.signal });
    if (!stream) return x.sendEmpty(200);
    await serveHijacked(x, stream);
  });
  router.add('POST', '/exec/{id}/resize', async (x) => {
    await x.engine.resizeExec(x.param('id'), { height: x.int('h') ?? 0, width: x.int('w') ?? 0 }, { signal: x.signal });
    x.sendEmpty(200);
  });
  router.add('GET', '/exec/{id}/json', async (x) => x.sendJson(200, await x.engine.inspectExec(x.param('id'), { signal: x.signal })));
}
