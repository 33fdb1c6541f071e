// Session credit (protocol/README.md, "Session credit"): one window for the DATA of all streams
// together, beside each stream's own (window.ts), as HTTP/2's connection window and QUIC's
// MAX_DATA. A stream's window bounds what one stream holds; the session window bounds what the
// whole session holds, so the data a peer can make us keep no longer grows with the stream count.
//
// Receiving, all streams together (SessionReceiveWindow):
//   allowance   = credit the peer still holds, as far as we have granted it
//   held        = received and not yet released
//   unannounced = released, credit not yet returned
//   allowance + held + unannounced = size                      (the invariant)
// A byte is released when it leaves the session's hands: emitted to a reader, dropped with its
// stream (reset, closed or aborted while holding data), or received for a stream already gone.
// Credit goes back in one WINDOW(0) once a quarter of the window is unannounced (quic-go's
// threshold: the peer keeps at least three quarters in hand, and updates stay one 9-byte frame per
// quarter window), or sooner once the unannounced credit is at least what the peer has left, so
// data held by stalled streams cannot keep the other streams waiting for credit we could return.
//
// Compatibility: a build before session credit refuses a WINDOW on stream 0 (FRAME_MALFORMED) and
// never sends one. So each side's first frame is SESSION_HELLO, and a side announces its window,
// WINDOW(0, size), only to a peer whose first frame was the hello. A peer whose first frame is
// anything else predates session credit: it is never told of a window, and we give its credit
// back to ourselves as bytes are released, so against it the window bounds what we hold
// (held <= size) rather than what it may send. Receivers always enforce: a peer cannot escape the
// bound by skipping the hello. MUX_SESSION_RECEIVE_WINDOW is sized so an older peer within its own
// limits never trips it.
//
// Sending (SessionSendCredit): until we know better we assume the peer's window is what ours is
// (alike by default), so the first round trip cannot overrun it, however many streams burst at
// once. The peer's first frame settles it: no hello, an older build, which never limits us; with
// the hello, its first WINDOW(0) grants its whole window counted from the session's start (bytes
// sent before it arrived are taken off), and later WINDOW(0)s add to it.

import { wicketError } from '../errors.js';
import { Lifecycle, type Transitions } from '../lifecycle.js';

/**
 * What we tell the peer about our window: nothing yet (its first frame not seen), nothing ever
 * (legacy: it predates session credit), the announcement is owed (it said hello), announced.
 */
export type ReceiveCreditState = 'unknown' | 'legacy' | 'owed' | 'announced';

export const RECEIVE_CREDIT_TRANSITIONS: Transitions<ReceiveCreditState> = {
  unknown: ['legacy', 'owed'],
  owed: ['announced'],
  legacy: [],
  announced: [],
};

/**
 * What limits what we send: a window assumed equal to ours (the peer's first frame not seen, or
 * it said hello and its announcement is on the way), none (an older peer), or the one it announced.
 */
export type SendCreditState = 'assumed' | 'unlimited' | 'limited';

export const SEND_CREDIT_TRANSITIONS: Transitions<SendCreditState> = {
  assumed: ['unlimited', 'limited'],
  // Lenient: an older build never sends WINDOW(0); if a peer that skipped the hello does, it only limits us.
  unlimited: ['limited'],
  limited: [],
};

/** Largest credit a u32 WINDOW value can describe. */
const MAX_CREDIT = 0xffff_ffff;

export class SessionReceiveWindow {
  readonly #state = new Lifecycle<ReceiveCreditState>('mux session receive credit', RECEIVE_CREDIT_TRANSITIONS, 'unknown');
  #allowance: number;
  #unannounced = 0;

  constructor(readonly size: number) {
    this.#allowance = size;
  }

  get state(): ReceiveCreditState {
    return this.#state.state;
  }

  /** Credit the peer holds (as far as we have granted). */
  get allowance(): number {
    return this.#allowance;
  }

  /** Bytes received and not yet released. */
  get held(): number {
    return this.size - this.#allowance - this.#unannounced;
  }

  /** The peer's first frame was the hello (it speaks session credit) or anything else (it does not). */
  peerSpoke(hello: boolean): void {
    this.#state.to(hello ? 'owed' : 'legacy');
    if (hello) return;
    this.#allowance += this.#unannounced;
    this.#unannounced = 0;
  }

  /** The peer sent `n` DATA bytes. Returns false, changing nothing, if that overruns its credit. */
  receive(n: number): boolean {
    if (n > this.#allowance) return false;
    this.#allowance -= n;
    return true;
  }

  /** `n` received bytes left the session's hands. Returns true when a WINDOW(0) is due (takeFrame). */
  release(n: number): boolean {
    if (this.#state.is('legacy')) {
      this.#allowance += n; // no frame can tell an older peer; its credit is ours to keep track of
      return false;
    }
    this.#unannounced += n;
    return this.#due();
  }

  /** The next WINDOW(0) value to send: the announcement once, then returned credit when due; else 0. */
  takeFrame(): number {
    if (this.#state.is('owed')) {
      this.#state.to('announced');
      return this.size; // the whole window, counted from the session's start
    }
    if (!this.#due()) return 0;
    const increment = this.#unannounced;
    this.#allowance += increment;
    this.#unannounced = 0;
    return increment;
  }

  #due(): boolean {
    if (this.#state.is('owed')) return true;
    if (!this.#state.is('announced') || this.#unannounced === 0) return false;
    return this.#unannounced * 4 >= this.size || this.#unannounced >= this.#allowance;
  }
}

export class SessionSendCredit {
  readonly #state = new Lifecycle<SendCreditState>('mux session send credit', SEND_CREDIT_TRANSITIONS, 'assumed');
  /** While assumed: our own window, less what we sent; once limited: what the peer granted, less what we sent. */
  #credit: number;
  /** DATA bytes sent before the peer's announcement: it counts its window from the session's start. */
  #sentBeforeAnnouncement = 0;

  /** @param assumed the peer's window until it says otherwise: our own. */
  constructor(assumed: number) {
    this.#credit = assumed;
  }

  get state(): SendCreditState {
    return this.#state.state;
  }

  /** Bytes of DATA we may send now (Infinity against an older peer). */
  get available(): number {
    if (this.#state.is('unlimited')) return Infinity;
    return Math.max(0, this.#credit);
  }

  /** The peer's first frame: the hello, or anything else (an older build: no limit). */
  peerSpoke(hello: boolean): void {
    if (!hello) this.#state.to('unlimited');
  }

  /** `n` (<= available) DATA bytes went out. */
  spend(n: number): void {
    if (!this.#state.is('limited')) this.#sentBeforeAnnouncement += n;
    if (!this.#state.is('unlimited')) this.#credit -= n;
  }

  /** A WINDOW(0) arrived. Throws WICKET_ERR_MUX_PROTOCOL when the credit would pass 2^32-1. */
  grant(increment: number): void {
    if (!this.#state.is('limited')) {
      this.#state.to('limited');
      // The announcement: the peer's whole window, which it enforced from the start, so this is
      // never negative unless the peer is about to close the session for the overrun anyway.
      this.#credit = increment - this.#sentBeforeAnnouncement;
      return;
    }
    if (this.#credit + increment > MAX_CREDIT) {
      throw wicketError('WICKET_ERR_MUX_PROTOCOL', `session credit would exceed 2^32-1 (${this.#credit} + ${increment})`);
    }
    this.#credit += increment;
  }
}
