import { createWriteStream } from 'node:fs';
import { rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createJsonLogger } from '@berth/log';
import { runNetworkHelper } from './network-helper.js';
import { stateFiles } from './network-state.js';

// The entry point of the detached helper process: `node helper-main.js --state-dir DIR`.
// It prints `ready` on stdout once it serves, and logs JSON lines to DIR/helper.log.
const { values } = parseArgs({ options: { 'state-dir': { type: 'string' }, 'log-level': { type: 'string' } } });
const stateDir = values['state-dir'];
if (!stateDir) throw new Error('helper-main: --state-dir is required');
const level = values['log-level'] === 'debug' ? 'debug' : 'info';
const logPath = join(stateDir, stateFiles.helperLog);
// One previous log is kept, so that a long-lived state directory does not grow without bound.
if (((await stat(logPath).catch(() => undefined))?.size ?? 0) > 1 << 20) await rename(logPath, `${logPath}.1`);
const log = createWriteStream(logPath, { flags: 'a' });
const logger = createJsonLogger({ write: (line) => log.write(line), level }).child({ component: 'network-helper' });
const stop = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => stop.abort());
// A CLI that started the helper may be gone; its end of stdout must not take the helper down.
process.stdout.on('error', () => {});
process.on('SIGHUP', () => {});
try {
  await runNetworkHelper({ stateDir, logger, signal: stop.signal, onReady: () => process.stdout.write('ready\n') });
} catch (err) {
  logger.error('helper failed', { err });
  throw err;
} finally {
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGHUP');
  log.end();
}
