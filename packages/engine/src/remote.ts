// Subpath `@berth/engine/remote`: the remote client alone.
export { RemoteEngine } from './remote/remote-engine.js';
export type { RemoteEngineOptions } from './remote/remote-engine.js';
export type { RemoteTls } from './remote/api-transport.js';
