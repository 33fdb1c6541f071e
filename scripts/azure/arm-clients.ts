import type { Agent } from 'node:https';
import { CognitiveServicesManagementClient } from '@azure/arm-cognitiveservices';
import { ComputeManagementClient } from '@azure/arm-compute';
import { NetworkManagementClient } from '@azure/arm-network';
import { PrivateDnsManagementClient } from '@azure/arm-privatedns';
import { ResourceManagementClient } from '@azure/arm-resources';
import type { TokenCredential } from '@azure/identity';
import type { AzureSettings } from './settings.js';

// The five SDK clients, all pointed at one ARM endpoint (public Azure, a sovereign cloud, Azure
// Stack, or the test stand-in). The classic clients take the URL as `$host` (request URLs) and
// `endpoint` (pipeline base); the modular compute client takes `endpoint`. Each pinned SDK version
// hard-codes its api-version, which is why package.json pins them exactly.

export interface ArmClients {
  resources: ResourceManagementClient;
  network: NetworkManagementClient;
  privateDns: PrivateDnsManagementClient;
  cognitive: CognitiveServicesManagementClient;
  compute: ComputeManagementClient;
  /** Passed to every long-running call: how often to poll (undefined: the SDK's default). */
  lro: { updateIntervalInMs?: number };
}

export interface ArmClientOptions {
  /** An https.Agent (e.g. trusting a test CA) for in-process callers; run.sh uses NODE_EXTRA_CA_CERTS. */
  agent?: Agent;
}

export function createArmClients(settings: AzureSettings, credential: TokenCredential, subscriptionId: string, options: ArmClientOptions = {}): ArmClients {
  const endpoint = settings.armEndpoint;
  const common = {
    endpoint,
    $host: endpoint,
    credentialScopes: [settings.armScope],
    ...(options.agent ? { agent: options.agent } : {}),
  };
  return {
    resources: new ResourceManagementClient(credential, subscriptionId, common),
    network: new NetworkManagementClient(credential, subscriptionId, common),
    privateDns: new PrivateDnsManagementClient(credential, subscriptionId, common),
    cognitive: new CognitiveServicesManagementClient(credential, subscriptionId, common),
    compute: new ComputeManagementClient(credential, subscriptionId, {
      endpoint,
      credentials: { scopes: [settings.armScope] },
      ...(options.agent ? { agent: options.agent } : {}),
    }),
    lro: settings.pollIntervalMs === undefined ? {} : { updateIntervalInMs: settings.pollIntervalMs },
  };
}
