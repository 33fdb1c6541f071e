// How many target connections an outlet holds, in all and per peer identity (across all of that
// peer's channels), against its two limits. One peer can hold at most its share, so a member that
// opens streams by the thousand exhausts its own share, not the node's file descriptors, and other
// peers are still served (the hostile case in test/agent/outlet-limits.test.ts).

export type ShareRefusal = 'outlet-full' | 'peer-full';

export class ConnectionShares {
  #total = 0;
  readonly #byPeer = new Map<string, number>();

  constructor(
    readonly max: number,
    readonly maxPerPeer: number,
  ) {}

  get total(): number {
    return this.#total;
  }

  of(peer: string): number {
    return this.#byPeer.get(peer) ?? 0;
  }

  /** Takes a slot for `peer`; undefined on success, else which limit refused it. */
  take(peer: string): ShareRefusal | undefined {
    if (this.#total >= this.max) return 'outlet-full';
    const held = this.of(peer);
    if (held >= this.maxPerPeer) return 'peer-full';
    this.#total++;
    this.#byPeer.set(peer, held + 1);
    return undefined;
  }

  /** Gives back one slot `peer` took (exactly once per successful take). */
  release(peer: string): void {
    const held = this.of(peer);
    if (held === 0) return;
    this.#total--;
    if (held === 1) this.#byPeer.delete(peer);
    else this.#byPeer.set(peer, held - 1);
  }
}
