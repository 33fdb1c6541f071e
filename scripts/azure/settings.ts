import { execFileSync } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { wicketError } from '../../protocol/errors.js';
import { Secret } from '../../protocol/secret.js';

// Everything `run.sh` reads from the environment, validated once, before any Azure call, so a
// typo fails in a second with WICKET_ERR_AZURE_CONFIG instead of halfway through a deployment.
// scripts/azure/README.md documents each variable.

export const PUBLIC_ARM_ENDPOINT = 'https://management.azure.com';
export const DEFAULT_LOCATION = 'eastus';
export const DEFAULT_VM_SIZE = 'Standard_B2s';
export const DEFAULT_AOAI_SKU = 'GlobalStandard';
export const DEFAULT_AOAI_CAPACITY = 10;

export interface AzureSettings {
  subscriptionId: string | undefined;
  location: string;
  /** ARM base URL without a trailing slash. */
  armEndpoint: string;
  /** OAuth scope for ARM tokens: the endpoint's audience + "/.default". */
  armScope: string;
  /** Static bearer token: honoured only together with AZURE_ARM_ENDPOINT (tests, Azure Stack). */
  staticToken: Secret<string> | undefined;
  /** AZURE_ACCESS_TOKEN was set without AZURE_ARM_ENDPOINT, so it is not used (up says so). */
  staticTokenIgnored: boolean;
  /** One operator address range allowed to SSH to the relay; nothing else gets port 22. */
  adminCidr: string | undefined;
  vmSize: string;
  aoaiSku: string;
  aoaiCapacity: number;
  /** Git URL the VMs clone Wicket from, and the commit/branch/tag they check out. */
  wicketRepo: string | undefined;
  wicketRef: string | undefined;
  /** Where the operator's copy of the relay admin ticket is kept (mode 0700 folder, 0600 file). */
  stateDir: string;
  /** SDK long-running-operation poll interval; unset means the SDK default (tests set it small). */
  pollIntervalMs: number | undefined;
  /** The operator's SSH public key for the relay VM; when unset a throwaway key is generated. */
  adminSshPublicKey: string | undefined;
  /** Principal object id, only so that `plan` can print the names `up` will use. */
  principalHint: string | undefined;
}

export interface SettingsSources {
  env: NodeJS.ProcessEnv;
  /** The subscription `az login` selected, read from the az CLI's local profile (no network). */
  defaultSubscription?: () => string | undefined;
  /** Git facts about this checkout (origin URL and HEAD commit) for the WICKET_REPO/REF defaults. */
  git?: { origin: () => string | undefined; head: () => string | undefined };
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LOCATION = /^[a-z][a-z0-9]{1,40}$/;
const VM_SIZE = /^[A-Za-z0-9_]{3,64}$/;
const SKU = /^[A-Za-z0-9_]{1,64}$/;
// Values that end up inside cloud-init shell scripts: a conservative alphabet, so no quoting
// trick can smuggle a command in through an environment variable.
const GIT_URL = /^(https:\/\/|http:\/\/|git:\/\/|ssh:\/\/)[A-Za-z0-9._~:/@+%-]+$/;
const GIT_REF = /^[A-Za-z0-9._/-]{1,200}$/;
const SSH_PUBLIC_KEY = /^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( [^\n\r]{0,200})?$/;

function configError(detail: string): never {
  throw wicketError('WICKET_ERR_AZURE_CONFIG', detail);
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}

/** Checks an IPv4 CIDR such as 203.0.113.7/32 (the one address allowed to reach the relay's SSH). */
export function parseIpv4Cidr(text: string): string {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  if (!match) configError(`ADMIN_CIDR must be an IPv4 CIDR such as 203.0.113.7/32, got '${text}'`);
  const octets = match.slice(1, 5).map(Number);
  const prefix = Number(match[5]);
  if (octets.some((o) => o > 255) || prefix > 32) configError(`ADMIN_CIDR '${text}' is out of range`);
  if (prefix === 0) configError('ADMIN_CIDR 0.0.0.0/0 would open SSH to the whole internet; name one address, e.g. x.x.x.x/32');
  return text;
}

/** `git@github.com:org/repo.git` -> `https://github.com/org/repo.git`: VMs clone without SSH keys. */
export function httpsCloneUrl(url: string): string {
  const scp = /^git@([A-Za-z0-9.-]+):(.+)$/.exec(url);
  return scp ? `https://${scp[1]}/${scp[2]}` : url;
}

function parseEndpoint(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    configError(`AZURE_ARM_ENDPOINT is not a URL: '${text}'`);
  }
  // The SDK's bearer-token policy refuses plain http, and a token must never travel in clear.
  if (url.protocol !== 'https:') configError(`AZURE_ARM_ENDPOINT must be https://, got '${text}'`);
  return url.origin + url.pathname.replace(/\/+$/, '');
}

export function loadSettings(sources: SettingsSources): AzureSettings {
  const { env } = sources;
  const endpointText = nonEmpty(env.AZURE_ARM_ENDPOINT);
  const armEndpoint = endpointText === undefined ? PUBLIC_ARM_ENDPOINT : parseEndpoint(endpointText);
  const audience = nonEmpty(env.AZURE_ARM_AUDIENCE) ?? armEndpoint;
  const tokenText = nonEmpty(env.AZURE_ACCESS_TOKEN);
  // A static token is a test and sovereign-cloud escape hatch. Against public Azure it is ignored
  // on purpose: DefaultAzureCredential refreshes tokens, a pasted one expires mid-deployment.
  const staticToken = tokenText !== undefined && endpointText !== undefined ? new Secret(tokenText) : undefined;

  const subscriptionId = nonEmpty(env.AZURE_SUBSCRIPTION_ID) ?? sources.defaultSubscription?.();
  if (subscriptionId !== undefined && !GUID.test(subscriptionId)) {
    configError(`AZURE_SUBSCRIPTION_ID must be a GUID, got '${subscriptionId}'`);
  }
  const location = nonEmpty(env.LOCATION) ?? DEFAULT_LOCATION;
  if (!LOCATION.test(location)) configError(`LOCATION must be an Azure region name such as eastus, got '${location}'`);
  const adminCidrText = nonEmpty(env.ADMIN_CIDR);
  const vmSize = nonEmpty(env.VM_SIZE) ?? DEFAULT_VM_SIZE;
  if (!VM_SIZE.test(vmSize)) configError(`VM_SIZE must be a VM size such as Standard_B2s, got '${vmSize}'`);
  const aoaiSku = nonEmpty(env.AOAI_SKU) ?? DEFAULT_AOAI_SKU;
  if (!SKU.test(aoaiSku)) configError(`AOAI_SKU must be a deployment SKU such as GlobalStandard, got '${aoaiSku}'`);
  const capacityText = nonEmpty(env.AOAI_CAPACITY);
  const aoaiCapacity = capacityText === undefined ? DEFAULT_AOAI_CAPACITY : Number(capacityText);
  if (!Number.isInteger(aoaiCapacity) || aoaiCapacity < 1 || aoaiCapacity > 10_000) {
    configError(`AOAI_CAPACITY must be a whole number of thousands of tokens per minute (1..10000), got '${capacityText}'`);
  }

  const explicitRepo = nonEmpty(env.WICKET_REPO);
  const repoText = explicitRepo ?? sources.git?.origin();
  let wicketRepo = repoText === undefined ? undefined : httpsCloneUrl(repoText);
  if (wicketRepo !== undefined && !GIT_URL.test(wicketRepo)) {
    if (explicitRepo !== undefined) configError(`WICKET_REPO must be a git URL the VMs can clone (https://…), got '${wicketRepo}'`);
    // The origin remote is only a default guess: a clone of a clone has a local path there, which
    // no VM can reach. Treat it as unset, so `plan` still prints and `up` asks for WICKET_REPO.
    wicketRepo = undefined;
  }
  const wicketRef = nonEmpty(env.WICKET_REF) ?? sources.git?.head();
  if (wicketRef !== undefined && (!GIT_REF.test(wicketRef) || wicketRef.startsWith('-'))) {
    configError(`WICKET_REF must be a branch, tag or commit, got '${wicketRef}'`);
  }

  const pollText = nonEmpty(env.WICKET_AZURE_POLL_MS);
  const pollIntervalMs = pollText === undefined ? undefined : Number(pollText);
  if (pollIntervalMs !== undefined && (!Number.isInteger(pollIntervalMs) || pollIntervalMs < 1 || pollIntervalMs > 60_000)) {
    configError(`WICKET_AZURE_POLL_MS must be 1..60000 milliseconds, got '${pollText}'`);
  }
  const adminSshPublicKey = nonEmpty(env.ADMIN_SSH_PUBLIC_KEY);
  if (adminSshPublicKey !== undefined && !SSH_PUBLIC_KEY.test(adminSshPublicKey)) {
    configError('ADMIN_SSH_PUBLIC_KEY must be one OpenSSH public key line (ssh-ed25519 AAAA… or ssh-rsa AAAA…)');
  }
  const principalHint = nonEmpty(env.AZURE_PRINCIPAL_ID);
  if (principalHint !== undefined && !GUID.test(principalHint)) {
    configError(`AZURE_PRINCIPAL_ID must be an object id (GUID), got '${principalHint}'`);
  }

  return {
    subscriptionId: subscriptionId?.toLowerCase(),
    location,
    armEndpoint,
    armScope: `${audience.replace(/\/+$/, '')}/.default`,
    staticToken,
    staticTokenIgnored: tokenText !== undefined && staticToken === undefined,
    adminCidr: adminCidrText === undefined ? undefined : parseIpv4Cidr(adminCidrText),
    vmSize,
    aoaiSku,
    aoaiCapacity,
    wicketRepo,
    wicketRef,
    stateDir: nonEmpty(env.WICKET_AZURE_STATE_DIR) ?? join(homedir(), '.wicket-azure'),
    pollIntervalMs,
    adminSshPublicKey,
    principalHint: principalHint?.toLowerCase(),
  };
}

/** Settings that `up` and `cleanup` cannot do without; `plan` prints what it has. */
export function requireSubscription(settings: AzureSettings): string {
  if (settings.subscriptionId === undefined) {
    configError('no subscription: set AZURE_SUBSCRIPTION_ID, or sign in with `az login` so the az CLI profile names one');
  }
  return settings.subscriptionId;
}

export function requireWicketSource(settings: AzureSettings): { repo: string; ref: string } {
  if (settings.wicketRepo === undefined) {
    configError('no WICKET_REPO: set it to a git URL the VMs can clone (this checkout has no cloneable origin remote)');
  }
  if (settings.wicketRef === undefined) configError('no WICKET_REF: set it to the branch, tag or commit the VMs should run');
  return { repo: settings.wicketRepo, ref: settings.wicketRef };
}

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

function quietCommand(cmd: string, args: string[]): string | undefined {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    return nonEmpty(out);
  } catch {
    return undefined;
  }
}

/** The real sources: the process environment, the az CLI's local profile, this git checkout. */
export function processSources(env: NodeJS.ProcessEnv = process.env): SettingsSources {
  return {
    env,
    // `az account show` reads ~/.azure/azureProfile.json; it makes no network call.
    defaultSubscription: () => quietCommand('az', ['account', 'show', '--query', 'id', '--output', 'tsv']),
    git: {
      origin: () => quietCommand('git', ['-C', REPO_ROOT, 'remote', 'get-url', 'origin']),
      head: () => quietCommand('git', ['-C', REPO_ROOT, 'rev-parse', 'HEAD']),
    },
  };
}
