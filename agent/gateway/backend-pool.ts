import { Backend, type BackendStatus } from './backend.js';
import type { BackendCredential } from './backend-credential.js';
import type { BackendSpec } from './gateway-spec.js';

// The gateway's backends, and the order to try them in for one request: lowest priority number
// first; within a priority, a weighted random order (so weight 2 takes about twice the requests
// of weight 1, and a failing one's share moves to the others). Backends whose breaker keeps them
// out (cooling after a 429, open after failures) are left out; a half-open one is offered to one
// trial request at a time.

export class BackendPool {
  readonly backends: readonly Backend[];
  readonly #random: () => number;

  constructor(specs: readonly BackendSpec[], credentialFor: (spec: BackendSpec) => BackendCredential, options: { now?: () => number; random?: () => number } = {}) {
    const now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    const backends: Backend[] = [];
    try {
      for (const spec of specs) backends.push(new Backend(spec, credentialFor(spec), now));
    } catch (err) {
      for (const backend of backends) void backend.close();
      throw err;
    }
    this.backends = backends;
  }

  /** Backends to try, in order, for one request (each already holds its breaker slot). */
  plan(): Backend[] {
    const byPriority = new Map<number, Backend[]>();
    for (const backend of this.backends) {
      if (!backend.breaker.tryAcquire()) continue;
      const group = byPriority.get(backend.spec.priority) ?? [];
      group.push(backend);
      byPriority.set(backend.spec.priority, group);
    }
    return [...byPriority.keys()].sort((a, b) => a - b).flatMap((priority) => this.#weightedOrder(byPriority.get(priority)!));
  }

  /** When the first backend comes back, for a retry-after when none is available. */
  soonestAvailableAt(): number {
    return Math.min(...this.backends.map((b) => b.breaker.availableAt));
  }

  status(): BackendStatus[] {
    return this.backends.map((b) => b.status());
  }

  async close(): Promise<void> {
    await Promise.all(this.backends.map((b) => b.close()));
  }

  /** Weighted random order without replacement (each draw picks in proportion to weight). */
  #weightedOrder(group: Backend[]): Backend[] {
    const left = [...group];
    const order: Backend[] = [];
    while (left.length > 0) {
      const total = left.reduce((sum, b) => sum + b.spec.weight, 0);
      let pick = this.#random() * total;
      let index = 0;
      while (index < left.length - 1 && pick >= left[index]!.spec.weight) pick -= left[index++]!.spec.weight;
      order.push(left.splice(index, 1)[0]!);
    }
    return order;
  }
}
