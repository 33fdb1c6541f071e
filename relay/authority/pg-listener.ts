import type pg from 'pg';
import type { Logger } from 'pino';
import { STORE_LISTEN_RETRY_MAX_MS } from '../../protocol/limits.js';
import { storeFailure } from './pg-errors.js';
import type { StoreChangeFeed } from './store.js';

// The one connection each relay keeps LISTENing for what other processes commit: revocation
// events made by any relay or offline command (PgStore NOTIFYs inside the revoking transaction),
// other relays' served names changing (mesh routing, relay/mesh/name-directory.ts), and the
// credential queue's requests and answers (pg-credential-queue.ts). pg.Pool cannot do
// this: a LISTEN belongs to one session. When the connection drops (PostgreSQL restarted, network cut)
// it reconnects after 100 ms, doubling up to STORE_LISTEN_RETRY_MAX_MS, and on every (re)connect
// tells its subscribers to re-read: notifications sent while it was away are lost. Revocation's
// periodic re-read (STORE_REREAD_INTERVAL_MS) covers a connection that died without a word.

const FIRST_RETRY_MS = 100;

/** `payload` is the NOTIFY payload; undefined after a (re)connect, when anything may have been missed. */
export type ChannelListener = (payload: string | undefined) => void;

type State = { readonly name: 'idle' } | { readonly name: 'connecting' } | { readonly name: 'listening'; readonly client: pg.Client } | { readonly name: 'waiting'; readonly timer: NodeJS.Timeout } | { readonly name: 'closed' };

export class StoreListener implements StoreChangeFeed {
  #state: State = { name: 'idle' };
  #retryMs = FIRST_RETRY_MS;
  #problem: string | undefined = 'not connected yet';
  readonly #subscribers = new Map<string, ChannelListener[]>();

  /** `channels`: every channel LISTENed on; the first is the revocation channel, the second the served names'. */
  constructor(
    private readonly makeClient: () => pg.Client,
    private readonly channels: readonly [revocations: string, servedNames: string, ...others: string[]],
    private readonly shown: string,
    private readonly logger: Logger,
  ) {
    for (const channel of channels) this.#subscribers.set(channel, []);
  }

  onRevocationEvents(listener: () => void): void {
    this.on(this.channels[0], () => listener());
  }

  onServedNames(listener: () => void): void {
    this.on(this.channels[1], () => listener());
  }

  on(channel: string, listener: ChannelListener): void {
    const subscribers = this.#subscribers.get(channel);
    if (subscribers === undefined) throw new Error(`not listening on ${channel}`);
    subscribers.push(listener);
  }

  problem(): string | undefined {
    return this.#problem;
  }

  /** The first connection: its failure is the caller's (the relay does not start without it). */
  async start(): Promise<void> {
    if (!(await this.#connect())) throw storeFailure('listening for revocations', new Error(this.#problem ?? 'Connection ended'), this.shown);
  }

  async close(): Promise<void> {
    const state = this.#state;
    this.#state = { name: 'closed' };
    if (state.name === 'waiting') clearTimeout(state.timer);
    if (state.name === 'listening') await state.client.end().catch(() => undefined);
  }

  async #connect(): Promise<boolean> {
    if (this.#state.name === 'closed') return false;
    this.#state = { name: 'connecting' };
    const client = this.makeClient();
    let lost = false;
    const onLost = (err?: Error): void => {
      if (lost) return;
      lost = true;
      void client.end().catch(() => undefined);
      if (this.#state.name === 'listening' && this.#state.client === client) this.#retry(err);
    };
    client.on('error', (err) => onLost(err));
    client.on('end', () => onLost());
    client.on('notification', (message) => this.#tell(message.channel, message.payload));
    try {
      await client.connect();
      for (const channel of this.channels) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      lost = true;
      await client.end().catch(() => undefined);
      this.#problem = storeFailure('listening for revocations', err, this.shown).message;
      if (!this.#isClosed()) this.#retry(err as Error, true);
      return false;
    }
    if (this.#isClosed() || lost) {
      await client.end().catch(() => undefined);
      return false;
    }
    if (this.#problem !== 'not connected yet') this.logger.info({ store: this.shown }, 'listening for revocations again');
    this.#state = { name: 'listening', client };
    this.#problem = undefined;
    this.#retryMs = FIRST_RETRY_MS;
    // Whatever was notified while no connection listened must be read now.
    for (const channel of this.channels) this.#tell(channel, undefined);
    return true;
  }

  /** A method, not an inline test: TypeScript would keep #state narrowed across the awaits. */
  #isClosed(): boolean {
    return this.#state.name === 'closed';
  }

  #retry(err: Error | undefined, quiet = false): void {
    if (this.#state.name === 'closed') return;
    this.#problem = storeFailure('listening for revocations', err ?? new Error('Connection ended'), this.shown).message;
    if (!quiet) this.logger.warn({ store: this.shown, reason: this.#problem }, 'revocation listener lost its connection; reconnecting');
    const delay = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, STORE_LISTEN_RETRY_MAX_MS);
    const timer = setTimeout(() => void this.#connect(), delay);
    timer.unref();
    this.#state = { name: 'waiting', timer };
  }

  #tell(channel: string, payload: string | undefined): void {
    for (const subscriber of this.#subscribers.get(channel) ?? []) subscriber(payload);
  }
}
