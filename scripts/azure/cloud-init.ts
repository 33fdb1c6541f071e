import { wicketError } from '../../protocol/errors.js';
import { MAX_TICKET_TEXT_LEN } from '../../protocol/limits.js';
import { Secret } from '../../protocol/secret.js';
import { INLET_ADDRESS, PORTAL, TOKEN_PROXY_ADDRESS } from './blueprint.js';
import { renderTemplate, SAFE_WORDS, words } from './templates.js';

// The three VMs' first-boot configuration. A cloud-config document is YAML; we emit JSON (a
// subset of YAML that cloud-init's parser reads) so no indentation can go wrong and tests can
// parse it exactly. Every file it writes comes from a template in scripts/azure/templates/.
//
// What a document holds: scripts, systemd units, node.json, and for agents one enrollment ticket
// (written mode 0600, deleted after enrollment). Nothing else secret: no API key (AI Corp's VM
// uses its managed identity), no admin ticket (it stays on the relay until `up` fetches it).

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

export interface NodeConfig {
  outlets: Array<{ name: string; to: string; tls: boolean; relay: string; allow: string }>;
  inlets: Array<{ name: string; from: string; via: string; allow: string }>;
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

/** AI Corp: one outlet, reachable only by identities with the inlet attribute, to the token proxy. */
export function aiCorpNodeConfig(): NodeConfig {
  return {
    outlets: [{ name: PORTAL.relayName, to: TOKEN_PROXY_ADDRESS, tls: false, relay: PORTAL.relayName, allow: PORTAL.inletAttribute }],
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

/** `aoaiEndpoint`: the account's endpoint as ARM reports it, e.g. https://x.openai.azure.com/. */
export function aiCorpCloudConfig(src: WicketSource, ticket: Secret<string>, aoaiEndpoint: string): Secret<string> {
  const origin = new URL(aoaiEndpoint).origin;
  return document({
    write_files: [
      installFile(src),
      agentBootstrap(['aoai-token-proxy.service', 'wicket-agent.service'], []),
      file('/etc/wicket/node.json', JSON.stringify(aiCorpNodeConfig(), null, 2) + '\n'),
      ticketFile(ticket),
      file('/etc/systemd/system/wicket-agent.service', renderTemplate('wicket-agent.service')),
      file(
        '/etc/systemd/system/aoai-token-proxy.service',
        renderTemplate('aoai-token-proxy.service', words({ AOAI_ENDPOINT: origin, TOKEN_PROXY_ADDRESS: TOKEN_PROXY_ADDRESS })),
      ),
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
