import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { hasKind, isBerthError } from '@berth/errors';
import type { ContainerStream, Engine } from '@berth/engine';
import { EngineError, EngineErrorCode } from '@berth/engine/engine';
import type { Cli } from '../../cli/cli.js';
import { UsageError } from '../../cli/cli-errors.js';
import type { CommandSpec, ParsedArgs } from '../../cli/command-spec.js';
import { connectTerminal } from '../../streams/attach-io.js';
import { proxySignals } from '../../streams/signal-proxy.js';
import { buildCreatePlan, createOptions, type CreatePlan } from './create-options.js';

/**
 * Creates the container, pulling the image first when it is missing (docker's create → 404 →
 * pull → create), or always/never with `--pull`.
 */
async function createContainer(cli: Cli, engine: Engine, plan: CreatePlan): Promise<string> {
  // Pulling (credentials, references, progress) loads only when an image is missing.
  const pull = async () => {
    const { pullImage } = await import('../image/pull-image.js');
    await pullImage(cli, engine, plan.image, { to: 'stderr', quiet: plan.quiet, ...(plan.platform ? { platform: plan.platform } : {}) });
  };
  if (plan.pull === 'always') await pull();
  const create = async () => {
    const created = await engine.createContainer(plan.body, {
      signal: cli.signal,
      ...(plan.name ? { name: plan.name } : {}),
      ...(plan.platform ? { platform: plan.platform } : {}),
    });
    for (const warning of created.Warnings ?? []) cli.err(`WARNING: ${warning}\n`);
    return created.Id;
  };
  try {
    return await create();
  } catch (err) {
    if (!hasKind(err, 'NotFound') || plan.pull === 'never' || !(await imageMissing(engine, plan.image, cli.signal))) throw err;
    cli.err(`Unable to find image '${displayReference(plan.image)}' locally\n`);
    await pull();
    return create();
  }
}

async function imageMissing(engine: Engine, image: string, signal: AbortSignal): Promise<boolean> {
  try {
    await engine.inspectImage(image, { signal });
    return false;
  } catch (err) {
    return hasKind(err, 'NotFound');
  }
}

function displayReference(image: string): string {
  return /[:@]/.test(image.slice(image.lastIndexOf('/') + 1)) ? image : `${image}:latest`;
}

function terminalSize(cli: Cli): readonly [number, number] | undefined {
  const out = cli.io.stdout;
  return out.isTTY ? [out.rows, out.columns] : undefined;
}

async function writeCidfile(path: string | undefined, id: string): Promise<void> {
  if (!path) return;
  try {
    await writeFile(path, id, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`container ID file found, make sure the other container isn't running or delete ${path}`, 'run');
    throw err;
  }
}

/**
 * The exit status of a failed start: the engine's own (126/127) when it sends one; for a server
 * that only sends text (dockerd), docker's CLI rule on that text: not found → 127, permission
 * denied or a directory → 126, anything else 125.
 */
function withStartStatus(err: unknown): unknown {
  if (!isBerthError(err) || err.exitCode !== undefined || err.code !== EngineErrorCode.Remote) return err;
  const text = err.message;
  const status = /executable file not found|no such file or directory/.test(text) ? 127 : /permission denied|is a directory/.test(text) ? 126 : undefined;
  return status === undefined ? err : new EngineError(text, { code: err.code, kind: err.kind, exitCode: status, cause: err });
}

/** Docker's detach: the output ended while the container still runs. */
async function stillRunning(engine: Engine, id: string): Promise<boolean> {
  try {
    return (await engine.inspectContainer(id)).State.Running;
  } catch {
    return false;
  }
}

async function runContainer(args: ParsedArgs, cli: Cli): Promise<number> {
  const detach = args['detach'] === true;
  const tty = args['tty'] === true;
  const interactive = args['interactive'] === true;
  if (tty && interactive && !detach && !cli.io.stdin.isTTY) throw new UsageError('the input device is not a TTY', 'run');
  const plan = buildCreatePlan(args, cli.io.env, { detach, ...(tty ? { terminalSize: terminalSize(cli) ?? [0, 0] } : {}) });
  const engine = await cli.engine();
  const id = await createContainer(cli, engine, plan);
  await writeCidfile(plan.cidfile, id);
  if (detach) {
    await engine.startContainer(id, { signal: cli.signal });
    cli.out(`${id}\n`);
    return 0;
  }
  const body = plan.body;
  const autoRemove = body.HostConfig?.AutoRemove === true;
  const detachKeys = typeof args['detach-keys'] === 'string' ? args['detach-keys'] : undefined;
  let stream: ContainerStream | undefined;
  if (body.AttachStdin || body.AttachStdout || body.AttachStderr) {
    stream = await engine.attachContainer(id, {
      stream: true,
      stdin: body.AttachStdin === true,
      stdout: body.AttachStdout === true,
      stderr: body.AttachStderr === true,
      ...(detachKeys ? { detachKeys } : {}),
    });
  }
  const wait = await engine.waitContainer(id, { condition: autoRemove ? 'removed' : 'next-exit' });
  try {
    await engine.startContainer(id, { signal: cli.signal });
  } catch (err) {
    stream?.close();
    if (autoRemove) await engine.removeContainer(id, { force: true }).catch(() => undefined);
    throw withStartStatus(err);
  }
  const release = !tty && args['sig-proxy'] !== false ? proxySignals(cli, engine, id) : () => undefined;
  try {
    if (stream) await connectTerminal(cli, stream, { stdin: body.AttachStdin === true, tty });
    // Output ends when the container exits, or when the user detached (ctrl-p ctrl-q). The exit
    // usually arrives at once; only when it does not is the container asked whether it still runs.
    const settled = await Promise.race([wait.result.then((r) => ({ r })), sleep(200, undefined, { ref: false }).then(() => undefined)]);
    if (!settled && stream && (await stillRunning(engine, id))) return 0;
    const result = settled?.r ?? (await wait.result);
    if (result.Error?.Message) cli.err(`engine: ${result.Error.Message}\n`);
    return result.StatusCode;
  } finally {
    release();
  }
}

const runOptions = {
  ...createOptions,
  detach: { type: 'boolean', alias: 'd', describe: 'Run container in background and print container ID' },
  'detach-keys': { type: 'string', requiresArg: true, describe: 'Override the key sequence for detaching a container' },
  'sig-proxy': { type: 'boolean', default: true, describe: 'Proxy received signals to the process' },
} as const;

/** `engine run`. */
export const runCommand: CommandSpec = {
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
  describe: 'Create and run a new container from an image',
  options: runOptions,
  interspersed: false,
  args: [1, Infinity],
  failureStatus: 125,
  run: runContainer,
};

/** `engine create`. */
export const createCommand: CommandSpec = {
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
  describe: 'Create a new container',
  options: createOptions,
  interspersed: false,
  args: [1, Infinity],
  failureStatus: 125,
  async run(args, cli) {
    const plan = buildCreatePlan(args, cli.io.env, { detach: false, ...(args['tty'] === true ? { terminalSize: terminalSize(cli) ?? [0, 0] } : {}) });
    const engine = await cli.engine();
    const id = await createContainer(cli, engine, plan);
    await writeCidfile(plan.cidfile, id);
    cli.out(`${id}\n`);
  },
};
