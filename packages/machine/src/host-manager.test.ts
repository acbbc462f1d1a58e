import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorKind } from '@berth/errors';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBundleSource } from './bundle-source.js';
import { MachineState, type Driver, type DriverConfig, type DriverDefinition, type DriverOptions } from './driver.js';
import { DriverRegistry } from './driver-registry.js';
import { DriverError } from './errors.js';
import { HostManager } from './host-manager.js';
import { HostStore } from './host-store.js';

// The host lifecycle around a driver, with a driver written for the test: it records what it is
// asked and fails where told. (Provisioning over SSH is covered by the provisioner tests and
// the e2e.)
type Behaviour = { failPreCheck?: boolean; failCreate?: boolean; failRemove?: boolean; hangState?: boolean };
interface Calls {
  created: string[];
  removed: string[];
}

class ScriptedDriver implements Driver {
  readonly driverName = 'scripted';
  #config: DriverConfig;
  readonly options: DriverOptions;
  readonly behaviour: Behaviour;
  readonly calls: Calls;
  constructor(options: DriverOptions, behaviour: Behaviour, calls: Calls) {
    this.options = options;
    this.behaviour = behaviour;
    this.calls = calls;
    this.#config = options.config ?? { resources: [] };
  }
  config(): DriverConfig {
    return this.#config;
  }
  async preCreateCheck(): Promise<void> {
    if (this.behaviour.failPreCheck) throw new DriverError('quota exceeded', { code: 'ERR_TEST_QUOTA', kind: ErrorKind.FailedPrecondition });
  }
  async create(): Promise<void> {
    // Made one resource, saved it, then died: what `rm` must still find.
    this.#config = { resources: ['vm-1'] };
    await this.options.context.saveConfig(this.#config);
    this.calls.created.push(this.options.context.machineName);
    if (this.behaviour.failCreate) throw new DriverError('instance never became running', { code: 'ERR_TEST_CREATE', kind: ErrorKind.Timeout });
  }
  async remove(): Promise<void> {
    if (this.behaviour.failRemove) throw new DriverError('API unreachable', { code: 'ERR_TEST_REMOVE', kind: ErrorKind.Unavailable });
    this.calls.removed.push(...((this.#config.resources as string[] | undefined) ?? []));
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async restart(): Promise<void> {}
  async kill(): Promise<void> {}
  async state(): Promise<MachineState> {
    if (this.behaviour.hangState) await new Promise(() => {});
    return MachineState.Stopped;
  }
  async ip(): Promise<string> {
    return '192.0.2.10';
  }
  async sshHostname(): Promise<string> {
    return '192.0.2.10';
  }
  async sshPort(): Promise<number> {
    return 22;
  }
  sshUser(): string {
    return 'root';
  }
  sshKeyPath(): string | undefined {
    return undefined;
  }
  async url(): Promise<string> {
    return 'tcp://192.0.2.10:2376';
  }
}

let dir: string;
let calls: Calls;
let behaviour: Behaviour;
let manager: HostManager;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-manager-'));
  calls = { created: [], removed: [] };
  behaviour = {};
  const definition: DriverDefinition = {
    name: 'scripted',
    aliases: ['old-scripted'],
    description: 'test driver',
    flags: [],
    create: (options) => new ScriptedDriver(options, behaviour, calls),
  };
  manager = new HostManager({
    store: new HostStore({ path: dir }),
    drivers: new DriverRegistry({ entries: [{ name: 'scripted', aliases: ['old-scripted'], load: async () => definition }] }),
    bundles: new LocalBundleSource({ paths: [] }),
  });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('HostManager', () => {
  it('fails a create whose pre-create check fails with exit status 3, leaving no entry', async () => {
    behaviour.failPreCheck = true;
    const events: string[] = [];
    await expect(manager.create({ name: 'h1', driver: 'scripted', flags: {}, progress: (e) => events.push(`${e.phase}:${e.status}`) })).rejects.toMatchObject({
      code: 'ERR_PRECREATE_CHECK',
      exitCode: 3,
      message: expect.stringContaining('quota exceeded'),
    });
    expect(calls.created).toEqual([]);
    expect(await manager.store.list()).toEqual([]);
    expect(events).toEqual(['pre-create-check:start']);
    // The CA was made before anything else, once for the store.
    expect(await readdir(join(dir, 'certs'))).toEqual(expect.arrayContaining(['ca.pem', 'cert.pem']));
  });

  it('removes what the driver made when create fails, and the entry with it', async () => {
    behaviour.failCreate = true;
    await expect(manager.create({ name: 'h1', driver: 'old-scripted', flags: {} })).rejects.toMatchObject({ code: 'ERR_TEST_CREATE' });
    expect(calls.removed).toEqual(['vm-1']);
    expect(await manager.store.list()).toEqual([]);
  });

  it('keeps the entry marked failed when cleanup fails too, and rm -f clears it', async () => {
    behaviour.failCreate = true;
    behaviour.failRemove = true;
    await expect(manager.create({ name: 'h1', driver: 'scripted', flags: {} })).rejects.toMatchObject({ code: 'ERR_TEST_CREATE' });
    const kept = await manager.store.load('h1');
    expect(kept).toMatchObject({ status: 'failed', driver: { resources: ['vm-1'] } });
    expect(kept.error).toMatch(/instance never became running.*API unreachable.*machine rm -f h1/);
    const summary = await manager.summary('h1', { timeoutMs: 5000 });
    expect(summary).toMatchObject({ state: 'Error', error: kept.error });
    await expect(manager.remove('h1')).rejects.toMatchObject({ code: 'ERR_HOST_REMOVE', message: expect.stringContaining('-f') });
    behaviour.failRemove = false;
    await manager.remove('h1');
    expect(calls.removed).toEqual(['vm-1']);
    expect(await manager.store.list()).toEqual([]);
    behaviour.failRemove = true;
    await expect(manager.create({ name: 'h2', driver: 'scripted', flags: {} })).rejects.toThrow();
    await manager.remove('h2', { force: true });
    expect(await manager.store.list()).toEqual([]);
  });

  it('refuses a second host of the same name and an unknown driver', async () => {
    await expect(manager.create({ name: 'bad name', driver: 'scripted', flags: {} })).rejects.toMatchObject({ code: 'ERR_HOST_NAME' });
    await expect(manager.create({ name: 'h1', driver: 'nope', flags: {} })).rejects.toMatchObject({ code: 'ERR_DRIVER_NOT_FOUND', message: expect.stringContaining('scripted') });
    behaviour.failCreate = true;
    await manager.store.reserve({
      configVersion: 1,
      name: 'taken',
      driverName: 'scripted',
      driver: {},
      engine: { env: [], labels: [], opts: [], insecureRegistries: [], registryMirrors: [] },
      tlsSans: [],
      certifiedAddresses: [],
      status: 'ready',
      createdAt: new Date().toISOString(),
    });
    await expect(manager.create({ name: 'taken', driver: 'scripted', flags: {} })).rejects.toMatchObject({ code: 'ERR_HOST_EXISTS' });
    expect(await manager.store.list()).toEqual(['taken']);
  });

  it('reports a host that does not answer in time as Timeout', async () => {
    behaviour.failCreate = true;
    behaviour.failRemove = true;
    await expect(manager.create({ name: 'slow', driver: 'scripted', flags: {} })).rejects.toThrow();
    await manager.store.update('slow', (c) => ({ ...c, status: 'ready' }));
    behaviour.hangState = true;
    expect(await manager.summary('slow', { timeoutMs: 200 })).toMatchObject({ name: 'slow', state: 'Timeout', driverName: 'scripted' });
  });
});
