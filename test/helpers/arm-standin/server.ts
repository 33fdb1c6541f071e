import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ArmRequestError, ArmStore, lower, parseResourceId, type Json, type ParsedId } from './store.js';

// HTTP semantics of Azure Resource Manager, as far as the real SDK clients rely on them:
//  - every request needs `Authorization: Bearer <token>` and an `api-version` query parameter;
//  - PUT answers 201 (200 on update) with `Azure-AsyncOperation`; polling it gives InProgress,
//    then Succeeded (or Failed with an error), and the resource's provisioningState follows;
//    resource groups and role assignments are synchronous, as in Azure;
//  - DELETE answers 202 with `Location`; polling it gives 202, then 200 once it is gone;
//  - POST actions: listKeys (sync), runCommand (202 with both headers, result at Location);
//  - errors are {"error":{"code","message"}}.

export interface FailureRule {
  method: 'PUT' | 'POST' | 'DELETE';
  /** Matches a request whose resource name (last id segment) equals this. */
  resourceName: string;
  /** `http`: answer at once with `status`; `async`: accept, then end the operation Failed. */
  mode: 'http' | 'async';
  status?: number;
  code: string;
  message: string;
  /** How many matching requests fail (default 1). */
  times?: number;
}

export interface RunCommandRequest {
  vmId: string;
  vmName: string;
  script: string[];
  /** The VM's cloud-init document (customData, decoded). */
  customData: string | undefined;
}

export interface RunCommandOutcome {
  stdout: string;
  stderr: string;
}

export type RunCommandHandler = (req: RunCommandRequest) => RunCommandOutcome;

export interface RecordedRequest {
  method: string;
  path: string;
  apiVersion: string | null;
  status: number;
}

interface Operation {
  /** Polls answered InProgress before the outcome. */
  pollsLeft: number;
  done: boolean;
  error: { code: string; message: string } | undefined;
  complete: () => void;
  /** For POST actions: the result served at the Location URL. */
  result?: Json;
}

const OPERATION_PATH = /^\/subscriptions\/([^/]+)\/providers\/Microsoft\.StandIn\/operations\/([0-9a-f-]+)$/i;
const RESULT_PATH = /^\/subscriptions\/([^/]+)\/providers\/Microsoft\.StandIn\/operationResults\/([0-9a-f-]+)$/i;
const PURGE_PATH = /^\/subscriptions\/([^/]+)\/providers\/Microsoft\.CognitiveServices\/locations\/([^/]+)\/resourceGroups\/([^/]+)\/deletedAccounts\/([^/]+)$/i;
const SYNC_TYPES = new Set(['Microsoft.Resources/resourceGroups', 'Microsoft.Authorization/roleAssignments']);

export class ArmStandInServer {
  readonly store = new ArmStore();
  readonly requests: RecordedRequest[] = [];
  readonly runCommands: RunCommandRequest[] = [];
  private readonly operations = new Map<string, Operation>();
  private readonly failures: FailureRule[] = [];
  baseUrl = '';

  constructor(
    private readonly token: string,
    private readonly runCommandHandler: RunCommandHandler,
    /** InProgress answers before an operation finishes: 1 exercises the SDK's polling. */
    private readonly pollsPerOperation = 1,
  ) {}

  injectFailure(rule: FailureRule): void {
    this.failures.push({ ...rule, times: rule.times ?? 1 });
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // The SDK's by-id calls send `//subscriptions/…` (host + "/" + an id that starts with "/"),
      // which ARM accepts; collapse it so URL parsing does not read "subscriptions" as a host.
      const url = new URL((req.url ?? '/').replace(/^\/+/, '/'), 'https://standin.invalid');
      const method = req.method ?? 'GET';
      const apiVersion = url.searchParams.get('api-version');
      const send = (status: number, body?: Json, headers: Record<string, string> = {}): void => {
        this.requests.push({ method, path: url.pathname, apiVersion, status });
        const text = body === undefined ? '' : JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-ms-request-id': randomUUID(), ...headers });
        res.end(method === 'HEAD' ? undefined : text);
      };
      const fail = (status: number, code: string, message: string): void => send(status, { error: { code, message } });
      try {
        if (req.headers.authorization !== `Bearer ${this.token}`) {
          fail(401, 'AuthenticationFailed', 'Authentication failed. The Authorization header is missing or holds an invalid bearer token.');
          return;
        }
        if (apiVersion === null || apiVersion === '') {
          fail(400, 'MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.");
          return;
        }
        let body: Json = {};
        if (chunks.length > 0) {
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json;
          } catch {
            fail(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.');
            return;
          }
        }
        this.route(method, url.pathname, apiVersion, body, send);
      } catch (err) {
        if (err instanceof ArmRequestError) fail(err.status, err.code, err.message);
        else fail(500, 'InternalServerError', err instanceof Error ? err.message : String(err));
      }
    });
  }

  private route(method: string, path: string, apiVersion: string, body: Json, send: (s: number, b?: Json, h?: Record<string, string>) => void): void {
    const op = OPERATION_PATH.exec(path);
    if (op && method === 'GET') return this.pollOperation(op[2] ?? '', send);
    const result = RESULT_PATH.exec(path);
    if (result && method === 'GET') return this.pollResult(result[2] ?? '', send);
    const purge = PURGE_PATH.exec(path);
    if (purge && method === 'DELETE') {
      if (!this.store.purgeDeletedAccount(purge[2] ?? '', purge[3] ?? '', purge[4] ?? '')) {
        throw new ArmRequestError(404, 'ResourceNotFound', `The deleted account '${purge[4]}' was not found.`);
      }
      return this.accepted(path, () => undefined, send);
    }

    const actionMatch = /^(.*)\/(listKeys|runCommand)$/.exec(path);
    if (actionMatch && method === 'POST') return this.action(actionMatch[1] ?? '', actionMatch[2] ?? '', body, send);

    const parsed = parseResourceId(path);
    if (!parsed) throw new ArmRequestError(404, 'InvalidResourceType', `The resource path '${path}' is not understood by the stand-in.`);
    switch (method) {
      case 'GET':
      case 'HEAD': {
        const found = this.store.read(path);
        if (!found) throw this.notFound(parsed);
        return send(method === 'HEAD' ? 204 : 200, found);
      }
      case 'PUT':
        return this.put(path, parsed, body, apiVersion, send);
      case 'DELETE':
        return this.deleteResource(path, parsed, send);
      default:
        throw new ArmRequestError(405, 'MethodNotAllowed', `${method} is not supported on ${path}.`);
    }
  }

  private notFound(parsed: ParsedId): ArmRequestError {
    return parsed.type === 'Microsoft.Resources/resourceGroups'
      ? new ArmRequestError(404, 'ResourceGroupNotFound', `Resource group '${parsed.name}' could not be found.`)
      : new ArmRequestError(404, 'ResourceNotFound', `The Resource '${parsed.type}/${parsed.name}' under resource group '${parsed.group}' was not found.`);
  }

  private takeFailure(method: FailureRule['method'], name: string): FailureRule | undefined {
    const rule = this.failures.find((f) => f.method === method && lower(f.resourceName) === lower(name) && (f.times ?? 0) > 0);
    if (rule) rule.times = (rule.times ?? 1) - 1;
    return rule;
  }

  private newOperation(complete: () => void, error?: { code: string; message: string }, result?: Json): string {
    const id = randomUUID();
    this.operations.set(id, { pollsLeft: this.pollsPerOperation, done: false, error, complete, ...(result ? { result } : {}) });
    return id;
  }

  private operationUrl(path: string, id: string): string {
    const sub = path.split('/')[2] ?? 'unknown';
    return `${this.baseUrl}/subscriptions/${sub}/providers/Microsoft.StandIn/operations/${id}?api-version=2020-01-01`;
  }

  private resultUrl(path: string, id: string): string {
    const sub = path.split('/')[2] ?? 'unknown';
    return `${this.baseUrl}/subscriptions/${sub}/providers/Microsoft.StandIn/operationResults/${id}?api-version=2020-01-01`;
  }

  private finish(op: Operation): void {
    if (!op.done) {
      op.done = true;
      op.complete();
    }
  }

  private pollOperation(id: string, send: (s: number, b?: Json) => void): void {
    const op = this.operations.get(id);
    if (!op) throw new ArmRequestError(404, 'OperationNotFound', `Operation ${id} was not found.`);
    if (op.pollsLeft > 0) {
      op.pollsLeft--;
      return send(200, { name: id, status: 'InProgress' });
    }
    this.finish(op);
    if (op.error) return send(200, { name: id, status: 'Failed', error: op.error });
    return send(200, { name: id, status: 'Succeeded' });
  }

  private pollResult(id: string, send: (s: number, b?: Json) => void): void {
    const op = this.operations.get(id);
    if (!op) throw new ArmRequestError(404, 'OperationNotFound', `Operation ${id} was not found.`);
    if (op.pollsLeft > 0) {
      op.pollsLeft--;
      return send(202);
    }
    this.finish(op);
    if (op.error) throw new ArmRequestError(400, op.error.code, op.error.message);
    return op.result ? send(200, op.result) : send(200);
  }

  private put(path: string, parsed: ParsedId, body: Json, apiVersion: string, send: (s: number, b?: Json, h?: Record<string, string>) => void): void {
    const failure = this.takeFailure('PUT', parsed.name);
    if (failure?.mode === 'http') throw new ArmRequestError(failure.status ?? 400, failure.code, failure.message);
    if (SYNC_TYPES.has(parsed.type)) {
      const { resource, created } = this.store.put(path, parsed, body, apiVersion, 'Succeeded');
      return send(created ? 201 : 200, resource.body);
    }
    const existed = this.store.get(path) !== undefined;
    const { resource, created } = this.store.put(path, parsed, body, apiVersion, existed ? 'Updating' : 'Creating');
    const error = failure ? { code: failure.code, message: failure.message } : undefined;
    const opId = this.newOperation(() => this.store.setState(resource.id, error ? 'Failed' : 'Succeeded'), error);
    send(created ? 201 : 200, resource.body, { 'azure-asyncoperation': this.operationUrl(path, opId) });
  }

  private deleteResource(path: string, parsed: ParsedId, send: (s: number, b?: Json, h?: Record<string, string>) => void): void {
    const failure = this.takeFailure('DELETE', parsed.name);
    if (failure?.mode === 'http') throw new ArmRequestError(failure.status ?? 400, failure.code, failure.message);
    if (!this.store.get(path)) {
      // ARM answers 204 for an absent resource, 404 for an absent group.
      if (parsed.type === 'Microsoft.Resources/resourceGroups') throw this.notFound(parsed);
      return send(204);
    }
    if (parsed.type === 'Microsoft.Authorization/roleAssignments') {
      const body = this.store.read(path);
      this.store.delete(path);
      return send(200, body);
    }
    this.store.setState(path, 'Deleting');
    this.accepted(path, () => this.store.delete(path), send, failure ? { code: failure.code, message: failure.message } : undefined);
  }

  private accepted(path: string, complete: () => void, send: (s: number, b?: Json, h?: Record<string, string>) => void, error?: { code: string; message: string }): void {
    const opId = this.newOperation(complete, error);
    send(202, undefined, { location: this.resultUrl(path, opId) });
  }

  private action(resourcePath: string, action: string, body: Json, send: (s: number, b?: Json, h?: Record<string, string>) => void): void {
    const parsed = parseResourceId(resourcePath);
    const resource = this.store.get(resourcePath);
    if (!parsed || !resource) throw new ArmRequestError(404, 'ResourceNotFound', `The Resource '${resourcePath}' was not found.`);
    if (action === 'listKeys' && resource.type === 'Microsoft.CognitiveServices/accounts') {
      return send(200, { key1: randomUUID().replaceAll('-', ''), key2: randomUUID().replaceAll('-', '') });
    }
    if (action === 'runCommand' && resource.type === 'Microsoft.Compute/virtualMachines') {
      const state = (resource.body.properties as Json | undefined)?.provisioningState;
      if (state !== 'Succeeded') throw new ArmRequestError(409, 'OperationNotAllowed', `The VM '${parsed.name}' is ${String(state)}; run command needs a running VM.`);
      if (body.commandId !== 'RunShellScript' || !Array.isArray(body.script)) {
        throw new ArmRequestError(400, 'InvalidParameter', 'commandId RunShellScript with a script array is required.');
      }
      const failure = this.takeFailure('POST', parsed.name);
      if (failure?.mode === 'http') throw new ArmRequestError(failure.status ?? 400, failure.code, failure.message);
      const customData = typeof resource.writeOnly.customData === 'string' ? Buffer.from(resource.writeOnly.customData, 'base64').toString('utf8') : undefined;
      const request: RunCommandRequest = { vmId: resource.id, vmName: parsed.name, script: body.script.map(String), customData };
      this.runCommands.push(request);
      const outcome = this.runCommandHandler(request);
      // The shape Azure gives a Linux RunShellScript: one status, both streams in its message.
      const result = {
        value: [
          {
            code: 'ProvisioningState/succeeded',
            level: 'Info',
            displayStatus: 'Provisioning succeeded',
            message: `Enable succeeded: \n[stdout]\n${outcome.stdout}\n[stderr]\n${outcome.stderr}\n`,
          },
        ],
      };
      const error = failure ? { code: failure.code, message: failure.message } : undefined;
      const opId = this.newOperation(() => undefined, error, result);
      return send(202, undefined, { 'azure-asyncoperation': this.operationUrl(resourcePath, opId), location: this.resultUrl(resourcePath, opId) });
    }
    throw new ArmRequestError(400, 'InvalidAction', `Action ${action} is not supported on ${resource.type}.`);
  }
}
