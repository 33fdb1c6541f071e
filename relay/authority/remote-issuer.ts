import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { verifyCredential, type Credential } from '../../protocol/credential.js';
import { ERROR_CODES, wicketError, type ErrorCode } from '../../protocol/errors.js';
import { identifierOf, type Identifier } from '../../protocol/identity.js';
import { CREDENTIAL_ANSWER_POLL_MS, CREDENTIAL_ANSWER_TIMEOUT_MS } from '../../protocol/limits.js';
import { checkRelaySubject, type CredentialIssuer, type CredentialSubject } from './credential-issuer.js';
import type { CredentialAnswer, CredentialQueue, CredentialRequest, QueuedGrant } from './credential-queue.js';

// A forwarding relay's credentials: it holds only the project's public key, so it writes a
// request into the store's credential queue and waits, bounded by CREDENTIAL_ANSWER_TIMEOUT_MS,
// for a signer to answer (credential-queue.ts). It learns of the answer by NOTIFY, and re-reads
// its open requests every CREDENTIAL_ANSWER_POLL_MS in case a NOTIFY was lost. What comes back is
// verified like any credential (the project key, the subject, the validity window) before use:
// the queue is not trusted to hold only what a signer wrote.

interface Waiter {
  readonly resolve: (answer: CredentialAnswer) => void;
  readonly timer: NodeJS.Timeout;
}

export interface RemoteIssuerOptions {
  readonly queue: CredentialQueue;
  /** The project's public key, from the store's `project` row. */
  readonly authorityPublicKey: Buffer;
  readonly logger: Logger;
  readonly now: () => number;
  readonly timeoutMs?: number;
}

/** A refusal code read from the store: one of ours, else (a hostile or garbled row) INTERNAL. */
function refusalCode(text: string): ErrorCode {
  return Object.hasOwn(ERROR_CODES, text) ? (text as ErrorCode) : 'WICKET_ERR_INTERNAL';
}

export class RemoteIssuer implements CredentialIssuer {
  readonly role = 'forwarding';
  /** Random per process: which relay asked, in the queue's rows and the signer's logs. */
  readonly requesterId = randomBytes(8).toString('hex');
  readonly #o: RemoteIssuerOptions;
  readonly #timeoutMs: number;
  readonly #waiting = new Map<number, Waiter>();
  #poll: NodeJS.Timeout | undefined;

  constructor(o: RemoteIssuerOptions) {
    this.#o = o;
    this.#timeoutMs = o.timeoutMs ?? CREDENTIAL_ANSWER_TIMEOUT_MS;
    o.queue.onAnswers((id) => {
      if (id === undefined) this.#checkAll();
      else if (this.#waiting.has(id)) void this.#check(id);
    });
  }

  async issue(subject: CredentialSubject): Promise<Credential> {
    let identifier: Identifier;
    if (subject.kind === 'member') identifier = subject.member.identifier;
    else {
      checkRelaySubject(subject.publicKey, subject.relayId);
      identifier = identifierOf(subject.publicKey);
    }
    const answer = await this.#ask({
      kind: subject.kind,
      subject: identifier,
      ...(subject.kind === 'relay' ? { publicKey: subject.publicKey, relayId: subject.relayId } : {}),
      ...(subject.kind === 'member' && subject.evidence !== undefined ? { evidence: subject.evidence } : {}),
      requestedBy: this.requesterId,
    });
    if (!('credential' in answer)) throw wicketError('WICKET_ERR_INTERNAL', `the answer to a credential request for ${identifier} carries no credential`);
    return verifyCredential(answer.credential, { authorityPublicKey: this.#o.authorityPublicKey, subject: identifier, now: this.#o.now() });
  }

  /**
   * An admin's ticket grant, endorsed by a signer (grant-rule.ts): the expiry the answer row gives.
   * The row is the store's, so the caller checks it is one the signer could have fixed
   * (ticket-maker.ts, checkEndorsedExpiry) before recording it.
   */
  async endorseGrant(admin: string, grant: QueuedGrant): Promise<number> {
    const answer = await this.#ask({ kind: 'ticket', subject: admin, grant, requestedBy: this.requesterId });
    if (!('ticketExpiresAt' in answer) || !Number.isSafeInteger(answer.ticketExpiresAt)) {
      throw wicketError('WICKET_ERR_INTERNAL', `the answer to ${admin}'s ticket grant carries no expiry`);
    }
    return answer.ticketExpiresAt;
  }

  /** Queues `request`, waits for its answer and forgets the row; a refusal throws its code. */
  async #ask(request: CredentialRequest): Promise<Exclude<CredentialAnswer, { refused: string }>> {
    const queue = this.#o.queue;
    const id = await queue.request(request);
    const what = request.kind === 'ticket' ? `a ticket grant by ${request.subject}` : `a credential for ${request.subject}`;
    try {
      const answer = await this.#wait(id, request.kind === 'ticket' ? `the ticket grant of ${request.subject}` : request.subject);
      if ('refused' in answer) {
        const code = refusalCode(answer.refused);
        throw wicketError(code, `the project authority refused ${what} (${code})`);
      }
      return answer;
    } finally {
      // Answered or given up on: nobody reads the row again.
      queue.forget(id).catch((err: unknown) => this.#o.logger.debug({ err, requestId: id }, 'could not delete a credential request; a signer prunes it'));
    }
  }

  /** `forWhom`: the subject, as the timeout's message names it. */
  #wait(id: number, forWhom: string): Promise<CredentialAnswer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#settle(id);
        reject(
          wicketError(
            'WICKET_ERR_AUTHORITY_UNAVAILABLE',
            `no signer answered credential request ${id} for ${forWhom} within ${this.#timeoutMs} ms (this relay forwards only: start \`relay authority\` or a relay with the project key on the same store)`,
          ),
        );
      }, this.#timeoutMs);
      this.#waiting.set(id, { resolve, timer });
      this.#poll ??= setInterval(() => this.#checkAll(), CREDENTIAL_ANSWER_POLL_MS).unref();
    });
  }

  #settle(id: number): Waiter | undefined {
    const waiter = this.#waiting.get(id);
    if (waiter === undefined) return undefined;
    clearTimeout(waiter.timer);
    this.#waiting.delete(id);
    if (this.#waiting.size === 0) {
      clearInterval(this.#poll);
      this.#poll = undefined;
    }
    return waiter;
  }

  #checkAll(): void {
    for (const id of this.#waiting.keys()) void this.#check(id);
  }

  async #check(id: number): Promise<void> {
    let answer: CredentialAnswer | undefined;
    try {
      answer = await this.#o.queue.answerOf(id);
    } catch (err) {
      // The store is away: the next poll tries again, and the deadline still holds.
      this.#o.logger.debug({ err, requestId: id }, 'could not read a credential answer');
      return;
    }
    if (answer !== undefined) this.#settle(id)?.resolve(answer);
  }
}
