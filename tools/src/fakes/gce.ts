import { generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { FaultPlan, listen, randomHex, type FakeRequest, type FakeResponse, type Listening } from './fake-server.js';

/*
 * A fake Google Compute Engine endpoint speaking the REST JSON API (`/compute/v1/projects/...`)
 * that @google-cloud/compute uses in its REST ("fallback") transport. Mutations answer with
 * Operation resources that move from RUNNING to DONE one `get`/`wait` call at a time, failures
 * of an operation come back inside the finished Operation (as GCE reports quota and capacity
 * errors), and instances move PROVISIONING, STAGING, RUNNING one `instances.get` at a time.
 * Requests must carry a self-signed JWT of a service account whose key the fake wrote, so the
 * client's real credential code runs and nothing reaches Google.
 */

/** A GCE API error answered as `{"error": {...}}` with its HTTP status. */
export class GceFakeError extends Error {
  readonly status: number;
  readonly reason: string;

  constructor(status: number, reason: string, message: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

const rpcStatus: Readonly<Record<number, string>> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  412: 'FAILED_PRECONDITION',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

type Json = string | number | boolean | null | undefined | readonly Json[] | { readonly [key: string]: Json };
type JsonObject = { readonly [key: string]: Json };

export interface FakeGceInstance {
  readonly name: string;
  readonly id: string;
  readonly zone: string;
  readonly machineType: string;
  readonly body: JsonObject;
  readonly bootDisk: string;
  readonly natIP: string | undefined;
  readonly networkIP: string;
  status: 'PROVISIONING' | 'STAGING' | 'RUNNING' | 'STOPPING' | 'TERMINATED';
  ticks: number;
}

export interface FakeGceDisk {
  readonly name: string;
  readonly zone: string;
  readonly sizeGb: string;
  readonly type: string;
  readonly sourceImage: string;
  readonly autoDelete: boolean;
  users: string[];
}

export interface FakeGceFirewall {
  readonly name: string;
  readonly body: JsonObject;
  readonly preexisting: boolean;
}

export interface FakeGceAddress {
  readonly name: string;
  readonly region: string;
  readonly address: string;
  readonly preexisting: boolean;
}

interface FakeOperation {
  readonly name: string;
  readonly id: string;
  readonly scope: { readonly kind: 'zones' | 'regions' | 'global'; readonly name: string };
  readonly operationType: string;
  readonly targetLink: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  ticks: number;
  readonly error: { code: string; message: string } | undefined;
  /** What happens when the operation finishes (a delete removes the resource then). */
  readonly onDone: (() => void) | undefined;
}

/** One API call as the fake received it. */
export interface GceCall {
  /** `instances.insert`, `zoneOperations.wait`, ... */
  readonly operation: string;
  readonly method: string;
  readonly path: string;
  readonly body: JsonObject | undefined;
}

export interface FakeGceOptions {
  /** The project the fake serves (default `berth-test`); others answer 404. */
  readonly project?: string;
  /** Zones that exist (default `us-central1-a`, `us-central1-b`, `europe-west1-b`). */
  readonly zones?: readonly string[];
  /** `get`/`wait` calls an operation or a transient instance state lasts (default 1). */
  readonly transitionCalls?: number;
}

/** The public images the fake knows, by family and by name. */
const images = [
  { project: 'ubuntu-os-cloud', name: 'ubuntu-2404-noble-amd64-v20260115', family: 'ubuntu-2404-lts-amd64' },
  { project: 'ubuntu-os-cloud', name: 'ubuntu-2204-jammy-v20260110', family: 'ubuntu-2204-lts' },
  { project: 'debian-cloud', name: 'debian-12-bookworm-v20260114', family: 'debian-12' },
];

/** A fake GCE project. */
export class FakeGce {
  readonly project: string;
  readonly zones: readonly string[];
  readonly faults = new FaultPlan();
  readonly calls: GceCall[] = [];
  readonly instances = new Map<string, FakeGceInstance>();
  readonly disks = new Map<string, FakeGceDisk>();
  readonly firewalls = new Map<string, FakeGceFirewall>();
  readonly addresses = new Map<string, FakeGceAddress>();
  /** When set, new instances stay in STAGING forever. */
  neverRunning = false;
  /** The external address of instances without a static address; tests point it at an SSH rig host. */
  ephemeralAddress = '198.51.100.20';
  readonly #operations = new Map<string, FakeOperation>();
  readonly #serviceAccounts = new Map<string, KeyObject>();
  readonly #transitionCalls: number;
  #server: Listening | undefined;
  #nextIp = 2;

  private constructor(options: FakeGceOptions) {
    this.project = options.project ?? 'berth-test';
    this.zones = options.zones ?? ['us-central1-a', 'us-central1-b', 'europe-west1-b'];
    this.#transitionCalls = options.transitionCalls ?? 1;
  }

  static async start(options: FakeGceOptions = {}): Promise<FakeGce> {
    const fake = new FakeGce(options);
    fake.#server = await listen((request) => fake.#handle(request));
    return fake;
  }

  /** The endpoint to give the client (`http://127.0.0.1:PORT`). */
  get url(): string {
    if (!this.#server) throw new Error('fake GCE is not listening');
    return this.#server.url;
  }

  /** Writes a service-account key file for a new account; the fake accepts JWTs signed with it. */
  async writeServiceAccountKey(path: string): Promise<string> {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const email = `berth-test-${randomHex(6)}@${this.project}.iam.gserviceaccount.com`;
    this.#serviceAccounts.set(email, publicKey);
    const key = {
      type: 'service_account',
      project_id: this.project,
      private_key_id: randomHex(40),
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      client_email: email,
      client_id: '100000000000000000001',
      token_uri: 'https://oauth2.googleapis.com/token',
    };
    await writeFile(path, JSON.stringify(key), { mode: 0o600 });
    return email;
  }

  /** A firewall rule made outside the driver. */
  seedFirewall(name: string, body: JsonObject = {}): FakeGceFirewall {
    const rule = { name, body: { ...body, name }, preexisting: true };
    this.firewalls.set(name, rule);
    return rule;
  }

  /** A static address reserved outside the driver. */
  seedAddress(name: string, region: string, address: string): FakeGceAddress {
    const entry = { name, region, address, preexisting: true };
    this.addresses.set(`${region}/${name}`, entry);
    return entry;
  }

  /** What a driver made and did not remove (seeded resources left out). */
  leftovers(): string[] {
    return [
      ...[...this.instances.values()].map((i) => `instance ${i.name} (${i.status})`),
      ...[...this.disks.values()].map((d) => `disk ${d.name}`),
      ...[...this.firewalls.values()].filter((f) => !f.preexisting).map((f) => `firewall ${f.name}`),
      ...[...this.addresses.values()].filter((a) => !a.preexisting).map((a) => `address ${a.region}/${a.name}`),
    ];
  }

  callsOf(operation: string): GceCall[] {
    return this.calls.filter((c) => c.operation === operation);
  }

  async close(): Promise<void> {
    await this.#server?.close();
  }

  #link(path: string): string {
    return `${this.url}/compute/v1/projects/${path}`;
  }

  async #handle(request: FakeRequest): Promise<FakeResponse> {
    let operation = 'unknown';
    try {
      const route = this.#route(request);
      operation = route.operation;
      const body = request.body ? (JSON.parse(request.body) as JsonObject) : undefined;
      this.calls.push({ operation, method: request.method, path: request.path, body });
      this.#checkAuth(request);
      const fault = this.faults.take(operation);
      if (fault?.kind === 'throttle') throw new GceFakeError(429, 'rateLimitExceeded', `Quota exceeded for quota metric 'Queries' of service 'compute.googleapis.com'`);
      const answer = route.run(body ?? {}, fault?.kind === 'fail' ? (fault.code ?? 'INTERNAL_ERROR') : undefined);
      return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(answer) };
    } catch (error) {
      if (!(error instanceof GceFakeError)) throw error;
      const body = {
        error: {
          code: error.status,
          message: error.message,
          status: rpcStatus[error.status] ?? 'UNKNOWN',
          errors: [{ message: error.message, domain: 'global', reason: error.reason }],
        },
      };
      return { status: error.status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
    }
  }

  /**
   * Requests carry a self-signed service-account JWT (what Google's client libraries send
   * instead of trading it for a token): RS256, signed by a key this fake issued, for a known
   * service account, not expired.
   */
  #checkAuth(request: FakeRequest): void {
    const header = request.headers['authorization'] ?? '';
    const token = /^Bearer (.+)$/.exec(header)?.[1] ?? '';
    const [head, body, signature] = token.split('.');
    const fail = (why: string) => new GceFakeError(401, 'authError', `Request had invalid authentication credentials: ${why}`);
    if (!head || !body || !signature) throw fail('not a JWT');
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { iss?: string; exp?: number };
    const publicKey = this.#serviceAccounts.get(claims.iss ?? '');
    if (!publicKey) throw fail(`unknown service account ${String(claims.iss)}`);
    if (!verify('RSA-SHA256', Buffer.from(`${head}.${body}`), publicKey, Buffer.from(signature, 'base64url'))) throw fail('bad signature');
    if ((claims.exp ?? 0) * 1000 < Date.now()) throw fail('expired');
  }

  #route(request: FakeRequest): { operation: string; run: (body: JsonObject, failure: string | undefined) => Json } {
    const m = request.method;
    const parts = request.path.replace(/^\/compute\/v1\/projects\//, '').split('/');
    if (!request.path.startsWith('/compute/v1/projects/')) throw new GceFakeError(404, 'notFound', `no such path ${request.path}`);
    const [project, scopeKind, scopeName, collection, name, verb] = parts;
    if (scopeKind === 'global' && scopeName === 'images') {
      const image = collection === 'family' ? images.find((i) => i.project === project && i.family === name) : images.find((i) => i.project === project && i.name === collection);
      return {
        operation: collection === 'family' ? 'images.getFromFamily' : 'images.get',
        run: () => {
          if (!image) throw new GceFakeError(404, 'notFound', `The resource 'projects/${project}/global/images/${parts.slice(3).join('/')}' was not found`);
          return { kind: 'compute#image', name: image.name, family: image.family, status: 'READY', selfLink: this.#link(`${image.project}/global/images/${image.name}`) };
        },
      };
    }
    if (project !== this.project) throw new GceFakeError(404, 'notFound', `The resource 'projects/${project}' was not found`);
    if (scopeKind === 'zones') {
      if (!this.zones.includes(scopeName ?? '')) throw new GceFakeError(404, 'notFound', `The resource 'projects/${project}/zones/${scopeName}' was not found`);
      const zone = scopeName!;
      if (collection === undefined && m === 'GET') return { operation: 'zones.get', run: () => ({ kind: 'compute#zone', name: zone, status: 'UP', region: this.#link(`${project}/regions/${regionOf(zone)}`) }) };
      if (collection === 'instances') return this.#instanceRoute(m, zone, name, verb);
      if (collection === 'disks' && name && m === 'GET') return { operation: 'disks.get', run: () => this.#diskJson(this.#disk(zone, name)) };
      if (collection === 'disks' && name && m === 'DELETE') {
        return {
          operation: 'disks.delete',
          run: (_b, failure) => {
            const disk = this.#disk(zone, name);
            if (disk.users.length) throw new GceFakeError(400, 'resourceInUseByAnotherResource', `The disk resource '${name}' is already being used by '${disk.users[0]}'`);
            return this.#operation({ kind: 'zones', name: zone }, 'delete', `${project}/zones/${zone}/disks/${name}`, failure, () => this.disks.delete(`${zone}/${name}`));
          },
        };
      }
      if (collection === 'operations' && name) return this.#operationRoute(m, 'zoneOperations', name, verb);
    }
    if (scopeKind === 'regions') {
      const region = scopeName!;
      if (collection === 'addresses') return this.#addressRoute(m, region, name);
      if (collection === 'operations' && name) return this.#operationRoute(m, 'regionOperations', name, verb);
    }
    if (scopeKind === 'global') {
      // `global/firewalls/NAME` and `global/operations/NAME` have no scope name.
      const [, , kind, item, sub] = parts;
      if (kind === 'firewalls') return this.#firewallRoute(m, item);
      if (kind === 'operations' && item) return this.#operationRoute(m, 'globalOperations', item, sub);
      if (kind === 'networks' && item && m === 'GET') return { operation: 'networks.get', run: () => this.#network(item) };
    }
    throw new GceFakeError(404, 'notFound', `no such path ${request.method} ${request.path}`);
  }

  #network(name: string): Json {
    if (name !== 'default') throw new GceFakeError(404, 'notFound', `The resource 'projects/${this.project}/global/networks/${name}' was not found`);
    return { kind: 'compute#network', name, selfLink: this.#link(`${this.project}/global/networks/${name}`), autoCreateSubnetworks: true };
  }

  #operationRoute(method: string, client: string, name: string, verb: string | undefined): { operation: string; run: () => Json } {
    const waiting = verb === 'wait' && method === 'POST';
    if (!waiting && (method !== 'GET' || verb)) throw new GceFakeError(404, 'notFound', `no ${method} on operations`);
    return {
      operation: `${client}.${waiting ? 'wait' : 'get'}`,
      run: () => {
        const op = this.#operations.get(name);
        if (!op) throw new GceFakeError(404, 'notFound', `The resource 'operation ${name}' was not found`);
        if (op.status !== 'DONE' && op.ticks-- <= 0) {
          op.status = 'DONE';
          if (!op.error) op.onDone?.();
        } else if (op.status === 'PENDING') op.status = 'RUNNING';
        return this.#operationJson(op);
      },
    };
  }

  #operation(scope: FakeOperation['scope'], operationType: string, target: string, failure: string | undefined, onDone?: () => void): Json {
    const op: FakeOperation = {
      name: `operation-${Date.now()}-${randomHex(12)}`,
      id: String(BigInt(`0x${randomHex(15)}`)),
      scope,
      operationType,
      targetLink: this.#link(target),
      status: 'PENDING',
      ticks: this.#transitionCalls,
      error: failure ? { code: failure, message: `injected failure of ${operationType} ${target}` } : undefined,
      onDone,
    };
    this.#operations.set(op.name, op);
    return this.#operationJson(op);
  }

  #operationJson(op: FakeOperation): Json {
    const scopeLink = op.scope.kind === 'global' ? undefined : this.#link(`${this.project}/${op.scope.kind}/${op.scope.name}`);
    return {
      kind: 'compute#operation',
      id: op.id,
      name: op.name,
      operationType: op.operationType,
      targetLink: op.targetLink,
      status: op.status,
      progress: op.status === 'DONE' ? 100 : 0,
      ...(op.scope.kind === 'zones' ? { zone: scopeLink } : {}),
      ...(op.scope.kind === 'regions' ? { region: scopeLink } : {}),
      selfLink: this.#link(`${this.project}/${op.scope.kind === 'global' ? 'global' : `${op.scope.kind}/${op.scope.name}`}/operations/${op.name}`),
      ...(op.status === 'DONE' && op.error ? { error: { errors: [{ code: op.error.code, message: op.error.message }] }, httpErrorStatusCode: 503 } : {}),
    };
  }

  #instance(zone: string, name: string): FakeGceInstance {
    const instance = this.instances.get(`${zone}/${name}`);
    if (!instance) throw new GceFakeError(404, 'notFound', `The resource 'projects/${this.project}/zones/${zone}/instances/${name}' was not found`);
    return instance;
  }

  #disk(zone: string, name: string): FakeGceDisk {
    const disk = this.disks.get(`${zone}/${name}`);
    if (!disk) throw new GceFakeError(404, 'notFound', `The resource 'projects/${this.project}/zones/${zone}/disks/${name}' was not found`);
    return disk;
  }

  #instanceRoute(method: string, zone: string, name: string | undefined, verb: string | undefined): { operation: string; run: (body: JsonObject, failure: string | undefined) => Json } {
    const scope = { kind: 'zones', name: zone } as const;
    const target = `${this.project}/zones/${zone}/instances/${name}`;
    if (!name && method === 'POST') return { operation: 'instances.insert', run: (body, failure) => this.#insertInstance(zone, body, failure) };
    if (!name && method === 'GET') return { operation: 'instances.list', run: () => ({ items: [...this.instances.values()].filter((i) => i.zone === zone).map((i) => this.#instanceJson(i)) }) };
    if (name && !verb && method === 'GET') {
      return {
        operation: 'instances.get',
        run: () => {
          const instance = this.#instance(zone, name);
          this.#tick(instance);
          return this.#instanceJson(instance);
        },
      };
    }
    if (name && !verb && method === 'DELETE') {
      return {
        operation: 'instances.delete',
        run: (_b, failure) => {
          const instance = this.#instance(zone, name);
          if (!failure) instance.status = 'STOPPING';
          return this.#operation(scope, 'delete', target, failure, () => {
            this.instances.delete(`${zone}/${name}`);
            for (const disk of this.disks.values()) {
              disk.users = disk.users.filter((u) => !u.endsWith(`/instances/${name}`));
              if (disk.zone === zone && disk.users.length === 0 && disk.autoDelete && disk.name === instance.bootDisk) this.disks.delete(`${zone}/${disk.name}`);
            }
          });
        },
      };
    }
    if (name && method === 'POST' && (verb === 'start' || verb === 'stop' || verb === 'reset')) {
      return {
        operation: `instances.${verb}`,
        run: (_b, failure) => {
          const instance = this.#instance(zone, name);
          if (!failure) {
            if (verb === 'stop' && instance.status !== 'TERMINATED') {
              instance.status = 'STOPPING';
              instance.ticks = this.#transitionCalls;
            }
            if (verb === 'start' && instance.status === 'TERMINATED') {
              instance.status = 'STAGING';
              instance.ticks = this.#transitionCalls;
            }
            if (verb === 'reset' && instance.status !== 'RUNNING') {
              throw new GceFakeError(400, 'resourceNotReady', `The resource '${target}' is not ready`);
            }
          }
          return this.#operation(scope, verb, target, failure);
        },
      };
    }
    throw new GceFakeError(404, 'notFound', `no ${method} ${verb ?? ''} on instances`);
  }

  #tick(instance: FakeGceInstance): void {
    if (instance.status === 'RUNNING' || instance.status === 'TERMINATED') return;
    if (instance.status === 'STAGING' && this.neverRunning) return;
    if (instance.ticks-- > 0) return;
    instance.ticks = this.#transitionCalls;
    if (instance.status === 'PROVISIONING') instance.status = 'STAGING';
    else if (instance.status === 'STAGING') instance.status = 'RUNNING';
    else if (instance.status === 'STOPPING') instance.status = 'TERMINATED';
  }

  #insertInstance(zone: string, body: JsonObject, failure: string | undefined): Json {
    const name = body['name'];
    if (typeof name !== 'string' || !/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name)) throw new GceFakeError(400, 'invalid', `Invalid value for field 'resource.name': '${String(name)}'`);
    if (this.instances.has(`${zone}/${name}`)) throw new GceFakeError(409, 'alreadyExists', `The resource 'projects/${this.project}/zones/${zone}/instances/${name}' already exists`);
    const machineType = String(body['machineType'] ?? '');
    if (!/zones\/[^/]+\/machineTypes\/[a-z0-9-]+$/.test(machineType)) throw new GceFakeError(400, 'invalid', `Invalid value for field 'resource.machineType': '${machineType}'`);
    const disks = (body['disks'] ?? []) as readonly JsonObject[];
    const boot = disks.find((d) => d['boot']);
    const init = boot?.['initializeParams'] as JsonObject | undefined;
    if (!boot || !init) throw new GceFakeError(400, 'invalid', 'the fake needs a boot disk with initializeParams');
    const sourceImage = String(init['sourceImage'] ?? '');
    const image = /projects\/([^/]+)\/global\/images\/(?:family\/)?([^/]+)$/.exec(sourceImage);
    if (!image || !images.some((i) => i.project === image[1] && (i.family === image[2] || i.name === image[2]))) {
      throw new GceFakeError(404, 'notFound', `The resource '${sourceImage}' was not found`);
    }
    const nics = (body['networkInterfaces'] ?? []) as readonly JsonObject[];
    const nic = nics[0];
    if (!nic) throw new GceFakeError(400, 'invalid', 'an instance needs a network interface');
    const network = String(nic['network'] ?? 'global/networks/default');
    this.#network(network.split('/').pop() ?? '');
    const access = ((nic['accessConfigs'] ?? []) as readonly JsonObject[])[0];
    let natIP: string | undefined;
    if (access) {
      natIP = typeof access['natIP'] === 'string' ? access['natIP'] : this.ephemeralAddress;
      if (typeof access['natIP'] === 'string' && ![...this.addresses.values()].some((a) => a.address === natIP)) {
        throw new GceFakeError(400, 'invalid', `Invalid value for field 'resource.networkInterfaces[0].accessConfigs[0].natIP': '${natIP}'`);
      }
    }
    const diskName = String(init['diskName'] ?? name);
    if (!failure) {
      const instance: FakeGceInstance = {
        name,
        id: String(BigInt(`0x${randomHex(15)}`)),
        zone,
        machineType,
        body,
        bootDisk: diskName,
        natIP,
        networkIP: `10.128.0.${this.#nextIp++}`,
        status: 'PROVISIONING',
        ticks: this.#transitionCalls,
      };
      this.instances.set(`${zone}/${name}`, instance);
      this.disks.set(`${zone}/${diskName}`, {
        name: diskName,
        zone,
        sizeGb: String(init['diskSizeGb'] ?? '10'),
        type: String(init['diskType'] ?? 'pd-standard').split('/').pop()!,
        sourceImage,
        autoDelete: boot['autoDelete'] === true,
        users: [this.#link(`${this.project}/zones/${zone}/instances/${name}`)],
      });
    }
    return this.#operation({ kind: 'zones', name: zone }, 'insert', `${this.project}/zones/${zone}/instances/${name}`, failure);
  }

  #instanceJson(i: FakeGceInstance): Json {
    const nic = ((i.body['networkInterfaces'] ?? []) as readonly JsonObject[])[0] ?? {};
    return {
      ...i.body,
      kind: 'compute#instance',
      id: i.id,
      name: i.name,
      zone: this.#link(`${this.project}/zones/${i.zone}`),
      status: i.status,
      selfLink: this.#link(`${this.project}/zones/${i.zone}/instances/${i.name}`),
      networkInterfaces: [
        {
          ...nic,
          name: 'nic0',
          networkIP: i.networkIP,
          accessConfigs: i.natIP ? [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT', natIP: i.status === 'RUNNING' ? i.natIP : undefined }] : [],
        },
      ],
      disks: [{ boot: true, autoDelete: this.disks.get(`${i.zone}/${i.bootDisk}`)?.autoDelete ?? false, deviceName: i.bootDisk, source: this.#link(`${this.project}/zones/${i.zone}/disks/${i.bootDisk}`) }],
    };
  }

  #diskJson(d: FakeGceDisk): Json {
    return { kind: 'compute#disk', name: d.name, sizeGb: d.sizeGb, type: this.#link(`${this.project}/zones/${d.zone}/diskTypes/${d.type}`), sourceImage: d.sourceImage, users: d.users, status: 'READY' };
  }

  #firewallRoute(method: string, name: string | undefined): { operation: string; run: (body: JsonObject, failure: string | undefined) => Json } {
    const scope = { kind: 'global', name: '' } as const;
    if (!name && method === 'POST') {
      return {
        operation: 'firewalls.insert',
        run: (body, failure) => {
          const ruleName = String(body['name'] ?? '');
          if (this.firewalls.has(ruleName)) throw new GceFakeError(409, 'alreadyExists', `The resource 'projects/${this.project}/global/firewalls/${ruleName}' already exists`);
          if (!failure) this.firewalls.set(ruleName, { name: ruleName, body, preexisting: false });
          return this.#operation(scope, 'insert', `${this.project}/global/firewalls/${ruleName}`, failure);
        },
      };
    }
    const rule = (): FakeGceFirewall => {
      const found = name ? this.firewalls.get(name) : undefined;
      if (!found) throw new GceFakeError(404, 'notFound', `The resource 'projects/${this.project}/global/firewalls/${name}' was not found`);
      return found;
    };
    if (name && method === 'GET') return { operation: 'firewalls.get', run: () => ({ kind: 'compute#firewall', ...rule().body }) };
    if (name && method === 'DELETE') {
      return {
        operation: 'firewalls.delete',
        run: (_b, failure) => {
          rule();
          return this.#operation(scope, 'delete', `${this.project}/global/firewalls/${name}`, failure, () => this.firewalls.delete(name));
        },
      };
    }
    throw new GceFakeError(404, 'notFound', `no ${method} on firewalls`);
  }

  #addressRoute(method: string, region: string, name: string | undefined): { operation: string; run: (body: JsonObject, failure: string | undefined) => Json } {
    const scope = { kind: 'regions', name: region } as const;
    if (!name && method === 'POST') {
      return {
        operation: 'addresses.insert',
        run: (body, failure) => {
          const addressName = String(body['name'] ?? '');
          if (this.addresses.has(`${region}/${addressName}`)) throw new GceFakeError(409, 'alreadyExists', `The resource 'projects/${this.project}/regions/${region}/addresses/${addressName}' already exists`);
          if (!failure) this.addresses.set(`${region}/${addressName}`, { name: addressName, region, address: this.ephemeralAddress, preexisting: false });
          return this.#operation(scope, 'insert', `${this.project}/regions/${region}/addresses/${addressName}`, failure);
        },
      };
    }
    const address = (): FakeGceAddress => {
      const found = name ? this.addresses.get(`${region}/${name}`) : undefined;
      if (!found) throw new GceFakeError(404, 'notFound', `The resource 'projects/${this.project}/regions/${region}/addresses/${name}' was not found`);
      return found;
    };
    if (name && method === 'GET') {
      return {
        operation: 'addresses.get',
        run: () => {
          const a = address();
          const user = [...this.instances.values()].find((i) => i.natIP === a.address);
          return { kind: 'compute#address', name: a.name, address: a.address, status: user ? 'IN_USE' : 'RESERVED', region: this.#link(`${this.project}/regions/${region}`) };
        },
      };
    }
    if (name && method === 'DELETE') {
      return {
        operation: 'addresses.delete',
        run: (_b, failure) => {
          const a = address();
          if ([...this.instances.values()].some((i) => i.natIP === a.address && !a.preexisting && i.status !== 'STOPPING')) {
            throw new GceFakeError(400, 'resourceInUseByAnotherResource', `The address resource '${a.name}' is already being used`);
          }
          return this.#operation(scope, 'delete', `${this.project}/regions/${region}/addresses/${name}`, failure, () => this.addresses.delete(`${region}/${name}`));
        },
      };
    }
    throw new GceFakeError(404, 'notFound', `no ${method} on addresses`);
  }
}

/** The region of a zone (`us-central1-a` → `us-central1`). */
export function regionOf(zone: string): string {
  return zone.replace(/-[a-z]$/, '');
}
