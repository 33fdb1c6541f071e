import { validateGatewaySpec, type GatewayInput } from '../../agent/gateway/gateway-spec.js';
import { wicketError } from '../../protocol/errors.js';
import { MAX_TICKET_TEXT_LEN } from '../../protocol/limits.js';
import { Secret } from '../../protocol/secret.js';
import { INLET_ADDRESS, PORTAL } from './blueprint.js';
import { renderTemplate, SAFE_WORDS, words } from './templates.js';

// The three VMs' first-boot configuration. A cloud-config document is YAML; we emit JSON (a
// subset of YAML that cloud-init's parser reads) so no indentation can go wrong and tests can
// parse it exactly. Every file it writes comes from a template in scripts/azure/templates/.
//
// What a document holds: scripts, systemd units, node.json, and for agents one enrollment ticket
// (written mode 0600, deleted after enrollment). Nothing else secret: no API key (AI Corp's outlet
// is an Azure OpenAI gateway that authenticates with the VM's managed identity), no admin ticket
// (it stays on the relay until `up` fetches it).

export const CLOUD_CONFIG_HEADER = '#cloud-config\n';
/** Azure's limit on customData; our documents are a fraction of it. */
export const CUSTOM_DATA_MAX_BYTES = 64 * 1024;

export interface WriteFile {
  path: string;
  permissions: string;
  owner: string;
  content: string;
}

export interface CloudConfig {
  write_files: WriteFile[];
  runcmd: string[][];
}

export interface WicketSource {
  repo: string;
  ref: string;
}

/** An outlet in gateway mode: its backends replace `to` (agent/gateway/gateway-spec.ts). */
export interface GatewayOutlet {
  name: string;
  relay: string;
  allow: string;
  gateway: GatewayInput;
}

export interface NodeConfig {
  outlets: GatewayOutlet[];
  inlets: Array<{ name: string; from: string; via: string; allow: string }>;
}

/** AI Corp's Azure OpenAI account as the gateway's one backend. */
export interface AoaiBackend {
  /** The backend's name: the region it runs in (settings LOCATION, e.g. eastus). */
  region: string;
  /** The account's endpoint as ARM reports it, e.g. https://x.openai.azure.com/. */
  endpoint: string;
}

const TICKET_TEXT = /^wkt1_[A-Za-z0-9_-]+$/;
const LIB = '/usr/local/lib/wicket';

function file(path: string, content: string, permissions = '0644'): WriteFile {
  return { path, permissions, owner: 'root:root', content };
}

function document(config: CloudConfig): Secret<string> {
  const text = CLOUD_CONFIG_HEADER + JSON.stringify(config, null, 1) + '\n';
  if (Buffer.byteLength(text) > CUSTOM_DATA_MAX_BYTES) {
    throw wicketError('WICKET_ERR_INTERNAL', `cloud-init document is ${Buffer.byteLength(text)} bytes, over Azure's ${CUSTOM_DATA_MAX_BYTES}`);
  }
  return new Secret(text);
}

export function parseCloudConfig(text: string): CloudConfig {
  if (!text.startsWith(CLOUD_CONFIG_HEADER)) throw new Error('not a #cloud-config document');
  return JSON.parse(text.slice(CLOUD_CONFIG_HEADER.length)) as CloudConfig;
}

function installFile(src: WicketSource): WriteFile {
  return file(`${LIB}/install-wicket.sh`, renderTemplate('install-wicket.sh', words({ WICKET_REPO: src.repo, WICKET_REF: src.ref })), '0755');
}

function ticketFile(ticket: Secret<string>): WriteFile {
  const text = ticket.reveal();
  if (text.length > MAX_TICKET_TEXT_LEN || !TICKET_TEXT.test(text)) {
    throw wicketError('WICKET_ERR_TICKET_MALFORMED', 'the ticket minted on the relay is not a single-line wkt1_ ticket');
  }
  return file('/etc/wicket/ticket', `${text}\n`, '0600');
}

const RUN_BOOTSTRAP = [['bash', `${LIB}/bootstrap.sh`]];

export function relayCloudConfig(src: WicketSource, relayPublicUrl: string): Secret<string> {
  return document({
    write_files: [
      installFile(src),
      file(`${LIB}/bootstrap.sh`, renderTemplate('relay-bootstrap.sh'), '0755'),
      file('/etc/systemd/system/wicket-relay.service', renderTemplate('wicket-relay.service', words({ RELAY_PUBLIC_URL: relayPublicUrl }))),
    ],
    runcmd: RUN_BOOTSTRAP,
  });
}

/**
 * AI Corp: one outlet, reachable only by identities with the inlet attribute, in Azure OpenAI
 * gateway mode. The outlet itself adds an Entra token for the VM's managed identity (role
 * "Cognitive Services OpenAI User"; the account has key auth disabled, so there is no key to
 * configure) and calls the account over TLS, which resolves to the private endpoint inside the
 * VNet. Its usage ledger and limit counters live in the agent home.
 */
export function aiCorpNodeConfig(aoai: AoaiBackend): NodeConfig {
  const gateway: GatewayInput = {
    kind: 'azure-openai',
    backends: [{ name: aoai.region, url: new URL(aoai.endpoint).origin, auth: { kind: 'entra' } }],
  };
  // Checked here, before the VM exists: cloud-init runs once, and an agent that refuses its
  // node.json on the VM would only show up as a demo that never answers.
  validateGatewaySpec(gateway, 'outlets[0].gateway', 'WICKET_ERR_AZURE_CONFIG');
  return {
    outlets: [{ name: PORTAL.relayName, relay: PORTAL.relayName, allow: PORTAL.inletAttribute, gateway }],
    inlets: [],
  };
}

/** Health Corp: one inlet on loopback, served only by identities with the outlet attribute. */
export function healthCorpNodeConfig(): NodeConfig {
  return {
    outlets: [],
    inlets: [{ name: PORTAL.relayName, from: INLET_ADDRESS, via: PORTAL.relayName, allow: PORTAL.outletAttribute }],
  };
}

function agentBootstrap(services: string[], startOnce: string[]): WriteFile {
  const text = renderTemplate('agent-bootstrap.sh', {
    SERVICES: { value: services.join(' '), alphabet: SAFE_WORDS },
    START_ONCE: { value: startOnce.join(' '), alphabet: SAFE_WORDS },
  });
  return file(`${LIB}/bootstrap.sh`, text, '0755');
}

export function aiCorpCloudConfig(src: WicketSource, ticket: Secret<string>, aoai: AoaiBackend): Secret<string> {
  return document({
    write_files: [
      installFile(src),
      agentBootstrap(['wicket-agent.service'], []),
      file('/etc/wicket/node.json', JSON.stringify(aiCorpNodeConfig(aoai), null, 2) + '\n'),
      ticketFile(ticket),
      file('/etc/systemd/system/wicket-agent.service', renderTemplate('wicket-agent.service')),
    ],
    runcmd: RUN_BOOTSTRAP,
  });
}

export function healthCorpCloudConfig(src: WicketSource, ticket: Secret<string>, deployment: string): Secret<string> {
  return document({
    write_files: [
      installFile(src),
      agentBootstrap(['wicket-agent.service'], ['wicket-demo.service']),
      file('/etc/wicket/node.json', JSON.stringify(healthCorpNodeConfig(), null, 2) + '\n'),
      ticketFile(ticket),
      file('/etc/systemd/system/wicket-agent.service', renderTemplate('wicket-agent.service')),
      file('/etc/systemd/system/wicket-demo.service', renderTemplate('wicket-demo.service')),
      file(`${LIB}/run-demo.sh`, renderTemplate('run-demo.sh', words({ INLET_ADDRESS, DEPLOYMENT: deployment })), '0755'),
    ],
    runcmd: RUN_BOOTSTRAP,
  });
}
