import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createArmClients, type ArmClients } from '../../scripts/azure/arm-clients.js';
import { staticTokenCredential } from '../../scripts/azure/credentials.js';
import { loadSettings } from '../../scripts/azure/settings.js';
import { startArmStandIn, type ArmStandIn } from '../helpers/arm-standin/index.js';

// The stand-in itself: it must behave like ARM where the SDK depends on it, or the provisioning
// tests prove nothing. Raw HTTPS for the protocol details, the real SDK clients for the rest.

let standIn: ArmStandIn;
let agent: Agent;
let arm: ArmClients;
const RG = 'standin-rg';

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

function raw(method: string, path: string, options: { token?: string | null; body?: unknown } = {}): Promise<Raw> {
  const url = new URL(path, standIn.url);
  const token = options.token === undefined ? standIn.token : options.token;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, agent, headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text === '' ? undefined : (JSON.parse(text) as unknown) });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body === undefined ? undefined : JSON.stringify(options.body));
  });
}

const sub = () => `/subscriptions/${standIn.subscriptionId}`;

beforeAll(async () => {
  standIn = await startArmStandIn();
  agent = new Agent({ ca: readFileSync(standIn.caCertPath), keepAlive: true });
  const settings = loadSettings({ env: { AZURE_ARM_ENDPOINT: standIn.url, AZURE_ACCESS_TOKEN: standIn.token, WICKET_AZURE_POLL_MS: '5' } });
  arm = createArmClients(settings, staticTokenCredential(settings.staticToken!), standIn.subscriptionId, { agent });
  await arm.resources.resourceGroups.createOrUpdate(RG, { location: 'eastus' });
});

afterAll(async () => {
  agent?.destroy();
  await standIn?.close();
});

describe('ARM stand-in', () => {
  it('requires a bearer token and an api-version, and answers errors as {"error":{"code","message"}}', async () => {
    const noToken = await raw('GET', `${sub()}/resourceGroups/${RG}?api-version=2025-04-01`, { token: null });
    expect(noToken.status).toBe(401);
    expect(noToken.body).toMatchObject({ error: { code: 'AuthenticationFailed', message: expect.any(String) } });
    expect((await raw('GET', `${sub()}/resourceGroups/${RG}?api-version=2025-04-01`, { token: 'wrong' })).status).toBe(401);
    const noVersion = await raw('GET', `${sub()}/resourceGroups/${RG}`);
    expect(noVersion.status).toBe(400);
    expect(noVersion.body).toMatchObject({ error: { code: 'MissingApiVersionParameter' } });
    const missing = await raw('GET', `${sub()}/resourceGroups/nope?api-version=2025-04-01`);
    expect(missing.body).toMatchObject({ error: { code: 'ResourceGroupNotFound' } });
  });

  it('answers PUT 201 with Azure-AsyncOperation, polled InProgress then Succeeded', async () => {
    const path = `${sub()}/resourceGroups/${RG}/providers/Microsoft.Network/networkSecurityGroups/raw-nsg`;
    const put = await raw('PUT', `${path}?api-version=2025-05-01`, { body: { location: 'eastus', properties: {} } });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ properties: { provisioningState: 'Creating' } });
    const op = String(put.headers['azure-asyncoperation']);
    expect((await raw('GET', op)).body).toMatchObject({ status: 'InProgress' });
    expect((await raw('GET', op)).body).toMatchObject({ status: 'Succeeded' });
    expect((await raw('GET', `${path}?api-version=2025-05-01`)).body).toMatchObject({ id: path, properties: { provisioningState: 'Succeeded' } });
  });

  it('answers DELETE 202 with Location, polled 202 then 200, and the resource is gone', async () => {
    const path = `${sub()}/resourceGroups/${RG}/providers/Microsoft.Network/networkSecurityGroups/raw-nsg`;
    const del = await raw('DELETE', `${path}?api-version=2025-05-01`);
    expect(del.status).toBe(202);
    const location = String(del.headers.location);
    expect((await raw('GET', location)).status).toBe(202);
    expect((await raw('GET', location)).status).toBe(200);
    expect((await raw('GET', `${path}?api-version=2025-05-01`)).status).toBe(404);
  });

  it('gives inline children ids the SDK can GET, and checks references exist', async () => {
    const vnet = await arm.network.virtualNetworks.beginCreateOrUpdateAndWait(
      RG,
      'v',
      { location: 'eastus', addressSpace: { addressPrefixes: ['10.0.0.0/16'] }, subnets: [{ name: 's', addressPrefix: '10.0.1.0/24' }] },
      arm.lro,
    );
    const subnetId = `${sub()}/resourceGroups/${RG}/providers/Microsoft.Network/virtualNetworks/v/subnets/s`;
    expect(vnet.subnets?.[0]?.id).toBe(subnetId);
    expect((await arm.network.subnets.get(RG, 'v', 's')).addressPrefix).toBe('10.0.1.0/24');
    const nic = await arm.network.networkInterfaces.beginCreateOrUpdateAndWait(RG, 'n', { location: 'eastus', ipConfigurations: [{ name: 'ip1', subnet: { id: subnetId } }] }, arm.lro);
    expect(nic.ipConfigurations?.[0]?.id).toBe(`${sub()}/resourceGroups/${RG}/providers/Microsoft.Network/networkInterfaces/n/ipConfigurations/ip1`);
    await expect(
      arm.network.networkInterfaces.beginCreateOrUpdateAndWait(RG, 'n2', { location: 'eastus', ipConfigurations: [{ name: 'ip1', subnet: { id: `${subnetId}-missing` } }] }, arm.lro),
    ).rejects.toMatchObject({ statusCode: 400, code: 'InvalidResourceReference' });
  });

  it("gives an OpenAI account its endpoint and listKeys, and soft-deletes it with its group", async () => {
    const account = await arm.cognitive.accounts.beginCreateAndWait(
      RG,
      'acct',
      { location: 'eastus', kind: 'OpenAI', sku: { name: 'S0' }, properties: { customSubDomainName: 'acct-sub' } },
      arm.lro,
    );
    expect(account.properties?.endpoint).toBe('https://acct-sub.openai.azure.com/');
    const keys = await arm.cognitive.accounts.listKeys(RG, 'acct');
    expect(keys.key1).toMatch(/^[0-9a-f]{32}$/);
    await arm.resources.resourceGroups.beginDeleteAndWait(RG, arm.lro);
    await arm.resources.resourceGroups.createOrUpdate(RG, { location: 'eastus' });
    await expect(
      arm.cognitive.accounts.beginCreateAndWait(RG, 'acct', { location: 'eastus', kind: 'OpenAI', sku: { name: 'S0' }, properties: { customSubDomainName: 'acct-sub' } }, arm.lro),
    ).rejects.toMatchObject({ code: 'FlagMustBeSetForRestore' });
    await arm.cognitive.deletedAccounts.beginPurgeAndWait('eastus', RG, 'acct', arm.lro);
    expect(standIn.arm.store.softDeletedAccounts.size).toBe(0);
  });

  it('ends an injected async failure Failed, and answers an injected 4xx at once', async () => {
    standIn.arm.injectFailure({ method: 'PUT', resourceName: 'doomed', mode: 'async', code: 'InternalOperationError', message: 'went wrong' });
    await expect(arm.network.networkSecurityGroups.beginCreateOrUpdateAndWait(RG, 'doomed', { location: 'eastus' }, arm.lro)).rejects.toThrow(
      'The long-running operation has failed. InternalOperationError. went wrong',
    );
    expect((await arm.network.networkSecurityGroups.get(RG, 'doomed')).provisioningState).toBe('Failed');
    standIn.arm.injectFailure({ method: 'PUT', resourceName: 'capped', mode: 'http', status: 409, code: 'QuotaExceeded', message: 'no cores left' });
    await expect(arm.network.networkSecurityGroups.beginCreateOrUpdateAndWait(RG, 'capped', { location: 'eastus' }, arm.lro)).rejects.toMatchObject({
      statusCode: 409,
      code: 'QuotaExceeded',
    });
    // One failure per rule: the next attempt goes through.
    await arm.network.networkSecurityGroups.beginCreateOrUpdateAndWait(RG, 'capped', { location: 'eastus' }, arm.lro);
  });
});
