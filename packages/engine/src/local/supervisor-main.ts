import { runDetachedSupervisor } from './local-engine.js';

// The entry point of the detached supervisor: `node supervisor-main.js <engine options file>`.
// An app bundled into one file runs `runDetachedSupervisor` from its own entry instead.
const optionsPath = process.argv[2];
if (!optionsPath) throw new Error('supervisor-main: the engine options file is required');
const stop = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => stop.abort());
process.on('SIGHUP', () => {});
await runDetachedSupervisor({ optionsPath, signal: stop.signal });
