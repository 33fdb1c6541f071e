// What one inlet or outlet carried since it was made, for its metrics: streams bridged and bytes
// each way. A live bridge counts its own bytes (StreamBridge.bytesSent/bytesReceived, plain
// additions on the data path); when it closes its figures are folded in here, so the totals only
// grow, as a Prometheus counter must, however many streams come and go between two scrapes.

export interface BridgeBytes {
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

export interface TrafficTotals {
  /** Streams bridged now. */
  readonly open: number;
  /** Streams bridged (open now and closed). */
  readonly streams: number;
  /** Bytes read from local sockets and sent to the peer. */
  readonly bytesSent: number;
  /** Bytes received from the peer and written to local sockets. */
  readonly bytesReceived: number;
}

export class ResourceTraffic {
  #closedStreams = 0;
  #closedSent = 0;
  #closedReceived = 0;

  closed(bridge: BridgeBytes): void {
    this.#closedStreams++;
    this.#closedSent += bridge.bytesSent;
    this.#closedReceived += bridge.bytesReceived;
  }

  /** The totals, with the bridges still open (`live`) read now. */
  totals(live: Iterable<BridgeBytes>): TrafficTotals {
    let streams = this.#closedStreams;
    let bytesSent = this.#closedSent;
    let bytesReceived = this.#closedReceived;
    let open = 0;
    for (const bridge of live) {
      open++;
      streams++;
      bytesSent += bridge.bytesSent;
      bytesReceived += bridge.bytesReceived;
    }
    return { open, streams, bytesSent, bytesReceived };
  }
}
