import {
  AzureCliCredential,
  AzureDeveloperCliCredential,
  AzurePowerShellCredential,
  ChainedTokenCredential,
  DefaultAzureCredential,
  EnvironmentCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
  type AccessToken,
  type ManagedIdentityCredentialClientIdOptions,
  type TokenCredential,
} from '@azure/identity';
import type { Logger } from 'pino';
import { wicketError, type WicketError } from '../../protocol/errors.js';
import {
  GATEWAY_ENTRA_FETCH_TIMEOUT_MS,
  GATEWAY_ENTRA_REFRESH_BEFORE_MS,
  GATEWAY_ENTRA_RETRY_MAX_MS,
  GATEWAY_ENTRA_RETRY_MIN_MS,
  GATEWAY_ENTRA_VALIDITY_MARGIN_FRACTION,
  GATEWAY_ENTRA_VALIDITY_MARGIN_MS,
} from '../../protocol/limits.js';
import { Secret } from '../../protocol/secret.js';
import { Backoff } from '../backoff.js';

// The Entra token an outlet adds for keyless callers (DESIGN.md "The Azure OpenAI gateway").
//
// @azure/identity is asked as rarely as possible and never on a request's critical path while a
// token is valid: the token is held here and refreshed in the background before it expires, so a
// slow or failing identity endpoint costs requests nothing until the token itself runs out. The
// library's own cache cannot do this for us, and it shapes how a refresh must ask:
// - MSAL serves a managed-identity token from its cache only while more than 5 minutes are left,
//   so short tokens are fetched again on every getToken, and a refresh asked for right at the
//   5-minute mark may get the held token back;
// - past a long token's "refresh after" (half of a day-long token's life), MSAL fetches a new
//   token but still returns the cached one that one time.
// So an answer carrying the token already held is not a refresh: it is asked again shortly, and
// only a run of them counts as a failure.

/** Azure OpenAI's audience; every Entra token for a backend is for this scope. */
export const COGNITIVE_SERVICES_SCOPE = 'https://cognitiveservices.azure.com/.default';

/** The CLI credentials run a process; one that hangs must not eat the whole fetch timeout. */
const CLI_PROCESS_TIMEOUT_MS = 10_000;
/** The current token handed back this many times in a row is no longer a cache hit but a refresh that fails quietly. */
const MAX_SAME_TOKEN_ANSWERS = 3;
/** A token with less than this left when it arrives is useless (it would expire in flight). */
const MIN_USABLE_LIFETIME_MS = 1_000;
/** Library error messages list every credential tried, with links; logs and errors get this much. */
const MAX_LOGGED_MESSAGE = 1_000;
const MAX_ERROR_MESSAGE = 400;
/** setTimeout's ceiling (~24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Managed identity first (the outlet normally runs on an Azure VM, App Service or AKS), then the
 * rest of DefaultAzureCredential's chain: environment service principal, workload identity, and
 * the developer sign-ins (az, azd, PowerShell) for an outlet on a laptop. AZURE_TOKEN_CREDENTIALS,
 * Azure's documented switch to narrow that chain ("prod", "dev", or one credential's name), is
 * honoured by handing it to DefaultAzureCredential, which implements it.
 */
export function entraCredentialChain(clientId: string | undefined): TokenCredential {
  if (process.env.AZURE_TOKEN_CREDENTIALS) {
    return new DefaultAzureCredential({ managedIdentityClientId: clientId, processTimeoutInMs: CLI_PROCESS_TIMEOUT_MS });
  }
  const managedIdentity: ManagedIdentityCredentialClientIdOptions & { sendProbeRequest: boolean } = {
    clientId,
    // Off an Azure host, IMDS (169.254.169.254) may not answer at all: a 1 s probe first, as
    // DefaultAzureCredential does, lets the chain move on instead of waiting for a connect timeout.
    sendProbeRequest: true,
    // The library retries 5xx and refused connections itself (3 times, up to ~7 s); we retry with
    // our own backoff, so keep its share of the fetch timeout small. (MSAL keeps the HTTP client of
    // the first ManagedIdentityCredential in the process, so these hold if the gateway's is first.)
    retryOptions: { maxRetries: 2, retryDelayInMs: 500, maxRetryDelayInMs: 2_000 },
  };
  const credentials: TokenCredential[] = [new ManagedIdentityCredential(managedIdentity), new EnvironmentCredential()];
  try {
    // Throws when AZURE_FEDERATED_TOKEN_FILE / AZURE_TENANT_ID are absent: then it has no place here.
    credentials.push(new WorkloadIdentityCredential(clientId === undefined ? {} : { clientId }));
  } catch {
    // Not a workload-identity pod.
  }
  const cli = { processTimeoutInMs: CLI_PROCESS_TIMEOUT_MS };
  credentials.push(new AzureCliCredential(cli), new AzureDeveloperCliCredential(cli), new AzurePowerShellCredential(cli));
  return new ChainedTokenCredential(...credentials);
}

function closedError(): WicketError {
  return wicketError('WICKET_ERR_BACKEND_AUTH', 'the backend credential is closed (the outlet is stopping)');
}

export type CredentialState = 'ready' | 'fetching' | 'refreshing' | 'failing' | 'unavailable';

export interface EntraStatus {
  state: CredentialState;
  expiresAt?: string;
  lastError?: { code: string; message: string; at: string };
  refreshes: number;
}

export interface EntraTokenOptions {
  readonly credential: TokenCredential;
  readonly logger: Logger;
  readonly now: () => number;
  /** For error messages: the user-assigned identity asked for, if any. */
  readonly clientId?: string;
  readonly fetchTimeoutMs?: number;
}

interface HeldToken {
  readonly value: Secret<string>;
  readonly expiresAt: number;
  /** When the background refresh is due. */
  readonly refreshAt: number;
  /** The token counts as valid until expiresAt - margin. */
  readonly margin: number;
}

/**
 * One backend's Entra token: fetched at creation, held, refreshed in the background, one fetch
 * in flight at a time. The state reported by status() is derived, not stored: time alone turns a
 * held token from usable to expired, with no event to move a state machine on.
 */
export class EntraToken {
  readonly #credential: TokenCredential;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #clientId: string | undefined;
  readonly #fetchTimeoutMs: number;
  readonly #backoff = new Backoff({ minDelayMs: GATEWAY_ENTRA_RETRY_MIN_MS, maxDelayMs: GATEWAY_ENTRA_RETRY_MAX_MS });
  #held: HeldToken | undefined;
  #inflight: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Neither the timer nor a request starts a background fetch before this (refresh due, or backoff). */
  #nextAttemptAt = 0;
  #lastAttemptEndedAt = Number.NEGATIVE_INFINITY;
  #lastError: { message: string; at: number } | undefined;
  /** Inside a run of failures: warned once at its start, told once at its end. */
  #failures = 0;
  /** Refreshes in a row that returned the token already held. */
  #sameTokenAnswers = 0;
  #refreshes = 0;
  #closed = false;

  constructor(o: EntraTokenOptions) {
    this.#credential = o.credential;
    this.#log = o.logger;
    this.#now = o.now;
    this.#clientId = o.clientId;
    this.#fetchTimeoutMs = o.fetchTimeoutMs ?? GATEWAY_ENTRA_FETCH_TIMEOUT_MS;
    // Fetch now, so the first request does not wait and `agent status` shows the outcome early.
    void this.#attempt();
  }

  /** `Bearer …` for one request; throws WICKET_ERR_BACKEND_AUTH when no valid token can be had in time. */
  async bearer(): Promise<string> {
    if (this.#closed) throw closedError();
    const held = this.#valid();
    if (held !== undefined) {
      // The timer normally starts refreshes; this catches a late timer (a busy event loop).
      if (this.#now() >= this.#nextAttemptAt && this.#inflight === undefined) void this.#attempt();
      return `Bearer ${held.value.reveal()}`;
    }
    // No usable token: wait for one fetch, unless one just failed (a burst of requests must not
    // turn into a burst of fetches; the background retry goes on regardless).
    if (this.#inflight === undefined && this.#now() - this.#lastAttemptEndedAt < GATEWAY_ENTRA_RETRY_MIN_MS) throw this.#error();
    await this.#attempt();
    if (this.#closed) throw closedError();
    const fresh = this.#valid();
    if (fresh === undefined) throw this.#error();
    return `Bearer ${fresh.value.reveal()}`;
  }

  status(): EntraStatus {
    const held = this.#valid();
    const now = this.#now();
    let state: CredentialState;
    if (this.#closed) state = 'unavailable';
    else if (held === undefined) state = this.#inflight === undefined ? 'unavailable' : 'fetching';
    else if (this.#failures > 0) state = 'failing';
    else state = this.#inflight !== undefined || now >= held.refreshAt ? 'refreshing' : 'ready';
    const status: EntraStatus = { state, refreshes: this.#refreshes };
    if (this.#held !== undefined) status.expiresAt = new Date(this.#held.expiresAt).toISOString();
    if (this.#lastError !== undefined) {
      status.lastError = { code: 'WICKET_ERR_BACKEND_AUTH', message: this.#lastError.message, at: new Date(this.#lastError.at).toISOString() };
    }
    return status;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#held = undefined;
  }

  #valid(): HeldToken | undefined {
    const held = this.#held;
    return held !== undefined && held.expiresAt - this.#now() > held.margin ? held : undefined;
  }

  /** Single flight: every caller while a fetch runs shares it. */
  #attempt(): Promise<void> {
    if (this.#inflight !== undefined) return this.#inflight;
    clearTimeout(this.#timer);
    const flight = this.#fetchOnce().finally(() => {
      if (this.#inflight === flight) this.#inflight = undefined;
    });
    this.#inflight = flight;
    return flight;
  }

  async #fetchOnce(): Promise<void> {
    let token: AccessToken | null;
    try {
      token = await this.#getToken();
    } catch (err) {
      this.#failed(err);
      return;
    } finally {
      this.#lastAttemptEndedAt = this.#now();
    }
    if (this.#closed) return;
    const now = this.#now();
    if (token === null || typeof token.token !== 'string' || token.token.length === 0 || !Number.isFinite(token.expiresOnTimestamp)) {
      this.#failed(new Error('the credential answered without a token'));
      return;
    }
    const previous = this.#held;
    if (previous !== undefined && token.token === previous.value.reveal()) {
      // The library served the token we hold from its cache (see the top of this file). MSAL's
      // proactive refresh does that once by design; more often, its own fetch is failing.
      this.#sameTokenAnswers++;
      if (this.#valid() !== undefined && this.#sameTokenAnswers < MAX_SAME_TOKEN_ANSWERS) {
        const delay = this.#backoff.next();
        this.#log.debug({ retryInMs: delay }, 'Entra refresh returned the current token again; asking again later');
        this.#schedule(delay);
      } else {
        this.#failed(new Error(`the credential keeps returning the token that expires at ${new Date(previous.expiresAt).toISOString()} instead of a new one`));
      }
      return;
    }
    const lifetime = token.expiresOnTimestamp - now;
    if (lifetime <= MIN_USABLE_LIFETIME_MS) {
      this.#failed(new Error(`the credential returned a token that expires in ${Math.round(lifetime)} ms`));
      return;
    }
    let refreshAt = token.expiresOnTimestamp - Math.min(GATEWAY_ENTRA_REFRESH_BEFORE_MS, lifetime / 2);
    // Managed identity tokens of more than 2 h carry a "refresh after" (half their life): heeding
    // it leaves hours, not minutes, to ride out an identity-endpoint outage.
    const refreshAfter = token.refreshAfterTimestamp;
    if (refreshAfter !== undefined && refreshAfter > now && refreshAfter < refreshAt) refreshAt = refreshAfter;
    const margin = Math.min(GATEWAY_ENTRA_VALIDITY_MARGIN_MS, lifetime * GATEWAY_ENTRA_VALIDITY_MARGIN_FRACTION);
    this.#held = { value: new Secret(token.token), expiresAt: token.expiresOnTimestamp, refreshAt, margin };
    if (previous !== undefined) this.#refreshes++;
    this.#sameTokenAnswers = 0;
    this.#backoff.reset();
    const expiresAt = new Date(token.expiresOnTimestamp).toISOString();
    if (this.#failures > 0) {
      this.#log.info({ expiresAt, failedAttempts: this.#failures }, 'Entra token obtained again after failures');
      this.#failures = 0;
    } else if (previous === undefined) {
      this.#log.info({ expiresAt }, 'Entra token obtained for the backend');
    } else {
      this.#log.debug({ expiresAt, refreshes: this.#refreshes }, 'Entra token refreshed');
    }
    this.#schedule(refreshAt - now);
  }

  /** The credential's getToken, bounded: some sources ignore the abort signal, so it is raced too. */
  async #getToken(): Promise<AccessToken | null> {
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new Error(`no answer from the credential chain within ${this.#fetchTimeoutMs} ms`));
      }, this.#fetchTimeoutMs);
    });
    try {
      const asked = (async () => this.#credential.getToken(COGNITIVE_SERVICES_SCOPE, { abortSignal: abort.signal }))();
      return await Promise.race([asked, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #failed(err: unknown): void {
    if (this.#closed) return;
    const message = this.#describe(err);
    const now = this.#now();
    this.#lastError = { message, at: now };
    const delay = this.#backoff.next();
    this.#schedule(delay);
    const usableUntil = this.#valid() === undefined ? undefined : new Date(this.#held?.expiresAt ?? now).toISOString();
    this.#failures++;
    const fields = { code: 'WICKET_ERR_BACKEND_AUTH', reason: message, retryInMs: delay, usableUntil };
    if (this.#failures > 1) {
      this.#log.debug(fields, 'Entra token fetch failed again');
    } else if (usableUntil !== undefined) {
      this.#log.warn(fields, 'Entra token refresh failed; requests keep the current token until it expires; retrying with backoff');
    } else {
      this.#log.warn(fields, 'no Entra token for the backend; its requests fail with WICKET_ERR_BACKEND_AUTH until one is obtained; retrying with backoff');
    }
  }

  #schedule(delay: number): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    const wait = Math.min(Math.max(0, Math.ceil(delay)), MAX_TIMER_MS);
    this.#nextAttemptAt = this.#now() + wait;
    this.#timer = setTimeout(() => void this.#attempt(), wait);
    // The outlet's sockets keep the process alive, not a refresh timer.
    this.#timer.unref();
  }

  /** One line, bounded, and never the token (no error should carry it, but a credential is foreign code). */
  #describe(err: unknown): string {
    let text = err instanceof Error ? err.message : String(err);
    const held = this.#held?.value.reveal();
    if (held !== undefined && held.length > 0) text = text.split(held).join('[REDACTED]');
    return text.replace(/\s*\n\s*/g, ' | ').replace(/\s+/g, ' ').trim().slice(0, MAX_LOGGED_MESSAGE);
  }

  #error(): WicketError {
    const cause = this.#lastError?.message.slice(0, MAX_ERROR_MESSAGE) ?? 'no token yet';
    const identity = this.#clientId === undefined ? 'a managed identity' : `the managed identity with client id ${this.#clientId}`;
    return wicketError(
      'WICKET_ERR_BACKEND_AUTH',
      `no valid Entra token for ${COGNITIVE_SERVICES_SCOPE}: ${cause}. Check that the outlet host has ${identity} and that its identity endpoint (IDENTITY_ENDPOINT or IMDS) answers, or run \`az login\` on a developer machine`,
    );
  }
}
