// Subpath `@berth/engine/server`: the Docker Engine API server alone.
export { EngineApiHandler, listenEngineApi } from './api/engine-api-server.js';
export type { EngineApiHandlerOptions, EngineApiServer, EngineApiServerOptions, EngineApiTls } from './api/engine-api-server.js';
