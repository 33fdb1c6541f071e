import type { Logger } from 'pino';
import { asWicketError } from '../../protocol/errors.js';
import type { Identity } from '../../protocol/identity.js';
import { CREDENTIAL_REQUEST_KEEP_MS, CREDENTIAL_SIGN_BATCH, CREDENTIAL_SIGNER_SWEEP_MS, CREDENTIAL_TTL_MS } from '../../protocol/limits.js';
import { answerRequest } from './credential-issuer.js';
import type { CredentialQueue, PendingCredentialRequest, SignerDecision } from './credential-queue.js';
import { Endorser } from './endorsement.js';

// The signing side of the credential queue (credential-queue.ts), run by every process that holds
// the project key on a shared store: relays started with it, and `relay authority`. It answers
// each request it hears of by NOTIFY, and sweeps the queue every CREDENTIAL_SIGNER_SWEEP_MS as the
// backstop for a NOTIFY lost while its listening connection was down. Sweeps run one at a time;
// a NOTIFY arriving during one asks for another right after it. What to sign is answerRequest's
// rule (credential-issuer.ts); refusals are logged, since only someone who can write the store can
// have queued them.

export interface CredentialSignerOptions {
  readonly identity: Identity;
  readonly queue: CredentialQueue;
  readonly logger: Logger;
  readonly now: () => number;
  readonly credentialTtlMs?: number;
  readonly sweepMs?: number;
}

export class CredentialSigner {
  readonly #o: CredentialSignerOptions;
  readonly #ttlMs: number;
  readonly #endorser: Endorser;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  /** Whether the last sweep failed: warn once per outage, and say when it works again. */
  #failing = false;
  #signed = 0;
  /** Ticket grants endorsed: tickets, not credentials, so apart from #signed. */
  #endorsed = 0;
  #refused = 0;

  constructor(o: CredentialSignerOptions) {
    this.#o = o;
    this.#ttlMs = o.credentialTtlMs ?? CREDENTIAL_TTL_MS;
    this.#endorser = new Endorser(o.identity);
  }

  /** Credentials signed, ticket grants endorsed and requests refused since start (logs and tests). */
  get counts(): { signed: number; endorsed: number; refused: number } {
    return { signed: this.#signed, endorsed: this.#endorsed, refused: this.#refused };
  }

  start(): void {
    this.#o.queue.onRequests(() => this.#kick());
    this.#timer = setInterval(() => this.#kick(), this.#o.sweepMs ?? CREDENTIAL_SIGNER_SWEEP_MS);
    this.#timer.unref();
    this.#kick();
  }

  /** Stops sweeping and waits for a sweep under way (its transaction commits or rolls back). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#sweeping;
  }

  #kick(): void {
    if (this.#stopped) return;
    if (this.#sweeping !== undefined) {
      this.#again = true;
      return;
    }
    this.#sweeping = this.#sweep().finally(() => (this.#sweeping = undefined));
  }

  async #sweep(): Promise<void> {
    do {
      this.#again = false;
      const now = this.#o.now();
      let answered: number;
      try {
        answered = await this.#o.queue.answerPending((request) => answerRequest(this.#o.identity, this.#endorser, request, now, this.#ttlMs), {
          now,
          keepMs: CREDENTIAL_REQUEST_KEEP_MS,
          limit: CREDENTIAL_SIGN_BATCH,
          answered: (request, answer) => this.#count(request, answer),
        });
      } catch (err) {
        if (!this.#failing) this.#o.logger.warn({ code: asWicketError(err).code, reason: asWicketError(err).message }, 'cannot answer credential requests; retrying');
        this.#failing = true;
        return;
      }
      if (this.#failing) this.#o.logger.info('answering credential requests again');
      this.#failing = false;
      // A full batch may have left more behind it.
      if (answered === CREDENTIAL_SIGN_BATCH) this.#again = true;
    } while (this.#again && !this.#stopped);
  }

  /** Counts and logs an answer as the queue wrote it (a grant beaten to its ticket by another signer is a refusal). */
  #count(request: PendingCredentialRequest, answer: SignerDecision): void {
    // The subject is shown cut and quoted: the row may hold anything.
    const fields = { requestId: request.requestId, kind: request.kind.slice(0, 16), subject: JSON.stringify(request.subject.slice(0, 80)), requestedBy: request.requestedBy.slice(0, 32) };
    if ('refused' in answer) {
      this.#refused++;
      this.#o.logger.warn({ ...fields, code: answer.refused }, 'credential request refused');
    } else if ('ticketExpiresAt' in answer) {
      this.#endorsed++;
      this.#o.logger.info({ ...fields, ticketId: answer.endorse?.subject, expiresAt: answer.ticketExpiresAt }, 'ticket grant endorsed');
    } else {
      this.#signed++;
      this.#o.logger.debug({ ...fields, endorsed: answer.endorse !== undefined }, 'credential signed');
    }
  }
}
