import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { FaultPlan } from './fake-server.js';

/*
 * A stand-in for VirtualBox's VBoxManage: an executable named `VBoxManage` in a bin directory
 * the test puts on PATH. The executable is a few lines of Node that send their argv and cwd
 * over a unix socket to this process, where the fake keeps the VMs, host-only interfaces and
 * media, records every call, and answers with VBoxManage's output format, its
 * `VBoxManage: error:` lines and exit codes. Disk commands create and delete real files, as
 * VirtualBox does.
 */

/** One VBoxManage invocation as the fake received it. */
export interface VBoxCall {
  readonly args: readonly string[];
  readonly cwd: string;
}

export interface FakeVm {
  readonly name: string;
  readonly uuid: string;
  readonly basefolder: string;
  readonly ostype: string;
  /** `modifyvm` settings by option name without dashes (`memory`, `cpus`, `nic1`, `natpf1`, ...), repeated ones as lists. */
  readonly settings: Map<string, string[]>;
  /** Storage attachments by `controller/port/device`. */
  readonly attachments: Map<string, { type: string; medium: string }>;
  readonly controllers: Map<string, string>;
  readonly sharedFolders: Map<string, string>;
  readonly extradata: Map<string, string>;
  state: 'poweroff' | 'running' | 'paused' | 'saved' | 'aborted' | 'stopping';
  /** showvminfo calls left before an ACPI shutdown finishes. */
  shutdownTicks: number;
}

export interface FakeHostOnlyInterface {
  readonly name: string;
  ip: string;
  netmask: string;
  readonly preexisting: boolean;
}

class VBoxError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

interface Answer {
  stdout: string;
  stderr: string;
  code: number;
}

export interface FakeVBoxManageOptions {
  /** The version `--version` prints (default `7.1.4r165100`). */
  readonly version?: string;
  /** showvminfo calls an ACPI shutdown takes (default 1). */
  readonly shutdownCalls?: number;
}

/** The stand-in VBoxManage and the state behind it. */
export class FakeVBoxManage {
  /** The directory holding the `VBoxManage` executable: put it first on PATH. */
  readonly binDir: string;
  readonly calls: VBoxCall[] = [];
  readonly faults = new FaultPlan();
  readonly vms = new Map<string, FakeVm>();
  readonly hostOnlyInterfaces = new Map<string, FakeHostOnlyInterface>();
  /** `setextradata global` values. */
  readonly globalExtradata = new Map<string, string>();
  /** Registered disk media: absolute path to size in MB. */
  readonly media = new Map<string, number>();
  /** When set, `startvm` leaves VMs `aborted` (they never run). */
  neverRunning = false;
  /**
   * Where a running VM's NAT port forwards lead (`natpf1 ssh,tcp,127.0.0.1,PORT,,22` becomes a
   * real TCP forward from 127.0.0.1:PORT to this address, port 22), as VirtualBox's NAT would
   * lead into the guest: tests point it at an SSH rig host. Unset, no forward is opened.
   */
  guestAddress: string | undefined;
  readonly #forwards = new Map<string, { server: TcpServer; sockets: Set<Socket> }[]>();
  readonly #root: string;
  readonly #socket: string;
  readonly #version: string;
  readonly #shutdownCalls: number;
  #server: Server | undefined;

  private constructor(root: string, options: FakeVBoxManageOptions) {
    this.#root = root;
    this.binDir = join(root, 'bin');
    this.#socket = join(root, 'vbox.sock');
    this.#version = options.version ?? '7.1.4r165100';
    this.#shutdownCalls = options.shutdownCalls ?? 1;
  }

  static async start(options: FakeVBoxManageOptions = {}): Promise<FakeVBoxManage> {
    const fake = new FakeVBoxManage(await mkdtemp(join(tmpdir(), 'berth-fake-vbox-')), options);
    await mkdir(fake.binDir);
    const client = [
      `#!${process.execPath}`,
      "'use strict';",
      "const http = require('node:http');",
      `const request = http.request({ socketPath: ${JSON.stringify(fake.#socket)}, path: '/', method: 'POST' }, (response) => {`,
      "  let body = '';",
      "  response.setEncoding('utf8');",
      "  response.on('data', (chunk) => { body += chunk; });",
      "  response.on('end', () => { const answer = JSON.parse(body); process.stdout.write(answer.stdout); process.stderr.write(answer.stderr); process.exitCode = answer.code; });",
      '});',
      "request.on('error', (error) => { process.stderr.write('VBoxManage stand-in: ' + error.message + '\\n'); process.exitCode = 1; });",
      'request.end(JSON.stringify({ args: process.argv.slice(2), cwd: process.cwd() }));',
      '',
    ].join('\n');
    await writeFile(join(fake.binDir, 'VBoxManage'), client, { mode: 0o755 });
    fake.#server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const call = JSON.parse(body) as VBoxCall;
        fake
          .#answer(call)
          .catch((error: unknown) => ({ stdout: '', stderr: `fake VBoxManage bug: ${String(error)}\n`, code: 99 }))
          .then((answer) => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify(answer));
          });
      });
    });
    await new Promise<void>((resolveListen, reject) => {
      fake.#server!.once('error', reject);
      fake.#server!.listen(fake.#socket, () => resolveListen());
    });
    return fake;
  }

  /** A host-only interface that exists before the driver runs (never removed by it). */
  seedHostOnlyInterface(name: string, ip: string, netmask = '255.255.255.0'): FakeHostOnlyInterface {
    const hostIf = { name, ip, netmask, preexisting: true };
    this.hostOnlyInterfaces.set(name, hostIf);
    return hostIf;
  }

  /** What a driver made and did not remove: VMs, media, host-only interfaces it created, global extradata. */
  leftovers(): string[] {
    return [
      ...[...this.globalExtradata.keys()].map((key) => `global extradata ${key}`),
      ...[...this.vms.values()].map((vm) => `vm ${vm.name} (${vm.state})`),
      ...[...this.media.keys()].map((path) => `medium ${path}`),
      ...[...this.hostOnlyInterfaces.values()].filter((h) => !h.preexisting).map((h) => `hostonlyif ${h.name}`),
    ];
  }

  /** Calls whose first argument is `command` (`modifyvm`, `startvm`, ...). */
  callsOf(command: string): VBoxCall[] {
    return this.calls.filter((c) => c.args[0] === command);
  }

  async close(): Promise<void> {
    for (const uuid of [...this.#forwards.keys()]) await this.#closeForwards(uuid);
    await new Promise<void>((resolveClose) => (this.#server ? this.#server.close(() => resolveClose()) : resolveClose()));
    await rm(this.#root, { recursive: true, force: true });
  }

  async #answer(call: VBoxCall): Promise<Answer> {
    this.calls.push(call);
    const [command = '', ...rest] = call.args;
    try {
      const fault = this.faults.take(command);
      if (fault) throw new VBoxError(`VBoxManage: error: ${fault.code ?? `injected failure of ${command}`}`);
      const stdout = await this.#run(command, rest, call.cwd);
      return { stdout, stderr: '', code: 0 };
    } catch (error) {
      if (!(error instanceof VBoxError)) throw error;
      return { stdout: '', stderr: `${error.message}\n`, code: error.exitCode };
    }
  }

  #vm(nameOrUuid: string | undefined): FakeVm {
    const vm = [...this.vms.values()].find((v) => v.name === nameOrUuid || v.uuid === nameOrUuid);
    if (!vm) {
      throw new VBoxError(
        `VBoxManage: error: Could not find a registered machine named '${nameOrUuid ?? ''}'\nVBoxManage: error: Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports`,
      );
    }
    return vm;
  }

  async #run(command: string, args: readonly string[], cwd: string): Promise<string> {
    const option = (name: string): string | undefined => {
      const at = args.indexOf(name);
      return at >= 0 ? args[at + 1] : undefined;
    };
    switch (command) {
      case '--version':
        return `${this.#version}\n`;
      case 'list':
        return this.#list(args[0]);
      case 'hostonlyif':
        return this.#hostOnlyIf(args);
      case 'createvm': {
        const name = option('--name');
        if (!name) throw new VBoxError('VBoxManage: error: --name is required');
        if ([...this.vms.values()].some((v) => v.name === name)) throw new VBoxError(`VBoxManage: error: Machine settings file '${name}.vbox' already exists`);
        const uuid = randomUUID();
        const basefolder = option('--basefolder') ?? join(cwd, 'VirtualBox VMs');
        if (!args.includes('--register')) throw new VBoxError('VBoxManage: error: the fake only supports createvm --register');
        await mkdir(join(basefolder, name), { recursive: true });
        await writeFile(join(basefolder, name, `${name}.vbox`), `<VirtualBox><Machine uuid="{${uuid}}" name="${name}"/></VirtualBox>\n`);
        this.vms.set(uuid, {
          name,
          uuid,
          basefolder,
          ostype: option('--ostype') ?? 'Other',
          settings: new Map(),
          attachments: new Map(),
          controllers: new Map(),
          sharedFolders: new Map(),
          extradata: new Map(),
          state: 'poweroff',
          shutdownTicks: 0,
        });
        return `Virtual machine '${name}' is created and registered.\nUUID: ${uuid}\nSettings file: '${join(basefolder, name, `${name}.vbox`)}'\n`;
      }
      case 'modifyvm': {
        const vm = this.#vm(args[0]);
        if (vm.state === 'running') throw new VBoxError(`VBoxManage: error: The machine '${vm.name}' is already locked for a session (or being unlocked)`);
        for (let i = 1; i < args.length; i++) {
          const key = args[i]!.replace(/^--/, '');
          const value = args[i + 1] !== undefined && !args[i + 1]!.startsWith('--') ? args[++i]! : '';
          if (/^natpf\d$/.test(key) && value === 'delete') continue;
          const list = /^natpf\d$/.test(key) ? (vm.settings.get(key) ?? []) : [];
          list.push(value);
          vm.settings.set(key, list);
        }
        return '';
      }
      case 'storagectl': {
        const vm = this.#vm(args[0]);
        const name = option('--name');
        if (!name) throw new VBoxError('VBoxManage: error: --name is required');
        vm.controllers.set(name, option('--add') ?? 'sata');
        return '';
      }
      case 'storageattach': {
        const vm = this.#vm(args[0]);
        const controller = option('--storagectl') ?? '';
        if (!vm.controllers.has(controller)) throw new VBoxError(`VBoxManage: error: Could not find a controller named '${controller}'`);
        const medium = option('--medium') ?? '';
        const type = option('--type') ?? 'hdd';
        const path = medium === 'none' || medium === 'emptydrive' ? medium : resolve(cwd, medium);
        if (path !== 'none' && path !== 'emptydrive') {
          await stat(path).catch(() => {
            throw new VBoxError(`VBoxManage: error: Could not find file for the medium '${path}' (VERR_FILE_NOT_FOUND)`);
          });
          if (type === 'hdd' && !this.media.has(path)) this.media.set(path, Math.ceil((await stat(path)).size / 1048576));
        }
        vm.attachments.set(`${controller}/${option('--port') ?? '0'}/${option('--device') ?? '0'}`, { type, medium: path });
        return '';
      }
      case 'clonemedium': {
        const [kind, source, target] = args;
        if (kind !== 'disk' || !source || !target) throw new VBoxError('VBoxManage: error: the fake clones disks: clonemedium disk SOURCE TARGET');
        const from = resolve(cwd, source);
        const to = resolve(cwd, target);
        await stat(from).catch(() => {
          throw new VBoxError(`VBoxManage: error: Could not find file for the medium '${from}' (VERR_FILE_NOT_FOUND)`);
        });
        await mkdir(dirname(to), { recursive: true });
        await copyFile(from, to);
        this.media.set(to, Math.ceil((await stat(to)).size / 1048576));
        return `0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\nClone medium created in format '${option('--format') ?? 'VDI'}'. UUID: ${randomUUID()}\n`;
      }
      case 'modifymedium': {
        const path = resolve(cwd, args[0] === 'disk' ? (args[1] ?? '') : (args[0] ?? ''));
        if (!this.media.has(path)) throw new VBoxError(`VBoxManage: error: Could not find file for the medium '${path}' (VERR_FILE_NOT_FOUND)`);
        const size = option('--resize');
        if (size) this.media.set(path, Math.max(this.media.get(path)!, Number(size)));
        return '';
      }
      case 'createmedium': {
        const path = resolve(cwd, option('--filename') ?? '');
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, '');
        this.media.set(path, Number(option('--size') ?? '0'));
        return `Medium created. UUID: ${randomUUID()}\n`;
      }
      case 'closemedium': {
        const path = resolve(cwd, args[0] === 'disk' ? (args[1] ?? '') : (args[0] ?? ''));
        this.media.delete(path);
        if (args.includes('--delete')) await unlink(path).catch(() => undefined);
        return '';
      }
      case 'sharedfolder': {
        const vm = this.#vm(args[1]);
        if (args[0] === 'add') vm.sharedFolders.set(option('--name') ?? '', option('--hostpath') ?? '');
        else if (args[0] === 'remove') vm.sharedFolders.delete(option('--name') ?? '');
        return '';
      }
      case 'setextradata': {
        const data = args[0] === 'global' ? this.globalExtradata : this.#vm(args[0]).extradata;
        if (args[2] === undefined || args[2] === '') data.delete(args[1] ?? '');
        else data.set(args[1] ?? '', args[2]);
        return '';
      }
      case 'getextradata': {
        const data = args[0] === 'global' ? this.globalExtradata : this.#vm(args[0]).extradata;
        const value = data.get(args[1] ?? '');
        return value === undefined ? 'No value set!\n' : `Value: ${value}\n`;
      }
      case 'startvm': {
        const vm = this.#vm(args[0]);
        if (vm.state === 'running') throw new VBoxError(`VBoxManage: error: The machine '${vm.name}' is already locked by a session (or being locked or unlocked)`);
        if (![...vm.attachments.values()].some((a) => a.type === 'hdd' || a.type === 'dvddrive')) throw new VBoxError('VBoxManage: error: no bootable medium');
        vm.state = this.neverRunning ? 'aborted' : 'running';
        if (vm.state === 'running') await this.#openForwards(vm);
        return `Waiting for VM "${vm.name}" to power on...\nVM "${vm.name}" has been successfully started.\n`;
      }
      case 'controlvm': {
        const vm = this.#vm(args[0]);
        const action = args[1];
        if (vm.state !== 'running' && vm.state !== 'stopping' && vm.state !== 'paused') throw new VBoxError(`VBoxManage: error: Machine '${vm.name}' is not currently running`);
        if (action === 'poweroff') {
          vm.state = 'poweroff';
          await this.#closeForwards(vm.uuid);
        }
        else if (action === 'acpipowerbutton') {
          vm.state = 'stopping';
          vm.shutdownTicks = this.#shutdownCalls;
        } else if (action === 'reset') vm.state = 'running';
        else if (action === 'pause') vm.state = 'paused';
        else if (action === 'resume') vm.state = 'running';
        else if (action === 'savestate') vm.state = 'saved';
        else throw new VBoxError(`VBoxManage: error: the fake does not know controlvm ${action ?? ''}`);
        return action === 'poweroff' ? '0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\n' : '';
      }
      case 'showvminfo':
        return this.#showVmInfo(args);
      case 'unregistervm': {
        const vm = this.#vm(args[0]);
        if (vm.state === 'running' || vm.state === 'stopping') throw new VBoxError(`VBoxManage: error: Cannot unregister the machine '${vm.name}' while it is locked`);
        this.vms.delete(vm.uuid);
        if (args.includes('--delete')) {
          for (const a of vm.attachments.values()) {
            if (a.type === 'hdd' && this.media.has(a.medium)) {
              this.media.delete(a.medium);
              await unlink(a.medium).catch(() => undefined);
            }
          }
          await rm(join(vm.basefolder, vm.name), { recursive: true, force: true });
        }
        return '';
      }
      default:
        throw new VBoxError(`VBoxManage: error: Unknown command '${command}'`, 2);
    }
  }

  async #openForwards(vm: FakeVm): Promise<void> {
    const target = this.guestAddress;
    if (!target) return;
    const opened: { server: TcpServer; sockets: Set<Socket> }[] = [];
    for (const rule of vm.settings.get('natpf1') ?? []) {
      const [, protocol, hostIp, hostPort, , guestPort] = rule.split(',');
      if (protocol !== 'tcp') continue;
      const sockets = new Set<Socket>();
      const server = createTcpServer((inbound) => {
        const outbound = connect(Number(guestPort), target);
        sockets.add(inbound).add(outbound);
        const drop = () => {
          inbound.destroy();
          outbound.destroy();
        };
        inbound.on('error', drop).on('close', drop);
        outbound.on('error', drop).on('close', drop);
        inbound.pipe(outbound).pipe(inbound);
      });
      await new Promise<void>((resolveListen, reject) => {
        server.once('error', reject);
        server.listen(Number(hostPort), hostIp || '127.0.0.1', () => resolveListen());
      });
      opened.push({ server, sockets });
    }
    this.#forwards.set(vm.uuid, opened);
  }

  async #closeForwards(uuid: string): Promise<void> {
    for (const { server, sockets } of this.#forwards.get(uuid) ?? []) {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
    }
    this.#forwards.delete(uuid);
  }

  #list(what: string | undefined): string {
    if (what === 'vms') return [...this.vms.values()].map((v) => `"${v.name}" {${v.uuid}}\n`).join('');
    if (what === 'runningvms') return [...this.vms.values()].filter((v) => v.state === 'running' || v.state === 'stopping').map((v) => `"${v.name}" {${v.uuid}}\n`).join('');
    if (what === 'hostonlyifs') {
      return [...this.hostOnlyInterfaces.values()]
        .map(
          (h) =>
            `Name:            ${h.name}\nGUID:            ${randomUUID()}\nDHCP:            Disabled\nIPAddress:       ${h.ip}\nNetworkMask:     ${h.netmask}\nIPV6Address:\nIPV6NetworkMaskPrefixLength: 0\nHardwareAddress: 0a:00:27:00:00:0${h.name.slice(-1)}\nMediumType:      Ethernet\nWireless:        No\nStatus:          Up\nVBoxNetworkName: HostInterfaceNetworking-${h.name}\n\n`,
        )
        .join('');
    }
    if (what === 'hdds') return [...this.media.keys()].map((path) => `UUID:           ${randomUUID()}\nLocation:       ${path}\nState:          created\n\n`).join('');
    throw new VBoxError(`VBoxManage: error: the fake cannot list ${what ?? ''}`);
  }

  #hostOnlyIf(args: readonly string[]): string {
    const [action, name] = args;
    if (action === 'create') {
      let n = 0;
      while (this.hostOnlyInterfaces.has(`vboxnet${n}`)) n++;
      const created = { name: `vboxnet${n}`, ip: '192.168.56.1', netmask: '255.255.255.0', preexisting: false };
      this.hostOnlyInterfaces.set(created.name, created);
      return `0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\nInterface '${created.name}' was successfully created\n`;
    }
    const hostIf = this.hostOnlyInterfaces.get(name ?? '');
    if (!hostIf) throw new VBoxError(`VBoxManage: error: Could not find a host interface by name '${name ?? ''}'`);
    if (action === 'ipconfig') {
      const at = args.indexOf('--ip');
      const ip = args[at + 1] ?? '';
      // VirtualBox 6.1.28+ on Linux only allows host-only addresses in 192.168.56.0/21 unless /etc/vbox/networks.conf says more.
      const [a, b, c] = ip.split('.').map(Number);
      if (a !== 192 || b !== 168 || c === undefined || c < 56 || c > 63) {
        throw new VBoxError(`VBoxManage: error: Code E_ACCESSDENIED (0x80070005) - Access denied (extended info not available)\nVBoxManage: error: Context: "EnableStaticIPConfig" ... address ${ip} is not in the allowed ranges`);
      }
      hostIf.ip = ip;
      hostIf.netmask = args[args.indexOf('--netmask') + 1] ?? '255.255.255.0';
      return '';
    }
    if (action === 'remove') {
      this.hostOnlyInterfaces.delete(hostIf.name);
      return '0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\n';
    }
    throw new VBoxError(`VBoxManage: error: hostonlyif ${action ?? ''} is not supported by the fake`);
  }

  #showVmInfo(args: readonly string[]): string {
    const vm = this.#vm(args[0]);
    if (!args.includes('--machinereadable')) throw new VBoxError('VBoxManage: error: the fake answers showvminfo --machinereadable only');
    if (vm.state === 'stopping' && vm.shutdownTicks-- <= 0) {
      vm.state = 'poweroff';
      void this.#closeForwards(vm.uuid);
    }
    const lines = [`name="${vm.name}"`, `UUID="${vm.uuid}"`, `ostype="${vm.ostype}"`, `CfgFile="${join(vm.basefolder, vm.name, `${vm.name}.vbox`)}"`];
    for (const [key, values] of vm.settings) {
      if (/^natpf\d$/.test(key)) values.forEach((v, i) => lines.push(`Forwarding(${i})="${v}"`));
      else lines.push(`${key}="${values.at(-1)}"`);
    }
    for (const [key, a] of vm.attachments) {
      const [controller, port, device] = key.split('/');
      lines.push(`"${controller}-${port}-${device}"="${a.medium}"`);
    }
    [...vm.sharedFolders].forEach(([name, path], i) => lines.push(`SharedFolderNameMachineMapping${i + 1}="${name}"`, `SharedFolderPathMachineMapping${i + 1}="${path}"`));
    lines.push(`VMState="${vm.state === 'stopping' ? 'running' : vm.state}"`, `VMStateChangeTime="${new Date().toISOString()}"`);
    return lines.join('\n') + '\n';
  }
}
