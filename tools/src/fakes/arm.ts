import { randomUUID } from 'node:crypto';
import { FaultPlan, listen, makeLoopbackCertificate, randomHex, type FakeRequest, type FakeResponse, type FakeTls, type Listening } from './fake-server.js';

/*
 * A fake Azure Resource Manager speaking ARM's JSON over HTTPS (the Azure SDK refuses bearer
 * tokens over plain HTTP), plus the Microsoft Entra endpoints a client-secret credential uses
 * (OpenID configuration and the v2.0 token endpoint), so the real @azure/identity and
 * @azure/arm-* packages run unchanged against it. Creates and deletes of network and compute
 * resources are long-running: PUT answers 201 with `Azure-AsyncOperation`, DELETE and VM
 * actions answer 202 with `Location` and `Azure-AsyncOperation`; the operation finishes after
 * `transitionPolls` polls. References between resources are checked as Azure does (a NIC needs
 * its subnet, NSG and public IP; nothing in use can be deleted).
 */

type Json = string | number | boolean | null | undefined | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** An ARM error: HTTP status, ARM code (`ResourceNotFound`) and message. */
export class ArmFakeError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** One resource the fake holds, under its lower-cased ID. */
export interface FakeArmResource {
  /** The ID as it was first written. */
  readonly id: string;
  /** `Microsoft.Network/networkInterfaces`, `Microsoft.Resources/resourceGroups`, ... */
  readonly type: string;
  readonly name: string;
  readonly resourceGroup: string;
  body: JsonObject;
  /** Made by the test, not by a driver: left out of `leftovers()`. */
  readonly preexisting: boolean;
}

interface AsyncOperation {
  readonly id: string;
  polls: number;
  readonly failure: { code: string; message: string } | undefined;
  readonly onDone: () => void;
  done: boolean;
}

/** One API call as the fake received it. */
export interface ArmCall {
  readonly method: string;
  readonly path: string;
  /** `virtualMachines.createOrUpdate`, `networkInterfaces.delete`, `virtualMachines.start`, `token`, ... */
  readonly operation: string;
  readonly body: JsonObject | undefined;
}

export interface FakeArmOptions {
  readonly subscriptionId?: string;
  readonly tenantId?: string;
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** Polls an async operation answers InProgress before it finishes (default 0: the first poll finishes it). */
  readonly transitionPolls?: number;
}

const collections: Readonly<Record<string, string>> = {
  'microsoft.network/networksecuritygroups': 'networkSecurityGroups',
  'microsoft.network/virtualnetworks': 'virtualNetworks',
  'microsoft.network/virtualnetworks/subnets': 'subnets',
  'microsoft.network/publicipaddresses': 'publicIPAddresses',
  'microsoft.network/networkinterfaces': 'networkInterfaces',
  'microsoft.compute/virtualmachines': 'virtualMachines',
  'microsoft.compute/disks': 'disks',
};

/** A fake Azure subscription with one tenant and one service principal. */
export class FakeArm {
  readonly subscriptionId: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly faults = new FaultPlan();
  readonly calls: ArmCall[] = [];
  /** Every resource (groups included) by lower-cased ID. */
  readonly resources = new Map<string, FakeArmResource>();
  /** Tokens the token endpoint issued; ARM calls must carry one. */
  readonly tokens = new Set<string>();
  /** When set, VM creations end Failed with AllocationFailed after the VM resource exists (as Azure does). */
  failVmProvisioning = false;
  /** When set, VMs are created but never reach PowerState/running. */
  neverRunning = false;
  /** The address given to public IPs; tests point it at an SSH rig host. */
  publicAddress = '192.0.2.40';
  readonly #operations = new Map<string, AsyncOperation>();
  readonly #transitionPolls: number;
  #server: Listening | undefined;
  #tls: FakeTls | undefined;
  #nextIp = 4;

  private constructor(options: FakeArmOptions) {
    this.subscriptionId = options.subscriptionId ?? randomUUID();
    this.tenantId = options.tenantId ?? randomUUID();
    this.clientId = options.clientId ?? randomUUID();
    this.clientSecret = options.clientSecret ?? `secret-${randomHex(16)}`;
    this.#transitionPolls = options.transitionPolls ?? 0;
  }

  static async start(options: FakeArmOptions = {}): Promise<FakeArm> {
    const fake = new FakeArm(options);
    fake.#tls = await makeLoopbackCertificate();
    fake.#server = await listen((request) => fake.#handle(request), fake.#tls);
    return fake;
  }

  /** `https://127.0.0.1:PORT`: both the ARM endpoint and the authority host. */
  get url(): string {
    if (!this.#server) throw new Error('fake ARM is not listening');
    return this.#server.url;
  }

  /** The fake's self-signed certificate (PEM), for the client's trusted CAs. */
  get caCertificate(): string {
    if (!this.#tls) throw new Error('fake ARM is not listening');
    return this.#tls.cert;
  }

  /** A resource group made outside the driver. */
  seedResourceGroup(name: string, location: string): FakeArmResource {
    const id = `/subscriptions/${this.subscriptionId}/resourceGroups/${name}`;
    const group: FakeArmResource = { id, type: 'Microsoft.Resources/resourceGroups', name, resourceGroup: name, body: { id, name, location, type: 'Microsoft.Resources/resourceGroups', properties: { provisioningState: 'Succeeded' } }, preexisting: true };
    this.resources.set(id.toLowerCase(), group);
    return group;
  }

  /** Resources of a type (`Microsoft.Network/networkInterfaces`), in creation order. */
  ofType(type: string): FakeArmResource[] {
    return [...this.resources.values()].filter((r) => r.type.toLowerCase() === type.toLowerCase());
  }

  /** A resource by its ID (any case). */
  get(id: string): FakeArmResource | undefined {
    return this.resources.get(id.toLowerCase());
  }

  /** Resources a driver made and did not remove (seeded ones left out). */
  leftovers(): string[] {
    return [...this.resources.values()].filter((r) => !r.preexisting).map((r) => `${r.type} ${r.id}`);
  }

  callsOf(operation: string): ArmCall[] {
    return this.calls.filter((c) => c.operation === operation);
  }

  async close(): Promise<void> {
    await this.#server?.close();
  }

  async #handle(request: FakeRequest): Promise<FakeResponse> {
    const body = request.body && request.headers['content-type']?.includes('json') ? (JSON.parse(request.body) as JsonObject) : undefined;
    let operation = `${request.method} ${request.path}`;
    try {
      const identity = this.#identity(request);
      if (identity) {
        this.calls.push({ method: request.method, path: request.path, operation: 'token', body: undefined });
        return identity;
      }
      const token = /^Bearer (.+)$/.exec(request.headers['authorization'] ?? '')?.[1];
      if (!token || !this.tokens.has(token)) throw new ArmFakeError(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
      const route = this.#route(request);
      operation = route.operation;
      this.calls.push({ method: request.method, path: request.path, operation, body });
      const fault = this.faults.take(operation);
      if (fault?.kind === 'throttle') {
        return this.#error(new ArmFakeError(429, 'TooManyRequests', 'The request is being throttled.'), { 'retry-after': '1' });
      }
      if (fault?.kind === 'fail') throw new ArmFakeError(500, fault.code ?? 'InternalServerError', `injected failure of ${operation}`);
      return route.run(body ?? {});
    } catch (error) {
      if (!(error instanceof ArmFakeError)) throw error;
      if (!this.calls.some((c) => c.path === request.path && c.method === request.method)) this.calls.push({ method: request.method, path: request.path, operation, body });
      return this.#error(error);
    }
  }

  #json(status: number, value: Json, headers: Record<string, string> = {}): FakeResponse {
    return { status, headers: { 'content-type': 'application/json; charset=utf-8', 'x-ms-request-id': randomUUID(), ...headers }, body: value === undefined ? '' : JSON.stringify(value) };
  }

  #error(error: ArmFakeError, headers: Record<string, string> = {}): FakeResponse {
    return this.#json(error.status, { error: { code: error.code, message: error.message } }, headers);
  }

  /** The Entra ID endpoints MSAL uses for client credentials with instance discovery off. */
  #identity(request: FakeRequest): FakeResponse | undefined {
    const tenant = this.tenantId;
    if (request.method === 'GET' && request.path === `/${tenant}/v2.0/.well-known/openid-configuration`) {
      return this.#json(200, {
        token_endpoint: `${this.url}/${tenant}/oauth2/v2.0/token`,
        authorization_endpoint: `${this.url}/${tenant}/oauth2/v2.0/authorize`,
        issuer: `${this.url}/${tenant}/v2.0`,
        jwks_uri: `${this.url}/${tenant}/discovery/v2.0/keys`,
        end_session_endpoint: `${this.url}/${tenant}/oauth2/v2.0/logout`,
        response_types_supported: ['code', 'id_token', 'token'],
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      });
    }
    if (request.method === 'POST' && request.path === `/${tenant}/oauth2/v2.0/token`) {
      const form = new URLSearchParams(request.body);
      if (form.get('grant_type') !== 'client_credentials' || form.get('client_id') !== this.clientId || form.get('client_secret') !== this.clientSecret) {
        return this.#json(401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.', error_codes: [7000215] });
      }
      const token = `eyFake.${randomHex(32)}`;
      this.tokens.add(token);
      return this.#json(200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token });
    }
    return undefined;
  }

  #route(request: FakeRequest): { operation: string; run: (body: JsonObject) => FakeResponse } {
    const m = request.method;
    const path = request.path.replace(/\/+$/, '');
    const ops = /^\/subscriptions\/[^/]+\/providers\/[^/]+\/locations\/[^/]+\/(operations|operationResults)\/([^/]+)$/i.exec(path);
    if (ops) return { operation: 'operations.get', run: () => this.#pollOperation(ops[2]!, ops[1]!.toLowerCase() === 'operationresults') };
    const sub = /^\/subscriptions\/([^/]+)(\/.*)?$/i.exec(path);
    if (!sub || sub[1] !== this.subscriptionId) throw new ArmFakeError(404, 'SubscriptionNotFound', `The subscription '${sub?.[1] ?? ''}' could not be found.`);
    const rest = sub[2] ?? '';
    const group = /^\/resourcegroups\/([^/]+)(\/.*)?$/i.exec(rest);
    if (!group) throw new ArmFakeError(404, 'NotFound', `no such path ${path}`);
    const groupName = group[1]!;
    const groupId = `/subscriptions/${this.subscriptionId}/resourceGroups/${groupName}`;
    const inner = group[2] ?? '';
    if (inner === '') return this.#groupRoute(m, groupId, groupName);
    if (/^\/resources$/i.test(inner) && m === 'GET') {
      return {
        operation: 'resources.listByResourceGroup',
        run: () => {
          this.#requireGroup(groupId);
          const value = [...this.resources.values()].filter((r) => r.resourceGroup.toLowerCase() === groupName.toLowerCase() && r.type !== 'Microsoft.Resources/resourceGroups');
          return this.#json(200, { value: value.map((r) => ({ id: r.id, name: r.name, type: r.type, location: r.body['location'] })) });
        },
      };
    }
    const provider = /^\/providers\/([^/]+)\/([^/]+)\/([^/]+)(?:\/([^/]+)(?:\/([^/]+))?)?$/i.exec(inner);
    if (!provider) throw new ArmFakeError(404, 'NotFound', `no such path ${path}`);
    const [, namespace, type, name, child, childName] = provider;
    if (child && childName) {
      const typeName = `${namespace}/${type}/${child}`;
      const id = `${groupId}/providers/${namespace}/${type}/${name}/${child}/${childName}`;
      return this.#resourceRoute(m, typeName, id, childName, groupName, `${groupId}/providers/${namespace}/${type}/${name}`);
    }
    const typeName = `${namespace}/${type}`;
    const id = `${groupId}/providers/${namespace}/${type}/${name}`;
    if (child) return this.#vmAction(m, typeName, id, child);
    return this.#resourceRoute(m, typeName, id, name!, groupName, undefined);
  }

  #requireGroup(groupId: string): FakeArmResource {
    const found = this.resources.get(groupId.toLowerCase());
    if (!found) throw new ArmFakeError(404, 'ResourceGroupNotFound', `Resource group '${groupId.split('/').pop()}' could not be found.`);
    return found;
  }

  #groupRoute(method: string, groupId: string, name: string): { operation: string; run: (body: JsonObject) => FakeResponse } {
    if (method === 'HEAD') return { operation: 'resourceGroups.checkExistence', run: () => ({ status: this.resources.has(groupId.toLowerCase()) ? 204 : 404 }) };
    if (method === 'GET') return { operation: 'resourceGroups.get', run: () => this.#json(200, this.#requireGroup(groupId).body) };
    if (method === 'PUT') {
      return {
        operation: 'resourceGroups.createOrUpdate',
        run: (body) => {
          if (typeof body['location'] !== 'string') throw new ArmFakeError(400, 'LocationRequired', 'The location property is required for this definition.');
          const existing = this.resources.get(groupId.toLowerCase());
          const resource: FakeArmResource = existing ?? { id: groupId, type: 'Microsoft.Resources/resourceGroups', name, resourceGroup: name, body: {}, preexisting: false };
          resource.body = { id: resource.id, name, type: 'Microsoft.Resources/resourceGroups', location: body['location'], tags: body['tags'] ?? {}, properties: { provisioningState: 'Succeeded' } };
          this.resources.set(groupId.toLowerCase(), resource);
          return this.#json(existing ? 200 : 201, resource.body);
        },
      };
    }
    if (method === 'DELETE') {
      return {
        operation: 'resourceGroups.delete',
        run: () => {
          this.#requireGroup(groupId);
          // Deleting a group deletes everything in it.
          return this.#accepted(
            'Microsoft.Resources',
            undefined,
            () => {
              for (const [key, r] of this.resources) if (r.resourceGroup.toLowerCase() === name.toLowerCase()) this.resources.delete(key);
            },
            true,
          );
        },
      };
    }
    throw new ArmFakeError(405, 'MethodNotAllowed', `${method} on a resource group`);
  }

  /** A 202 with `Location` (and `Azure-AsyncOperation` unless `locationOnly`) for an operation that runs `onDone`. */
  #accepted(namespace: string, failure: AsyncOperation['failure'], onDone: () => void, locationOnly = false): FakeResponse {
    const op = this.#newOperation(failure, onDone);
    const base = `${this.url}/subscriptions/${this.subscriptionId}/providers/${namespace}/locations/westus`;
    const headers: Record<string, string> = { location: `${base}/operationResults/${op.id}?api-version=2024-01-01`, 'retry-after': '1' };
    if (!locationOnly) headers['azure-asyncoperation'] = `${base}/operations/${op.id}?api-version=2024-01-01`;
    return { status: 202, headers: { ...headers, 'x-ms-request-id': randomUUID() }, body: '' };
  }

  #newOperation(failure: AsyncOperation['failure'], onDone: () => void): AsyncOperation {
    const op: AsyncOperation = { id: randomUUID(), polls: this.#transitionPolls, failure, onDone, done: false };
    this.#operations.set(op.id, op);
    return op;
  }

  #pollOperation(id: string, locationStyle: boolean): FakeResponse {
    const op = this.#operations.get(id);
    if (!op) throw new ArmFakeError(404, 'OperationNotFound', `operation ${id} not found`);
    if (!op.done && op.polls-- <= 0) {
      op.done = true;
      op.onDone();
    }
    if (locationStyle) {
      if (!op.done) return { status: 202, headers: { location: `${this.url}/subscriptions/${this.subscriptionId}/providers/Microsoft.Resources/locations/westus/operationResults/${id}`, 'retry-after': '1' }, body: '' };
      if (op.failure) return this.#error(new ArmFakeError(409, op.failure.code, op.failure.message));
      return { status: 200, body: '' };
    }
    const status = !op.done ? 'InProgress' : op.failure ? 'Failed' : 'Succeeded';
    return this.#json(200, { name: id, status, ...(op.failure && op.done ? { error: { code: op.failure.code, message: op.failure.message } } : {}) }, op.done ? {} : { 'retry-after': '1' });
  }

  #resource(id: string): FakeArmResource {
    const found = this.resources.get(id.toLowerCase());
    if (!found) {
      const type = id.split('/providers/')[1]?.split('/').slice(0, -1).join('/') ?? 'resource';
      throw new ArmFakeError(404, 'ResourceNotFound', `The Resource '${type}/${id.split('/').pop()}' under resource group '${id.split('/')[4]}' was not found.`);
    }
    return found;
  }

  // The IDs a resource body refers to, so references can be checked and uses found.
  #references(body: Json): string[] {
    const found: string[] = [];
    const walk = (value: Json, key: string): void => {
      if (Array.isArray(value)) value.forEach((v) => walk(v, key));
      else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, k);
      else if (key === 'id' && typeof value === 'string' && value.startsWith('/subscriptions/')) found.push(value);
    };
    if (body && typeof body === 'object' && !Array.isArray(body)) for (const [k, v] of Object.entries(body)) if (k !== 'id') walk(v, k);
    return found;
  }

  #usersOf(id: string): FakeArmResource[] {
    const lower = id.toLowerCase();
    // A parent (the vnet of a subnet) lists its children; that is not a use.
    return [...this.resources.values()].filter(
      (r) => r.id.toLowerCase() !== lower && !lower.startsWith(`${r.id.toLowerCase()}/`) && this.#references(r.body).some((ref) => ref.toLowerCase() === lower || ref.toLowerCase().startsWith(`${lower}/`)),
    );
  }

  #resourceRoute(method: string, type: string, id: string, name: string, groupName: string, parentId: string | undefined): { operation: string; run: (body: JsonObject) => FakeResponse } {
    const collection = collections[type.toLowerCase()] ?? type;
    const namespace = type.split('/')[0]!;
    if (method === 'GET') return { operation: `${collection}.get`, run: () => this.#json(200, this.#view(this.#resource(id))) };
    if (method === 'PUT') {
      return {
        operation: `${collection}.createOrUpdate`,
        run: (body) => {
          const groupId = `/subscriptions/${this.subscriptionId}/resourceGroups/${groupName}`;
          const group = this.#requireGroup(groupId);
          if (parentId) this.#resource(parentId);
          for (const ref of this.#references(body)) {
            if (!this.#exists(ref)) throw new ArmFakeError(400, 'InvalidResourceReference', `Resource ${ref} referenced by resource ${id} was not found.`);
          }
          const existing = this.resources.get(id.toLowerCase());
          const resource: FakeArmResource = existing ?? { id, type, name, resourceGroup: group.name, body: {}, preexisting: false };
          const properties = { ...((body['properties'] as JsonObject | undefined) ?? {}) };
          resource.body = { ...body, id, name, type, location: body['location'] ?? group.body['location'], properties: { ...properties, provisioningState: 'Updating' } };
          this.resources.set(id.toLowerCase(), resource);
          this.#onCreate(resource);
          const failure = type === 'Microsoft.Compute/virtualMachines' && this.failVmProvisioning ? { code: 'AllocationFailed', message: 'Allocation failed. We do not have sufficient capacity for the requested VM size in this region.' } : undefined;
          const op = this.#newOperation(failure, () => {
            const props = resource.body['properties'] as JsonObject;
            props['provisioningState'] = failure ? 'Failed' : 'Succeeded';
            if (failure) resource.body['failureCode'] = failure.code;
            if (type === 'Microsoft.Compute/virtualMachines' && !failure && !this.neverRunning) resource.body['powerState'] = 'running';
          });
          const asyncUrl = `${this.url}/subscriptions/${this.subscriptionId}/providers/${namespace}/locations/${String(resource.body['location'])}/operations/${op.id}?api-version=2024-01-01`;
          return this.#json(existing ? 200 : 201, this.#view(resource), { 'azure-asyncoperation': asyncUrl, 'retry-after': '1' });
        },
      };
    }
    if (method === 'DELETE') {
      return {
        operation: `${collection}.delete`,
        run: () => {
          const resource = this.resources.get(id.toLowerCase());
          if (!resource) return { status: 204, body: '' };
          const users = this.#usersOf(id).filter((u) => u.type !== 'Microsoft.Compute/disks');
          if (users.length > 0) {
            const code = { networkInterfaces: 'NicInUse', publicIPAddresses: 'PublicIPAddressCannotBeDeleted', networkSecurityGroups: 'InUseNetworkSecurityGroupCannotBeDeleted', subnets: 'InUseSubnetCannotBeDeleted', virtualNetworks: 'InUseSubnetCannotBeDeleted' }[collection] ?? 'ResourceInUse';
            throw new ArmFakeError(400, code, `${type} ${id} is in use by ${users[0]!.id} and cannot be deleted.`);
          }
          return this.#accepted(namespace, undefined, () => this.#delete(resource));
        },
      };
    }
    throw new ArmFakeError(405, 'MethodNotAllowed', `${method} on ${type}`);
  }

  #exists(id: string): boolean {
    return this.resources.has(id.toLowerCase());
  }

  // Side effects of a create: subnets in a vnet body become resources; a VM makes its OS disk and takes its NIC.
  #onCreate(resource: FakeArmResource): void {
    const props = resource.body['properties'] as JsonObject;
    if (resource.type === 'Microsoft.Network/virtualNetworks') {
      for (const subnet of ((props['subnets'] ?? []) as JsonObject[])) {
        const id = `${resource.id}/subnets/${String(subnet['name'])}`;
        if (!this.resources.has(id.toLowerCase())) {
          this.resources.set(id.toLowerCase(), { id, type: 'Microsoft.Network/virtualNetworks/subnets', name: String(subnet['name']), resourceGroup: resource.resourceGroup, body: { id, name: subnet['name'], properties: { ...((subnet['properties'] as JsonObject) ?? {}), provisioningState: 'Succeeded' } }, preexisting: resource.preexisting });
        }
      }
    }
    if (resource.type === 'Microsoft.Network/virtualNetworks/subnets') {
      const vnet = this.resources.get(resource.id.replace(/\/subnets\/[^/]+$/i, '').toLowerCase());
      if (vnet) {
        const vprops = vnet.body['properties'] as JsonObject;
        const list = ((vprops['subnets'] ?? []) as JsonObject[]).filter((s) => String(s['name']).toLowerCase() !== resource.name.toLowerCase());
        vprops['subnets'] = [...list, { id: resource.id, name: resource.name, properties: resource.body['properties'] }];
      }
    }
    if (resource.type === 'Microsoft.Network/publicIPAddresses') props['ipAddress'] = this.publicAddress;
    if (resource.type === 'Microsoft.Network/networkInterfaces') {
      for (const config of ((props['ipConfigurations'] ?? []) as JsonObject[])) {
        const cprops = (config['properties'] ?? {}) as JsonObject;
        cprops['privateIPAddress'] ??= `10.0.0.${this.#nextIp++}`;
        config['properties'] = cprops;
      }
    }
    if (resource.type === 'Microsoft.Compute/virtualMachines') {
      const storage = (props['storageProfile'] ?? {}) as JsonObject;
      const osDisk = (storage['osDisk'] ?? {}) as JsonObject;
      const diskName = String(osDisk['name'] ?? `${resource.name}_OsDisk_1_${randomHex(32)}`);
      const diskId = `/subscriptions/${this.subscriptionId}/resourceGroups/${resource.resourceGroup}/providers/Microsoft.Compute/disks/${diskName}`;
      this.resources.set(diskId.toLowerCase(), {
        id: diskId,
        type: 'Microsoft.Compute/disks',
        name: diskName,
        resourceGroup: resource.resourceGroup,
        body: { id: diskId, name: diskName, type: 'Microsoft.Compute/disks', location: resource.body['location'], managedBy: resource.id, properties: { diskSizeGB: osDisk['diskSizeGB'] ?? 30, provisioningState: 'Succeeded' }, sku: { name: String(((osDisk['managedDisk'] ?? {}) as JsonObject)['storageAccountType'] ?? 'Standard_LRS') } },
        preexisting: false,
      });
      storage['osDisk'] = { ...osDisk, name: diskName, managedDisk: { ...((osDisk['managedDisk'] ?? {}) as JsonObject), id: diskId } };
      props['storageProfile'] = storage;
      resource.body['powerState'] = 'starting';
    }
  }

  #delete(resource: FakeArmResource): void {
    this.resources.delete(resource.id.toLowerCase());
    if (resource.type === 'Microsoft.Network/virtualNetworks') {
      for (const key of this.resources.keys()) if (key.startsWith(`${resource.id.toLowerCase()}/`)) this.resources.delete(key);
    }
    if (resource.type === 'Microsoft.Network/virtualNetworks/subnets') {
      const vnet = this.resources.get(resource.id.replace(/\/subnets\/[^/]+$/i, '').toLowerCase());
      if (vnet) {
        const vprops = vnet.body['properties'] as JsonObject;
        vprops['subnets'] = ((vprops['subnets'] ?? []) as JsonObject[]).filter((s) => String(s['name']).toLowerCase() !== resource.name.toLowerCase());
      }
    }
    if (resource.type === 'Microsoft.Compute/virtualMachines') {
      const osDisk = ((resource.body['properties'] as JsonObject)['storageProfile'] as JsonObject)['osDisk'] as JsonObject;
      const disk = this.resources.get(String((osDisk['managedDisk'] as JsonObject)['id']).toLowerCase());
      if (disk) {
        if (osDisk['deleteOption'] === 'Delete') this.resources.delete(disk.id.toLowerCase());
        else delete disk.body['managedBy'];
      }
    }
  }

  // What GET answers: the stored body, without the fake's own bookkeeping.
  #view(resource: FakeArmResource): JsonObject {
    const { powerState: _powerState, failureCode: _failureCode, ...body } = resource.body;
    return body;
  }

  #vmAction(method: string, type: string, id: string, action: string): { operation: string; run: (body: JsonObject) => FakeResponse } {
    if (type.toLowerCase() !== 'microsoft.compute/virtualmachines') throw new ArmFakeError(404, 'NotFound', `no action ${action} on ${type}`);
    if (method === 'GET' && action.toLowerCase() === 'instanceview') {
      return {
        operation: 'virtualMachines.instanceView',
        run: () => {
          const vm = this.#resource(id);
          const provisioning = String((vm.body['properties'] as JsonObject)['provisioningState']).toLowerCase();
          const power = String(vm.body['powerState'] ?? 'starting');
          return this.#json(200, {
            computerName: vm.name,
            statuses: [
              // A failed provisioning names its cause, as Azure's `ProvisioningState/failed/AllocationFailed`.
              { code: `ProvisioningState/${provisioning}${vm.body['failureCode'] ? `/${String(vm.body['failureCode'])}` : ''}`, level: provisioning === 'failed' ? 'Error' : 'Info', displayStatus: `Provisioning ${provisioning}` },
              ...(provisioning === 'failed' ? [] : [{ code: `PowerState/${power}`, level: 'Info', displayStatus: `VM ${power}` }]),
            ],
          });
        },
      };
    }
    const transitions: Readonly<Record<string, readonly [string, string]>> = {
      start: ['starting', 'running'],
      poweroff: ['stopping', 'stopped'],
      deallocate: ['deallocating', 'deallocated'],
      restart: ['starting', 'running'],
    };
    const transition = transitions[action.toLowerCase()];
    if (method !== 'POST' || !transition) throw new ArmFakeError(404, 'NotFound', `no ${method} ${action} on virtual machines`);
    return {
      operation: `virtualMachines.${action}`,
      run: () => {
        const vm = this.#resource(id);
        vm.body['powerState'] = transition[0];
        return this.#accepted('Microsoft.Compute', undefined, () => {
          if (!(this.neverRunning && transition[1] === 'running')) vm.body['powerState'] = transition[1];
        });
      },
    };
  }
}
