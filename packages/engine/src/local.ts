// Subpath `@berth/engine/local`: the local engine alone, for callers (the CLI) that must not load
// the API server and the remote client with it.
export { LocalEngine } from './local/local-engine.js';
export type { LocalEngineOptions, LocalNetworkOptions } from './local/local-engine.js';
