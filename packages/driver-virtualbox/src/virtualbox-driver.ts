import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { extname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorKind, describeError, throwIfAborted } from '@berth/errors';
import { withFileLock } from '@berth/fsutil';
import {
  DriverError,
  DriverErrorCode,
  MachineState,
  SshKeyPair,
  invalidOption,
  type Driver,
  type DriverCallOptions,
  type DriverConfig,
  type DriverContext,
} from '@berth/machine';
import { ensureBootImage } from './boot-image.js';
import { makeCloudInitSeed } from './cloud-init.js';
import { ipText, ipValue, netmaskOf, type VirtualBoxDriverConfig } from './flags.js';
import { VBoxManage, VirtualBoxError, VirtualBoxErrorCode, isObjectNotFound, parseMachineReadable } from './vbox-manage.js';

/** The engine's TLS port on the VM's host-only address. */
const enginePort = 2376;
/** Extradata key holding each Berth VM's host-only address, so parallel creates pick different ones. */
const ipKey = 'berth/hostonly-ip';
/**
 * Global extradata marking a host-only interface Berth made: whichever host is removed last
 * removes it, not only the one that made it (docker-machine never removed them).
 */
const madeInterfaceKey = (name: string) => `berth/hostonlyif/${name}`;

/** Options of `VirtualBoxDriver`. */
export interface VirtualBoxDriverOptions {
  readonly context: DriverContext;
  readonly config: VirtualBoxDriverConfig;
}

/** VirtualBox's `VMState` as a machine state. */
function machineStateOf(vmState: string | undefined): MachineState {
  switch (vmState) {
    case 'running':
      return MachineState.Running;
    case 'paused':
      return MachineState.Paused;
    case 'saved':
      return MachineState.Saved;
    case 'poweroff':
    case 'aborted':
      return MachineState.Stopped;
    case 'starting':
    case 'restoring':
      return MachineState.Starting;
    case 'stopping':
    case 'saving':
      return MachineState.Stopping;
    default:
      return MachineState.None;
  }
}

/** A MAC in VirtualBox's OUI (08:00:27), as VBoxManage takes it: 12 hex digits. */
function randomMac(): string {
  return `080027${randomBytes(3).toString('hex').toUpperCase()}`;
}

/** A free TCP port on 127.0.0.1 for the SSH port forward. */
async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A host in a local VirtualBox VM, driven through VBoxManage. The VM boots a cloud image (or
 * an ISO) with a NoCloud seed carrying the SSH key and a fixed host-only address; SSH goes
 * through a NAT port forward on 127.0.0.1, the engine through the host-only address. `rm`
 * unregisters and deletes the VM with its disk, and the host-only interface when Berth made it
 * and no other VM uses it any more.
 */
export class VirtualBoxDriver implements Driver {
  readonly driverName = 'virtualbox';
  readonly #context: DriverContext;
  readonly #vbox: VBoxManage;
  #config: VirtualBoxDriverConfig;

  constructor(options: VirtualBoxDriverOptions) {
    if (!options?.context || !options.config) {
      throw new DriverError('VirtualBoxDriver needs a context and a config', { code: DriverErrorCode.InvalidOption, kind: ErrorKind.InvalidArgument });
    }
    this.#context = options.context;
    this.#config = options.config;
    this.#vbox = new VBoxManage({ command: options.config.vboxManage, logger: options.context.logger });
  }

  config(): DriverConfig {
    return this.#config;
  }

  sshUser(): string {
    return this.#config.sshUser;
  }

  sshKeyPath(): string {
    return join(this.#context.machineDir, this.#config.sshKeyFile);
  }

  async sshHostname(): Promise<string> {
    return '127.0.0.1';
  }

  async sshPort(): Promise<number> {
    if (!this.#config.sshPort) throw new DriverError(`host ${this.#context.machineName} has no SSH port forward yet`, { code: DriverErrorCode.HostGone, kind: ErrorKind.FailedPrecondition });
    return this.#config.sshPort;
  }

  async ip(): Promise<string> {
    if (!this.#config.vmIp) throw new DriverError(`host ${this.#context.machineName} has no host-only address yet`, { code: DriverErrorCode.HostGone, kind: ErrorKind.FailedPrecondition });
    return this.#config.vmIp;
  }

  async url(): Promise<string> {
    return `tcp://${await this.ip()}:${enginePort}`;
  }

  /** VBoxManage answers, VT-x/AMD-V is on, the host-only range is allowed, and the boot image is in the cache. */
  async preCreateCheck(options: DriverCallOptions = {}): Promise<void> {
    const { signal } = options;
    const version = (await this.#vbox.run(['--version'], { signal })).trim();
    const [major = 0, minor = 0, patch = 0] = version.split(/[^\d]+/).map(Number);
    if (major < 6 || (major === 6 && minor < 1)) {
      throw new VirtualBoxError(`VirtualBox ${version} is too old: Berth needs 6.1 or later`, { code: VirtualBoxErrorCode.Missing, kind: ErrorKind.FailedPrecondition });
    }
    const modernRanges = major > 6 || (major === 6 && minor === 1 && patch >= 28);
    const hostIp = ipValue(this.#config.hostOnlyIp);
    if (modernRanges && (hostIp < ipValue('192.168.56.0') || hostIp > ipValue('192.168.63.255'))) {
      this.#context.logger.warn('VirtualBox 6.1.28 and later allow host-only addresses in 192.168.56.0/21 only, unless /etc/vbox/networks.conf allows more', {
        cidr: `${this.#config.hostOnlyIp}/${this.#config.hostOnlyPrefix}`,
      });
    }
    if (this.#config.vtxCheck && process.platform === 'linux') {
      const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
      if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo)) {
        throw new VirtualBoxError('this computer does not have VT-X/AMD-v enabled (no vmx or svm CPU flag); enable it in the firmware, or pass --virtualbox-no-vtx-check', {
          code: VirtualBoxErrorCode.NoVtx,
          kind: ErrorKind.FailedPrecondition,
        });
      }
    }
    // Download now, so a failed download never leaves a half-made VM.
    await this.#bootImage(signal);
    const existing = await this.#vmInfo(signal).catch((e: unknown) => (isObjectNotFound(e) ? undefined : Promise.reject(e)));
    if (existing) throw new DriverError(`a VirtualBox VM named ${this.#config.vmName} already exists`, { code: 'ERR_VIRTUALBOX_VM_EXISTS', kind: ErrorKind.AlreadyExists });
  }

  async create(options: DriverCallOptions = {}): Promise<void> {
    const { signal } = options;
    try {
      const image = await this.#bootImage(signal);
      const key = await SshKeyPair.generate(signal ? { signal } : {});
      await key.write(this.sshKeyPath());
      // One create at a time picks the interface and the address and registers its VM. The lock
      // is per user, not per store, as VirtualBox's registry is.
      await withFileLock(join(tmpdir(), `berth-virtualbox-network-${userInfo().uid}.lock`), async () => {
        await this.#prepareHostOnlyInterface(signal);
        await this.#chooseAddress(signal);
        await this.#registerVm(signal);
      });
      const natMac = randomMac();
      const hostOnlyMac = randomMac();
      const sshPort = await freeLoopbackPort();
      this.#config = { ...this.#config, sshPort };
      await this.#save(signal);
      await this.#configureVm(image, natMac, hostOnlyMac, signal);
      await this.#attachStorage(image, key, natMac, hostOnlyMac, signal);
      if (this.#config.share) {
        await this.#vbox.run(['sharedfolder', 'add', this.#config.vmName, '--name', this.#config.share.name, '--hostpath', this.#config.share.hostPath, '--automount'], { signal });
      }
      await this.#vbox.run(['startvm', this.#config.vmName, '--type', this.#config.uiType], { signal });
      await this.#waitState(['running'], signal);
    } catch (error) {
      this.#context.logger.warn('create failed, removing what was made', { error: describeError(error) });
      try {
        await this.remove({});
      } catch (cleanup) {
        throw new VirtualBoxError(`create failed (${describeError(error)}) and cleanup failed too: ${describeError(cleanup)}; run rm again`, {
          code: VirtualBoxErrorCode.Command,
          kind: ErrorKind.Internal,
          cause: error,
        });
      }
      throw error;
    }
  }

  async remove(options: DriverCallOptions = {}): Promise<void> {
    const { signal } = options;
    const created = () => this.#config.created;
    if (created().vm) {
      const info = await this.#vmInfo(signal).catch((e: unknown) => (isObjectNotFound(e) ? undefined : Promise.reject(e)));
      if (info) {
        const state = info.get('VMState');
        if (state === 'running' || state === 'paused' || state === 'stopping' || state === 'starting') {
          await this.#vbox.run(['controlvm', this.#config.vmName, 'poweroff'], { signal });
        }
        await this.#vbox.run(['unregistervm', this.#config.vmName, '--delete'], { signal });
      }
      await this.#setCreated({ vm: undefined }, signal);
    }
    // A disk cloned but never attached stays registered after the VM is gone.
    if (created().disk) {
      await this.#vbox.run(['closemedium', 'disk', join(this.#context.machineDir, created().disk!), '--delete'], { signal }).catch((e: unknown) => {
        if (!isObjectNotFound(e)) throw e;
      });
      await this.#setCreated({ disk: undefined }, signal);
    }
    const name = this.#config.hostOnlyInterface;
    if (name) {
      const made = /^Value: /m.test(await this.#vbox.run(['getextradata', 'global', madeInterfaceKey(name)], { signal }));
      const users = made ? await this.#vmsUsingInterface(name, signal) : [];
      if (made && users.length === 0) {
        await this.#vbox.run(['hostonlyif', 'remove', name], { signal }).catch((e: unknown) => {
          if (!isObjectNotFound(e)) throw e;
        });
        await this.#vbox.run(['setextradata', 'global', madeInterfaceKey(name)], { signal });
      } else if (made) this.#context.logger.info('host-only interface still used by other VMs, leaving it', { interface: name, vms: users.join(',') });
    }
  }

  async start(options: DriverCallOptions = {}): Promise<void> {
    await this.#vbox.run(['startvm', this.#config.vmName, '--type', this.#config.uiType], { signal: options.signal });
    await this.#waitState(['running'], options.signal);
  }

  /** An ACPI power-button press, then waits for the guest to power off. */
  async stop(options: DriverCallOptions = {}): Promise<void> {
    await this.#vbox.run(['controlvm', this.#config.vmName, 'acpipowerbutton'], { signal: options.signal });
    await this.#waitState(['poweroff'], options.signal);
  }

  async kill(options: DriverCallOptions = {}): Promise<void> {
    await this.#vbox.run(['controlvm', this.#config.vmName, 'poweroff'], { signal: options.signal });
    await this.#waitState(['poweroff', 'aborted'], options.signal);
  }

  /** Stop then start, as docker-machine did: a clean guest shutdown, not a reset. */
  async restart(options: DriverCallOptions = {}): Promise<void> {
    if ((await this.state(options)) === MachineState.Running) await this.stop(options);
    await this.start(options);
  }

  async state(options: DriverCallOptions = {}): Promise<MachineState> {
    if (!this.#config.created.vm) return MachineState.None;
    try {
      return machineStateOf((await this.#vmInfo(options.signal)).get('VMState'));
    } catch (error) {
      if (isObjectNotFound(error)) {
        throw new DriverError(`VirtualBox VM ${this.#config.vmName} of host ${this.#context.machineName} does not exist`, { code: DriverErrorCode.HostGone, kind: ErrorKind.NotFound, cause: error });
      }
      throw error;
    }
  }

  async #save(signal: AbortSignal | undefined): Promise<void> {
    await this.#context.saveConfig(this.#config, signal ? { signal } : {});
  }

  async #setCreated(change: Partial<VirtualBoxDriverConfig['created']>, signal: AbortSignal | undefined): Promise<void> {
    this.#config = { ...this.#config, created: { ...this.#config.created, ...change } };
    await this.#save(signal);
  }

  #bootImage(signal: AbortSignal | undefined): Promise<string> {
    return ensureBootImage({ source: this.#config.bootImage, cacheDir: join(this.#context.storePath, 'cache', 'virtualbox'), logger: this.#context.logger, signal });
  }

  async #vmInfo(signal: AbortSignal | undefined, name = this.#config.vmName): Promise<Map<string, string>> {
    return parseMachineReadable(await this.#vbox.run(['showvminfo', name, '--machinereadable'], { signal }));
  }

  async #vmNames(signal: AbortSignal | undefined): Promise<string[]> {
    const list = await this.#vbox.run(['list', 'vms'], { signal });
    return [...list.matchAll(/^"(.+)" \{[0-9a-f-]+\}$/gm)].map((m) => m[1]!);
  }

  async #vmsUsingInterface(name: string, signal: AbortSignal | undefined): Promise<string[]> {
    const users: string[] = [];
    for (const vm of await this.#vmNames(signal)) {
      const info = await this.#vmInfo(signal, vm).catch(() => new Map<string, string>());
      if ([...info].some(([key, value]) => /^hostonlyadapter\d$/.test(key) && value === name)) users.push(vm);
    }
    return users;
  }

  /** The host-only interface with the host address of the CIDR, made (and configured) when there is none. */
  async #prepareHostOnlyInterface(signal: AbortSignal | undefined): Promise<void> {
    const c = this.#config;
    const netmask = netmaskOf(c.hostOnlyPrefix);
    const listing = await this.#vbox.run(['list', 'hostonlyifs'], { signal });
    for (const block of listing.split(/\n\s*\n/)) {
      const field = (key: string) => new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(block)?.[1]?.trim();
      if (field('IPAddress') === c.hostOnlyIp && field('NetworkMask') === netmask && field('Name')) {
        this.#config = { ...this.#config, hostOnlyInterface: field('Name') };
        return;
      }
    }
    const made = await this.#vbox.run(['hostonlyif', 'create'], { signal });
    const name = /Interface '([^']+)' was successfully created/.exec(made)?.[1];
    if (!name) throw new VirtualBoxError(`VBoxManage hostonlyif create did not name the interface: ${made.trim()}`, { code: VirtualBoxErrorCode.Command, kind: ErrorKind.Internal });
    this.#config = { ...this.#config, hostOnlyInterface: name };
    await this.#save(signal);
    await this.#vbox.run(['setextradata', 'global', madeInterfaceKey(name), this.#context.machineName], { signal });
    await this.#vbox.run(['hostonlyif', 'ipconfig', name, '--ip', c.hostOnlyIp, '--netmask', netmask], { signal });
  }

  /** The VM's fixed address: the flag's, or the first one from .10 of the network that no other Berth VM holds. */
  async #chooseAddress(signal: AbortSignal | undefined): Promise<void> {
    const c = this.#config;
    const size = 2 ** (32 - c.hostOnlyPrefix);
    const network = ipValue(c.hostOnlyIp) - (ipValue(c.hostOnlyIp) % size);
    const used = new Set<string>([c.hostOnlyIp]);
    for (const vm of await this.#vmNames(signal)) {
      const value = /^Value: (.+)$/m.exec(await this.#vbox.run(['getextradata', vm, ipKey], { signal }).catch(() => ''))?.[1]?.trim();
      if (value) used.add(value);
    }
    if (c.vmIp) {
      const at = ipValue(c.vmIp);
      if (at <= network || at >= network + size - 1) throw invalidOption(`--virtualbox-hostonly-ip ${c.vmIp} is not in ${ipText(network)}/${c.hostOnlyPrefix}`);
      if (used.has(c.vmIp)) throw new DriverError(`host-only address ${c.vmIp} is taken by another VM`, { code: DriverErrorCode.InvalidOption, kind: ErrorKind.Conflict });
      return;
    }
    for (let host = Math.min(10, size - 2); host < size - 1; host++) {
      const candidate = ipText(network + host);
      if (!used.has(candidate)) {
        this.#config = { ...this.#config, vmIp: candidate };
        return;
      }
    }
    throw new DriverError(`no free address left in ${ipText(network)}/${c.hostOnlyPrefix}`, { code: 'ERR_VIRTUALBOX_NO_ADDRESS', kind: ErrorKind.Unavailable });
  }

  async #registerVm(signal: AbortSignal | undefined): Promise<void> {
    const c = this.#config;
    await this.#vbox.run(['createvm', '--name', c.vmName, '--basefolder', this.#context.machineDir, '--ostype', 'Ubuntu_64', '--register'], { signal });
    await this.#setCreated({ vm: c.vmName }, signal);
    await this.#vbox.run(['setextradata', c.vmName, ipKey, c.vmIp!], { signal });
  }

  async #configureVm(image: string, natMac: string, hostOnlyMac: string, signal: AbortSignal | undefined): Promise<void> {
    const c = this.#config;
    const iso = extname(image).toLowerCase() === '.iso';
    await this.#vbox.run(
      [
        'modifyvm', c.vmName,
        '--firmware', 'bios',
        '--memory', String(c.memory),
        '--cpus', String(c.cpus),
        '--acpi', 'on',
        '--ioapic', 'on',
        '--rtcuseutc', 'on',
        '--graphicscontroller', 'vmsvga',
        '--vram', '16',
        '--boot1', iso ? 'dvd' : 'disk',
        '--boot2', iso ? 'disk' : 'dvd',
        '--boot3', 'none',
        '--boot4', 'none',
        '--nic1', 'nat',
        '--nictype1', c.natNicType,
        '--macaddress1', natMac,
        '--cableconnected1', 'on',
        '--natpf1', `ssh,tcp,127.0.0.1,${c.sshPort},,22`,
        '--natdnshostresolver1', c.hostDnsResolver ? 'on' : 'off',
        '--natdnsproxy1', c.dnsProxy ? 'on' : 'off',
        '--nic2', 'hostonly',
        '--hostonlyadapter2', c.hostOnlyInterface!,
        '--nictype2', c.hostOnlyNicType,
        '--nicpromisc2', c.hostOnlyPromisc,
        '--macaddress2', hostOnlyMac,
        '--cableconnected2', 'on',
        // Ubuntu's cloud images write their console to ttyS0 and stall at boot without a serial port.
        '--uart1', '0x3F8', '4',
        '--uartmode1', 'file', join(this.#context.machineDir, 'console.log'),
      ],
      { signal },
    );
  }

  async #attachStorage(image: string, key: SshKeyPair, natMac: string, hostOnlyMac: string, signal: AbortSignal | undefined): Promise<void> {
    const c = this.#config;
    const dir = this.#context.machineDir;
    const iso = extname(image).toLowerCase() === '.iso';
    const disk = 'disk.vdi';
    await this.#setCreated({ disk }, signal);
    if (iso) {
      await this.#vbox.run(['createmedium', 'disk', '--filename', join(dir, disk), '--size', String(c.diskSize), '--format', 'VDI'], { signal });
    } else {
      await this.#vbox.run(['clonemedium', 'disk', image, join(dir, disk), '--format', 'VDI'], { signal });
      await this.#vbox.run(['modifymedium', 'disk', join(dir, disk), '--resize', String(c.diskSize)], { signal });
    }
    const seed = makeCloudInitSeed({
      instanceId: `berth-${randomUUID()}`,
      hostname: c.vmName,
      sshUser: c.sshUser,
      publicKey: key.publicKey,
      natMac,
      hostOnlyMac,
      hostOnlyAddress: `${c.vmIp}/${c.hostOnlyPrefix}`,
      share: c.share,
    });
    await writeFile(join(dir, 'seed.iso'), seed);
    await this.#vbox.run(['storagectl', c.vmName, '--name', 'SATA', '--add', 'sata', '--controller', 'IntelAhci', '--portcount', '4', '--hostiocache', 'on'], { signal });
    const attach = (port: number, type: string, medium: string) =>
      this.#vbox.run(['storageattach', c.vmName, '--storagectl', 'SATA', '--port', String(port), '--device', '0', '--type', type, '--medium', medium], { signal });
    await attach(0, 'hdd', join(dir, disk));
    await attach(1, 'dvddrive', join(dir, 'seed.iso'));
    if (iso) await attach(2, 'dvddrive', image);
  }

  /** Polls `showvminfo` (a quarter second, backing off to two) until VMState is one of `states`. */
  async #waitState(states: readonly string[], signal: AbortSignal | undefined): Promise<void> {
    const deadline = Date.now() + this.#config.waitTimeoutSeconds * 1000;
    for (let delay = 250; ; delay = Math.min(delay * 1.5, 2000)) {
      const state = (await this.#vmInfo(signal)).get('VMState');
      if (state && states.includes(state)) return;
      if (state === 'aborted' && states.includes('running')) {
        throw new VirtualBoxError(`VM ${this.#config.vmName} aborted while starting; see ${join(this.#context.machineDir, this.#config.vmName, 'Logs', 'VBox.log')}`, {
          code: VirtualBoxErrorCode.Command,
          kind: ErrorKind.Unavailable,
        });
      }
      if (Date.now() + delay > deadline) {
        throw new DriverError(`VM ${this.#config.vmName} did not become ${states.join(' or ')} within ${this.#config.waitTimeoutSeconds}s (it is ${state ?? 'unknown'})`, {
          code: DriverErrorCode.StateTimeout,
          kind: ErrorKind.Timeout,
        });
      }
      await sleep(delay, undefined, signal ? { signal } : {}).catch(() => throwIfAborted(signal));
    }
  }
}
