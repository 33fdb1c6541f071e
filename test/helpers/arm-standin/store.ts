import { randomUUID } from 'node:crypto';

// The stand-in's resource model: what ARM and the resource providers do to a PUT body (ids for the
// resource and its inline children, server-filled fields, references that must exist, cascading
// group deletes, soft-deleted Cognitive Services accounts), independent of HTTP.

export type Json = Record<string, unknown>;

export class ArmRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface StoredResource {
  id: string;
  type: string;
  /** The resource as GET returns it (wire JSON). */
  body: Json;
  /** Fields ARM accepts but never returns (a VM's customData), kept for tests to inspect. */
  writeOnly: Json;
  apiVersion: string;
}

export interface ParsedId {
  subscriptionId: string;
  group: string | undefined;
  /** e.g. Microsoft.Network/virtualNetworks/subnets, or Microsoft.Resources/resourceGroups */
  type: string;
  name: string;
  /** The id this resource lives under: its group, its parent resource, or (extensions) its scope. */
  parentId: string | undefined;
}

/** Property arrays whose elements ARM treats as child resources with their own ids. */
const INLINE_CHILD_ARRAYS = new Set(['subnets', 'securityRules', 'ipConfigurations', 'privateLinkServiceConnections', 'privateDnsZoneConfigs']);
/** Keys whose string values must name an existing resource when they look like a resource id. */
const REFERENCE_KEYS = new Set(['id', 'privateLinkServiceId', 'privateDnsZoneId']);

export const lower = (id: string): string => id.toLowerCase();

export function parseResourceId(path: string): ParsedId | undefined {
  const parts = path.split('/').filter((p) => p !== '');
  if (parts[0]?.toLowerCase() !== 'subscriptions' || parts[1] === undefined) return undefined;
  const subscriptionId = parts[1];
  if (parts.length === 4 && parts[2]?.toLowerCase() === 'resourcegroups' && parts[3] !== undefined) {
    return { subscriptionId, group: parts[3], type: 'Microsoft.Resources/resourceGroups', name: parts[3], parentId: undefined };
  }
  if (parts[2]?.toLowerCase() !== 'resourcegroups' || parts[3] === undefined) return undefined;
  const group = parts[3];
  // The last /providers/ segment names the provider of this resource (earlier ones are its scope).
  const providerIndex = parts.map((p) => p.toLowerCase()).lastIndexOf('providers');
  if (providerIndex < 4) return undefined;
  const namespace = parts[providerIndex + 1];
  const rest = parts.slice(providerIndex + 2);
  if (namespace === undefined || rest.length === 0 || rest.length % 2 !== 0) return undefined;
  const types = rest.filter((_, i) => i % 2 === 0);
  const name = rest[rest.length - 1] ?? '';
  const all = `/${parts.join('/')}`;
  let parentId: string;
  if (rest.length > 2) parentId = all.split('/').slice(0, -2).join('/');
  else if (providerIndex > 4) parentId = `/${parts.slice(0, providerIndex).join('/')}`;
  else parentId = `/${parts.slice(0, 4).join('/')}`;
  return { subscriptionId, group, type: `${namespace}/${types.join('/')}`, name, parentId };
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function propertiesOf(body: Json): Json {
  if (!isObject(body.properties)) body.properties = {};
  return body.properties as Json;
}

export class ArmStore {
  readonly resources = new Map<string, StoredResource>();
  /** Inline children (subnets, rules, ip configurations…): lower id -> owning resource's lower id. */
  readonly children = new Map<string, { ownerId: string; body: Json }>();
  /** Deleted Cognitive Services accounts, keyed "location/group/name" (lower case). */
  readonly softDeletedAccounts = new Map<string, Json>();
  private nextPublicIp = 10;

  get(id: string): StoredResource | undefined {
    return this.resources.get(lower(id));
  }

  exists(id: string): boolean {
    return this.resources.has(lower(id)) || this.children.has(lower(id));
  }

  /** GET body for a resource or an inline child. */
  read(id: string): Json | undefined {
    return this.resources.get(lower(id))?.body ?? this.children.get(lower(id))?.body;
  }

  /** Validates and stores a PUT; the resource starts in `initialState` until its operation ends. */
  put(path: string, parsed: ParsedId, request: Json, apiVersion: string, initialState: string): { resource: StoredResource; created: boolean } {
    const id = path.replace(/\/+$/, '');
    if (parsed.parentId !== undefined && !this.resources.has(lower(parsed.parentId))) {
      const groupOnly = parsed.parentId.split('/').length === 5;
      throw groupOnly
        ? new ArmRequestError(404, 'ResourceGroupNotFound', `Resource group '${parsed.group}' could not be found.`)
        : new ArmRequestError(404, 'ParentResourceNotFound', `Can not perform requested operation on nested resource. Parent resource '${parsed.parentId}' not found.`);
    }
    const previous = this.resources.get(lower(id));
    const body: Json = JSON.parse(JSON.stringify(request)) as Json;
    const writeOnly: Json = {};
    body.id = id;
    body.name = parsed.name;
    body.type = parsed.type;
    this.checkReferences(body, id);
    this.applyProviderRules(parsed, body, previous?.body, writeOnly);
    if (parsed.type !== 'Microsoft.Authorization/roleAssignments') propertiesOf(body).provisioningState = initialState;
    this.removeChildrenOf(id);
    this.registerInlineChildren(id, body);
    const resource: StoredResource = { id, type: parsed.type, body, writeOnly, apiVersion };
    this.resources.set(lower(id), resource);
    return { resource, created: previous === undefined };
  }

  setState(id: string, state: string): void {
    const r = this.resources.get(lower(id));
    if (r && r.type !== 'Microsoft.Authorization/roleAssignments') propertiesOf(r.body).provisioningState = state;
  }

  /** Deletes a resource and everything under it; Cognitive Services accounts go to soft-delete. */
  delete(id: string): void {
    const prefix = lower(id);
    for (const [key, r] of [...this.resources]) {
      if (key === prefix || key.startsWith(`${prefix}/`)) {
        if (r.type === 'Microsoft.CognitiveServices/accounts') {
          const p = parseResourceId(r.id);
          this.softDeletedAccounts.set(lower(`${String(r.body.location)}/${p?.group ?? ''}/${p?.name ?? ''}`), r.body);
        }
        this.resources.delete(key);
        this.removeChildrenOf(r.id);
      }
    }
  }

  purgeDeletedAccount(location: string, group: string, name: string): boolean {
    return this.softDeletedAccounts.delete(lower(`${location}/${group}/${name}`));
  }

  private removeChildrenOf(id: string): void {
    for (const [key, child] of [...this.children]) if (child.ownerId === lower(id)) this.children.delete(key);
  }

  private registerInlineChildren(id: string, body: Json): void {
    const props = propertiesOf(body);
    for (const [key, value] of Object.entries(props)) {
      if (!INLINE_CHILD_ARRAYS.has(key) || !Array.isArray(value)) continue;
      for (const child of value) {
        if (!isObject(child) || typeof child.name !== 'string') {
          throw new ArmRequestError(400, 'InvalidRequestFormat', `Each element of properties.${key} needs a name.`);
        }
        const childId = `${id}/${key}/${child.name}`;
        child.id = childId;
        propertiesOf(child).provisioningState = 'Succeeded';
        this.children.set(lower(childId), { ownerId: lower(id), body: child });
      }
    }
  }

  /** Every reference to another resource must resolve, as ARM's providers insist. */
  private checkReferences(body: Json, selfId: string): void {
    const visit = (value: unknown, key: string | undefined, depth: number): void => {
      if (depth > 32) return;
      if (typeof value === 'string') {
        if (key !== undefined && REFERENCE_KEYS.has(key) && value.toLowerCase().startsWith('/subscriptions/')) {
          const self = lower(value) === lower(selfId) || lower(value).startsWith(`${lower(selfId)}/`);
          if (!self && !this.exists(value)) {
            throw new ArmRequestError(400, 'InvalidResourceReference', `Resource ${value} referenced by resource ${selfId} was not found.`);
          }
        }
        return;
      }
      if (Array.isArray(value)) {
        for (const v of value) visit(v, key, depth + 1);
        return;
      }
      if (isObject(value)) for (const [k, v] of Object.entries(value)) if (!(depth === 0 && k === 'id')) visit(v, k, depth + 1);
    };
    visit(body, undefined, 0);
  }

  /** What each resource provider adds to (or refuses in) a PUT body. */
  private applyProviderRules(parsed: ParsedId, body: Json, previous: Json | undefined, writeOnly: Json): void {
    const props = propertiesOf(body);
    const prevProps = previous && isObject(previous.properties) ? previous.properties : {};
    switch (parsed.type) {
      case 'Microsoft.Network/publicIPAddresses':
        if (props.publicIPAllocationMethod === 'Static') props.ipAddress = prevProps.ipAddress ?? `203.0.113.${this.nextPublicIp++}`;
        break;
      case 'Microsoft.CognitiveServices/accounts': {
        const key = lower(`${String(body.location)}/${parsed.group ?? ''}/${parsed.name}`);
        if (!previous && this.softDeletedAccounts.has(key) && props.restore !== true) {
          throw new ArmRequestError(
            409,
            'FlagMustBeSetForRestore',
            `An existing resource with ID '${body.id as string}' has been soft-deleted. To restore the resource, you must specify 'restore' to be 'true' in the property. If you don't want to restore existing resource, please purge it first.`,
          );
        }
        if (body.kind === 'OpenAI' && typeof props.customSubDomainName !== 'string') {
          throw new ArmRequestError(400, 'CustomSubDomainRequired', 'A custom subdomain is required for this account.');
        }
        const sub = String(props.customSubDomainName ?? parsed.name);
        props.endpoint = `https://${sub}.openai.azure.com/`;
        props.endpoints = { 'OpenAI Language Model Instance API': `https://${sub}.openai.azure.com/` };
        break;
      }
      case 'Microsoft.Compute/virtualMachines': {
        const os = isObject(props.osProfile) ? props.osProfile : undefined;
        if (os && typeof os.customData === 'string') {
          writeOnly.customData = os.customData;
          delete os.customData; // ARM never returns customData
        }
        props.vmId = (prevProps.vmId as string | undefined) ?? randomUUID();
        const identity = isObject(body.identity) ? body.identity : undefined;
        if (identity && String(identity.type).includes('SystemAssigned')) {
          const prevIdentity = previous && isObject(previous.identity) ? previous.identity : {};
          identity.principalId = prevIdentity.principalId ?? randomUUID();
          identity.tenantId = prevIdentity.tenantId ?? '11111111-2222-3333-4444-555555555555';
        }
        break;
      }
      case 'Microsoft.Network/privateEndpoints': {
        const connections = Array.isArray(props.privateLinkServiceConnections) ? props.privateLinkServiceConnections : [];
        for (const c of connections) {
          if (!isObject(c)) continue;
          const cp = propertiesOf(c);
          const target = typeof cp.privateLinkServiceId === 'string' ? this.get(cp.privateLinkServiceId) : undefined;
          const groups = Array.isArray(cp.groupIds) ? cp.groupIds : [];
          if (target?.type === 'Microsoft.CognitiveServices/accounts' && (groups.length !== 1 || groups[0] !== 'account')) {
            throw new ArmRequestError(400, 'PrivateEndpointBadRequest', `Call to Microsoft.CognitiveServices/accounts failed. Error message: Group id(s) ${JSON.stringify(groups)} are not supported; use 'account'.`);
          }
          cp.privateLinkServiceConnectionState = { status: 'Approved', description: 'Auto-Approved', actionsRequired: 'None' };
        }
        props.networkInterfaces = [{ id: `${parsed.parentId ?? ''}/providers/Microsoft.Network/networkInterfaces/${parsed.name}.nic.${randomUUID()}` }];
        break;
      }
      case 'Microsoft.Network/privateDnsZones':
      case 'Microsoft.Network/privateDnsZones/virtualNetworkLinks':
        if (body.location !== 'global') throw new ArmRequestError(400, 'InvalidLocation', `Private DNS resources are global; got location '${String(body.location)}'.`);
        break;
      case 'Microsoft.Authorization/roleAssignments': {
        props.scope = parsed.parentId;
        for (const r of this.resources.values()) {
          if (r.type !== parsed.type || lower(r.id) === lower(String(body.id))) continue;
          const rp = propertiesOf(r.body);
          if (rp.scope === props.scope && rp.principalId === props.principalId && rp.roleDefinitionId === props.roleDefinitionId) {
            throw new ArmRequestError(409, 'RoleAssignmentExists', 'The role assignment already exists.');
          }
        }
        break;
      }
      default:
        break;
    }
  }
}
