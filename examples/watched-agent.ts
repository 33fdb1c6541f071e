// An HTTP(S) agent that notices when a response is cut short, so the request can fail at once.
//
// Why: the `openai` v4 SDK on Node fetches with node-fetch v2, which pipes the response into a
// PassThrough and detects a premature end only for chunked bodies. When the connection dies in
// the middle of a response with a content-length (a non-streamed answer), the body never ends and
// `await create(...)` hangs forever; the SDK's own timeout stops counting at the headers. A Wicket
// portal resets the app's connection whenever something breaks mid-stream, so the demo client must
// turn that into a clear failure. This agent reports the first socket error (ECONNRESET, EPIPE,
// ECONNREFUSED …) and any response of its own that closes before it is complete
// (`IncomingMessage.complete` false); the caller aborts the request with it.
//
// Responses are observed through node's documented `http.client.request.start` diagnostics
// channel, filtered to this agent's requests.

import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';

export interface WatchedAgent {
  readonly agent: http.Agent;
  /** What broke first, if anything did. */
  broken(): NodeJS.ErrnoException | undefined;
  /** Stops watching and closes the agent's connections. */
  dispose(): void;
}

const REQUEST_START_CHANNEL = 'http.client.request.start';

export function watchedAgent(
  endpoint: string,
  options: { caCertPem?: string | Buffer | undefined; onBroken: (err: NodeJS.ErrnoException) => void },
): WatchedAgent {
  // No keep-alive: an idle pooled connection would hold a portal stream open after we are done.
  const agent = endpoint.startsWith('https:')
    ? new https.Agent({ keepAlive: false, ...(options.caCertPem ? { ca: options.caCertPem } : {}) })
    : new http.Agent({ keepAlive: false });
  let broken: NodeJS.ErrnoException | undefined;
  const report = (err: NodeJS.ErrnoException): void => {
    if (broken) return;
    broken = err;
    options.onBroken(err);
  };

  const create = agent.createConnection.bind(agent) as (
    opts: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ) => Duplex | null | undefined;
  agent.createConnection = (opts: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void) => {
    const socket = create(opts, callback);
    socket?.on('error', report);
    return socket;
  };

  const onRequestStart = (message: unknown): void => {
    const request = (message as { request?: http.ClientRequest }).request;
    // ClientRequest keeps the agent it was given as `.agent` (untyped in @types/node).
    if (!request || (request as unknown as { agent?: unknown }).agent !== agent) return;
    request.once('response', (response: http.IncomingMessage) => {
      response.once('close', () => {
        if (!response.complete) {
          report(Object.assign(new Error('the connection closed before the response was complete'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
        }
      });
    });
  };
  diagnostics.subscribe(REQUEST_START_CHANNEL, onRequestStart);

  return {
    agent,
    broken: () => broken,
    dispose: () => {
      diagnostics.unsubscribe(REQUEST_START_CHANNEL, onRequestStart);
      agent.destroy();
    },
  };
}
