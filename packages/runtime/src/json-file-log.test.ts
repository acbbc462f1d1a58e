import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasCode } from '@berth/errors';
import { makeBusyboxRootfs } from '@berth/tools/rootfs';
import { RuntimeErrorCode } from './errors.js';
import { jsonFileLogRotation, readJsonFileLog, type JsonFileLogRecord, type ReadJsonFileLogOptions } from './json-file-log.js';
import { Runtime } from './runtime.js';
import { buildSpec } from './spec-builder.js';

let dir: string;
let rootfs: string;
let runtime: Runtime;
let seq = 0;
const ids: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-jsonlog-'));
  await chmod(dir, 0o755);
  rootfs = join(dir, 'rootfs');
  await makeBusyboxRootfs(rootfs);
  runtime = new Runtime({ root: join(dir, 'state') });
});

afterEach(async () => {
  for (const id of ids.splice(0)) await runtime.delete(id, { force: true }).catch(() => {});
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// 3000 numbered lines on stdout (about 240 KB of log), every 100th also on stderr.
const writer = ['sh', '-c', 'i=0; while [ $i -lt 3000 ]; do echo line-$i; [ $((i % 100)) = 0 ] && echo err-$i >&2; i=$((i+1)); done'];

async function container(args: string[]): Promise<{ id: string; bundle: string; logDir: string }> {
  const id = `jl-${process.pid}-${++seq}`;
  ids.push(id);
  const bundle = join(dir, 'bundles', id);
  const logDir = join(dir, 'logs', id);
  await mkdir(bundle, { recursive: true });
  await mkdir(logDir, { recursive: true });
  await writeFile(join(bundle, 'config.json'), JSON.stringify(await buildSpec({ Cmd: args }, { rootfs, id, readOnlyRootfs: true })));
  return { id, bundle, logDir };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 1000; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const stopped = (id: string) => until(`${id} to stop`, async () => ((await runtime.state(id)).status === 'stopped' ? true : undefined));

async function read(path: string, options?: ReadJsonFileLogOptions): Promise<JsonFileLogRecord[]> {
  const out: JsonFileLogRecord[] = [];
  for await (const r of readJsonFileLog(path, options)) out.push(r);
  return out;
}

/** The numbers of `line-N` records, checked to be consecutive and to end at 2999. */
function lineNumbers(records: readonly JsonFileLogRecord[]): number[] {
  const numbers = records.filter((r) => r.stream === 'stdout').map((r) => Number(/^line-(\d+)\n$/.exec(r.log)![1]));
  numbers.forEach((n, i) => expect(n).toBe(numbers[0]! + i));
  expect(numbers.at(-1)).toBe(2999);
  return numbers;
}

describe('jsonFileLogRotation', () => {
  it("reads docker's --log-opt max-size, max-file and compress with docker's rules", () => {
    expect(jsonFileLogRotation({ 'max-size': '10m', 'max-file': '3' })).toEqual({ maxSize: 10_000_000, maxFiles: 3 });
    expect(jsonFileLogRotation({ 'max-size': '1.5k', 'max-file': '2', compress: 'true' })).toEqual({ maxSize: 1500, maxFiles: 2, compress: true });
    expect(jsonFileLogRotation({ 'max-size': '20MB' })).toEqual({ maxSize: 20_000_000, maxFiles: 1 });
    expect(jsonFileLogRotation({ 'max-size': '512' })).toEqual({ maxSize: 512, maxFiles: 1 });
    expect(jsonFileLogRotation({ 'max-file': '5', tag: 'x' })).toBeUndefined();
    expect(jsonFileLogRotation({})).toBeUndefined();
    const refused = (config: Record<string, string>, message: string) =>
      expect(() => jsonFileLogRotation(config)).toThrow(expect.objectContaining({ code: RuntimeErrorCode.InvalidSpec, message }));
    refused({ 'max-size': '10x' }, "invalid size: '10x'");
    refused({ 'max-size': '0' }, 'max-size must be a positive number');
    refused({ 'max-size': '1m', 'max-file': '0' }, 'max-file cannot be less than 1');
    refused({ 'max-size': '1m', compress: 'true' }, 'compress cannot be true when max-file is less than 2 or max-size is not set');
    refused({ 'max-file': '3', compress: 'true' }, 'compress cannot be true when max-file is less than 2 or max-size is not set');
    refused({ 'max-size': '1m', 'max-file': '3', compress: 'yes' }, 'strconv.ParseBool: parsing "yes": invalid syntax');
  });
});

describe('json-file log rotation in the monitor', () => {
  it('rotates at max-size keeping max-file files; the reader reads them in order, tail and filters across files', async () => {
    const { id, bundle, logDir } = await container(writer);
    const log = join(logDir, 'c-json.log');
    await runtime.runDetached(id, { bundle, logPath: log, logRotation: { maxSize: 10_000, maxFiles: 3 } });
    await stopped(id);
    expect((await readdir(logDir)).sort()).toEqual(['c-json.log', 'c-json.log.1', 'c-json.log.2']);
    // A file is rotated before the record that would start past max-size: at most one record over.
    for (const f of ['c-json.log.1', 'c-json.log.2']) {
      const size = (await stat(join(logDir, f))).size;
      expect(size).toBeGreaterThanOrEqual(10_000);
      expect(size).toBeLessThan(10_000 + 100);
    }
    const all = await read(log);
    const numbers = lineNumbers(all);
    // Three files of about 125 records each, the oldest ones gone.
    expect(numbers.length).toBeGreaterThan(250);
    expect(numbers.length).toBeLessThan(400);
    expect(all.map((r) => r.timeNs)).toEqual([...all.map((r) => r.timeNs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));

    // tail counts records across files (more than the live file holds).
    const liveLines = (await readFile(log, 'utf8')).split('\n').filter(Boolean).length;
    const tail = await read(log, { tail: liveLines + 40 });
    expect(tail).toEqual(all.slice(-(liveLines + 40)));
    expect(await read(log, { tail: 0 })).toEqual([]);
    expect(await read(log, { tail: 100_000 })).toEqual(all);

    const errors = await read(log, { stdout: false });
    expect(errors.every((r) => r.stream === 'stderr' && /^err-\d+00\n$/.test(r.log))).toBe(true);
    const middle = all[Math.floor(all.length / 2)]!;
    const since = await read(log, { sinceNs: middle.timeNs });
    expect(since[0]!.timeNs).toBeGreaterThanOrEqual(middle.timeNs);
    expect(since.at(-1)).toEqual(all.at(-1));
    const untilMiddle = await read(log, { untilNs: middle.timeNs });
    expect(untilMiddle.at(-1)!.timeNs).toBeLessThanOrEqual(middle.timeNs);
    expect(untilMiddle[0]).toEqual(all[0]);
  });

  it('gzips the rotated files with compress; the reader gunzips them', async (ctx) => {
    const { stdout } = await promisify(execFile)(fileURLToPath(new URL('../dist/native/berth-runtime', import.meta.url)), ['--version']);
    if (!/^zlib: /m.test(stdout)) return ctx.skip('berth-runtime was built without zlib (zlib1g-dev) and cannot compress');
    const { id, bundle, logDir } = await container(writer);
    const log = join(logDir, 'c-json.log');
    await runtime.runDetached(id, { bundle, logPath: log, logRotation: { maxSize: 10_000, maxFiles: 4, compress: true } });
    await stopped(id);
    // The last rotation's compression may still be running in its own process.
    const files = await until('the compression of <log>.1', async () => {
      const names = (await readdir(logDir)).sort();
      return names.includes('c-json.log.1') || names.some((n) => n.endsWith('.tmp')) ? undefined : names;
    });
    expect(files).toEqual(['c-json.log', 'c-json.log.1.gz', 'c-json.log.2.gz', 'c-json.log.3.gz']);
    const inflated = gunzipSync(await readFile(join(logDir, 'c-json.log.1.gz'))).toString();
    expect(inflated.length).toBeGreaterThanOrEqual(10_000);
    expect(JSON.parse(inflated.split('\n')[0]!)).toMatchObject({ stream: expect.any(String), log: expect.any(String) });
    const all = await read(log);
    expect(lineNumbers(all).length).toBeGreaterThan(375);
    // The tail reaches into the compressed files (the live one holds about 125 records).
    expect(await read(log, { tail: 300 })).toEqual(all.slice(-300));
  });

  it('max-file 1 starts the log over at max-size', async () => {
    const { id, bundle, logDir } = await container(writer);
    const log = join(logDir, 'c-json.log');
    await runtime.runDetached(id, { bundle, logPath: log, logRotation: { maxSize: 10_000 } });
    await stopped(id);
    expect(await readdir(logDir)).toEqual(['c-json.log']);
    expect((await stat(log)).size).toBeLessThan(10_000 + 100);
    expect(lineNumbers(await read(log)).length).toBeLessThan(130);
  });

  it('follows the log through many rotations without losing or repeating a record', async () => {
    const { id, bundle, logDir } = await container(writer);
    const log = join(logDir, 'c-json.log');
    await runtime.create(id, { bundle, logPath: log, logRotation: { maxSize: 4_000, maxFiles: 1000 } });
    let done!: () => void;
    const exited = new Promise<void>((resolve) => (done = resolve));
    const reading = read(log, { follow: exited });
    await runtime.start(id);
    await stopped(id);
    done();
    const records = await reading;
    expect(lineNumbers(records)).toHaveLength(3000);
    expect(records.filter((r) => r.stream === 'stderr')).toHaveLength(30);
    expect((await readdir(logDir)).length).toBeGreaterThan(50);
  });

  it('refuses rotation options without a log, and with runc', async () => {
    const { id, bundle } = await container(['true']);
    await expect(runtime.runDetached(id, { bundle, logRotation: { maxSize: 1000 } })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.InvalidSpec));
    const runc = new Runtime({ runtime: 'runc', root: join(dir, 'runc-state') });
    await expect(runc.runDetached(id, { bundle, logPath: join(dir, 'x.log'), logRotation: { maxSize: 1000 } })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.NotSupported));
  });
});
