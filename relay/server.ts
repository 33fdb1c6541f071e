import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { WebSocketServer, type WebSocket } from 'ws';
import { wicketError } from '../protocol/errors.js';
import type { Identifier } from '../protocol/identity.js';
import { ADMIN_TICKET_TTL_MS, RELAY_MAX_FRAME, STORE_REREAD_INTERVAL_MS } from '../protocol/limits.js';
import { MESH_PATH } from '../protocol/mesh-messages.js';
import { AdminOps } from './admin.js';
import type { Authority, CreatedTicket, TicketRequest } from './authority/authority.js';
import { openRelayAuthority } from './authority/authority-role.js';
import type { AuthorityRole } from './authority/credential-issuer.js';
import { Mesh } from './mesh/mesh.js';
import type { StoreLocation } from './authority/store-location.js';
import { ADMIN_ATTRIBUTE } from '../protocol/relay-names.js';
import type { AuthorityStore } from './authority/store.js';
import { RelayConnection } from './connection.js';
import type { ConnectionServices } from './connection-services.js';
import { RefusalLog } from './refusal-log.js';
import { ensureDataDir, writeRelayConfig, writeSecretFile, type RelayDataPaths } from './data-dir.js';
import { lockDataDir } from './data-dir-lock.js';
import { FlowControl } from './flow-control.js';
import { Keepalive } from './keepalive.js';
import { DEFAULT_LISTEN, hostOfUrl, isLoopbackHost, isWildcardHost, urlHostPort, type ListenAddress } from './listen-address.js';
import { LiveConnections } from './live-connections.js';
import { LOOPBACK_METRICS_ACCESS, type MetricsAccess } from './metrics-access.js';
import { RelayCounters } from './relay-counters.js';
import { boundPlainHttp, plainHttpOptions, relayHttpHandler } from './relay-http.js';
import { relayMetricsRegistry } from './relay-metrics.js';
import { RelayPresence } from './presence.js';
import { RelayDirectory } from './relay-directory.js';
import { Revocation, type RevocationResult } from './revocation.js';
import { Router } from './router.js';
import { relaySettings, type RelaySettings } from './settings.js';
import { FrameTap } from './tap.js';
import { RELAY_TLS_CIPHERS, RELAY_TLS_MIN_VERSION } from '../protocol/relay-tls.js';
import { loadOrCreateSelfSigned, loadTlsFiles, type RelayTlsMaterial } from './tls.js';

// `relay start` as a function: opens the data folder (authority key, store, TLS material), listens,
// wires every accepted WebSocket to a RelayConnection, and answers plain GETs (relay-http.ts:
// /healthz, /readyz, /metrics) on the same port. The CLI (cli/relay-start.ts) and the
// tests both call startRelay; nothing here prints.

/**
 * TLS: 'auto' (default) serves plain ws:// on loopback and a self-signed certificate elsewhere;
 * 'self-signed' forces the generated certificate (e.g. on loopback, to test pinning); 'none' is
 * plain ws://, refused off loopback unless `insecure`; files use the operator's certificate.
 */
export type RelayTlsMode = 'auto' | 'self-signed' | 'none' | { readonly certFile: string; readonly keyFile: string };

export interface RelayOptions {
  readonly dataDir: string;
  readonly logger: Logger;
  readonly listen?: ListenAddress;
  /** The URL put in tickets; default: the listen address with the bound port. */
  readonly publicUrl?: string;
  readonly tls?: RelayTlsMode;
  readonly insecure?: boolean;
  /** Test-only: append every received frame's bytes to this file. */
  readonly tapFile?: string;
  /** Injected clock for the authority (ticket and credential times). */
  readonly now?: () => number;
  readonly credentialTtlMs?: number;
  readonly settings?: Partial<RelaySettings>;
  /** Another store implementation; default SQLite in the data folder. */
  readonly store?: AuthorityStore;
  /** Where the store is (`--store`): the data folder's SQLite file by default, or PostgreSQL. */
  readonly storeLocation?: StoreLocation;
  /** `--authority-key FILE`: the project key (default DATA/authority.key); without either, a relay on a PostgreSQL store that has a project forwards. */
  readonly authorityKeyFile?: string;
  /** Who may GET /metrics on the relay's port (default: loopback only; `--metrics-from`). */
  readonly metricsAccess?: MetricsAccess;
}

export interface RunningRelay {
  /** ws://host:port or wss://host:port, with the real bound port (what tickets carry). */
  readonly url: string;
  readonly port: number;
  /** Hex SHA-256 of the DER certificate when agents pin it (self-signed), else undefined. */
  readonly fingerprint: string | undefined;
  readonly authorityIdentifier: Identifier;
  readonly authority: Authority;
  /** signing: this relay holds the project key; forwarding: it only verifies (authority-role.ts). */
  readonly role: AuthorityRole;
  /** True when this start created the authority; then adminTicket is set. */
  readonly firstStart: boolean;
  readonly adminTicket: CreatedTicket | undefined;
  readonly paths: RelayDataPaths;
  readonly router: Router;
  readonly connections: LiveConnections;
  createTicket(request: Omit<TicketRequest, 'createdBy'> & { createdBy?: string }): Promise<CreatedTicket>;
  revoke(identifier: Identifier, revokedBy?: string): Promise<RevocationResult>;
  reinstate(identifier: Identifier, reinstatedBy?: string): Promise<RevocationResult>;
  close(): Promise<void>;
}

function decideTls(options: RelayOptions, listen: ListenAddress): 'none' | 'self-signed' | { certFile: string; keyFile: string } {
  const mode = options.tls ?? (options.insecure ? 'none' : 'auto');
  if (mode === 'auto') return isLoopbackHost(listen.host) ? 'none' : 'self-signed';
  if (mode === 'none' && !isLoopbackHost(listen.host) && !options.insecure) {
    throw wicketError('WICKET_ERR_INSECURE_RELAY', `plain ws:// on ${listen.host} is not loopback; serve TLS or pass --insecure`);
  }
  return mode;
}

function listenOn(server: Server, listen: ListenAddress): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(wicketError('WICKET_ERR_ADDRESS_IN_USE', `cannot listen on ${urlHostPort(listen.host, listen.port)} (${err.code ?? err.message})`));
    };
    server.once('error', onError);
    server.listen(listen.port, listen.host, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : listen.port);
    });
  });
}

function checkPublicUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw wicketError('WICKET_ERR_ARGUMENT', `public URL ${JSON.stringify(url.slice(0, 80))} does not parse`);
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw wicketError('WICKET_ERR_ARGUMENT', 'public URL must start with ws:// or wss://');
  }
  return url.replace(/\/$/, '');
}

/**
 * Starts a relay holding its data folder's lock (data-dir-lock.ts) for its whole life: a second
 * relay on the same folder fails with WICKET_ERR_DATA_DIR_LOCKED; close() releases it.
 */
export async function startRelay(options: RelayOptions): Promise<RunningRelay> {
  const lock = lockDataDir(ensureDataDir(options.dataDir), options.logger);
  try {
    const relay = await startLockedRelay(options);
    return { ...relay, close: () => relay.close().finally(() => lock.release()) };
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function startLockedRelay(options: RelayOptions): Promise<RunningRelay> {
  const logger = options.logger;
  const listen = options.listen ?? DEFAULT_LISTEN;
  const settings = relaySettings(options.settings);
  const tlsChoice = decideTls(options, listen);
  const publicUrl = options.publicUrl === undefined ? undefined : checkPublicUrl(options.publicUrl);
  const now = options.now ?? Date.now;

  const paths = ensureDataDir(options.dataDir);
  // Signing or forwarding (authority-role.ts): whether this process holds the project key.
  const opened = await openRelayAuthority({
    dataDirKeyFile: paths.authorityKey,
    sqlitePath: paths.store,
    location: options.storeLocation ?? { kind: 'sqlite' },
    now,
    logger,
    ...(options.authorityKeyFile === undefined ? {} : { keyFile: options.authorityKeyFile }),
    ...(options.store === undefined ? {} : { store: options.store }),
    ...(options.credentialTtlMs === undefined ? {} : { credentialTtlMs: options.credentialTtlMs }),
  });
  const { authority, store, initialized: created, role } = opened;

  let tls: RelayTlsMaterial | undefined;
  if (tlsChoice === 'self-signed') {
    const hosts = [listen.host, ...(publicUrl === undefined ? [] : [hostOfUrl(publicUrl)]), hostname()];
    tls = await loadOrCreateSelfSigned(paths, hosts, new Date(now()));
  } else if (tlsChoice !== 'none') {
    tls = loadTlsFiles(tlsChoice.certFile, tlsChoice.keyFile);
  }

  const connections = new LiveConnections();
  const counters = new RelayCounters();
  const flow = new FlowControl(settings, logger.child({ component: 'flow' }), counters);
  const router = new Router(flow, settings, logger.child({ component: 'router' }), counters);
  // A store that notifies (PostgreSQL) is re-read only as a backstop; SQLite is polled.
  const rereadMs = store.changes === undefined ? settings.revocationPollMs : Math.max(settings.revocationPollMs, STORE_REREAD_INTERVAL_MS);
  const revocation = new Revocation(authority, connections, rereadMs, logger.child({ component: 'revocation' }), counters);
  const admin = new AdminOps(authority, revocation, connections, logger.child({ component: 'admin' }));
  const keepalive = new Keepalive(connections, flow, settings, logger.child({ component: 'keepalive' }), counters);
  const refusals = new RefusalLog(logger.child({ component: 'connection' }));
  const tap = options.tapFile === undefined ? undefined : new FrameTap(options.tapFile);
  const services: ConnectionServices = {
    authority,
    router,
    flow,
    keepalive,
    revocation,
    directory: new RelayDirectory(authority, logger.child({ component: 'directory' })),
    admin,
    connections,
    refusals,
    counters,
    settings,
    logger: logger.child({ component: 'connection' }),
    ...(tap === undefined ? {} : { tap }),
  };

  let closing: Promise<void> | undefined;
  let registry: Registry | undefined;
  /** Made once the relay listens and has recorded itself, when its store is shared (PostgreSQL). */
  let mesh: Mesh | undefined;
  const onPlainRequest = relayHttpHandler({
    metricsAccess: options.metricsAccess ?? LOOPBACK_METRICS_ACCESS,
    // Made on the first scrape: a relay nobody scrapes runs no collectors.
    registry: () => (registry ??= relayMetricsRegistry({ counters, connections, router, mesh: () => mesh })),
    readiness: async () => {
      if (closing !== undefined) return 'the relay is shutting down';
      if (!server.listening) return 'not listening';
      // The store must answer, not merely be open: this is the read every login starts with.
      await store.lastRevocationSeq();
      // Without its listening connection a relay would learn revocations only by re-reading.
      const feedProblem = store.changes?.problem();
      if (feedProblem !== undefined) return feedProblem;
      return closing === undefined ? undefined : 'the relay is shutting down';
    },
  });
  const httpOptions = plainHttpOptions(settings.httpTimeoutMs);
  const server: Server =
    tls === undefined
      ? createHttpServer(httpOptions, onPlainRequest)
      : createHttpsServer(
          { ...httpOptions, cert: tls.cert, key: tls.key, minVersion: RELAY_TLS_MIN_VERSION, ciphers: RELAY_TLS_CIPHERS, honorCipherOrder: true, handshakeTimeout: settings.httpTimeoutMs },
          onPlainRequest,
        );
  boundPlainHttp(server, settings.httpTimeoutMs);
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', (err: Error) => logger.debug({ err: err.message }, 'TLS handshake failed'));
  const wss = new WebSocketServer({ server, maxPayload: RELAY_MAX_FRAME, perMessageDeflate: false, clientTracking: false });
  wss.on('error', (err) => logger.error({ err: err.message }, 'WebSocket server error'));
  // The connections themselves, for shutdown (LiveConnections sees them only as peers).
  const relayConnections = new Set<RelayConnection>();
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    if (req.url === MESH_PATH) {
      // Another relay of the project; a relay without a mesh (one relay on SQLite) has none to accept.
      if (mesh === undefined) ws.close(1008, 'this relay is not part of a mesh');
      else mesh.accept(ws);
      return;
    }
    const socket = req.socket;
    const connection = new RelayConnection(ws, socket, `${socket.remoteAddress}:${socket.remotePort}`, services);
    services.directory.connected(connection, req.headers);
    relayConnections.add(connection);
    ws.once('close', () => relayConnections.delete(connection));
  });

  let port: number;
  try {
    // The revocations that still matter are loaded before the first agent can be welcomed.
    await revocation.start();
    port = await listenOn(server, listen);
  } catch (err) {
    revocation.stop();
    await opened.close();
    await tap?.close();
    throw err;
  }
  let urlHost = listen.host;
  if (isWildcardHost(listen.host)) {
    urlHost = hostname();
    if (publicUrl === undefined) logger.warn({ host: urlHost }, 'listening on a wildcard address: tickets use this host name; set --public-url to what agents dial');
  }
  const url = publicUrl ?? `${tls === undefined ? 'ws' : 'wss'}://${urlHostPort(urlHost, port)}`;
  const fingerprint = tls?.fingerprint;
  const endpoint = { url, ...(fingerprint === undefined ? {} : { fingerprint }) };
  authority.setEndpoint(endpoint);
  const presence = new RelayPresence({ store, endpoint, logger, now });
  await presence.start();
  // Relays sharing a store that notifies (PostgreSQL) link up and route circuits to each other.
  if (store.changes !== undefined) {
    mesh = new Mesh({
      relayId: presence.relayId,
      store,
      authorityPublicKey: authority.publicKey,
      relayCredential: (publicKey, relayId) => authority.relayCredential(publicKey, relayId),
      router,
      flow,
      settings,
      logger: logger.child({ component: 'mesh' }),
      now,
      tap,
    });
    await mesh.start();
  }
  writeRelayConfig(paths, {
    url,
    ...(fingerprint === undefined ? {} : { fingerprint: fingerprint.toString('hex') }),
    authority: authority.identifier,
    listen: urlHostPort(listen.host, port),
    startedAt: new Date(now()).toISOString(),
  });

  let adminTicket: CreatedTicket | undefined;
  if (created) {
    adminTicket = await authority.createTicket({
      attributes: { [ADMIN_ATTRIBUTE]: 'true' },
      relayNames: [],
      usageCount: 1,
      expiresInMs: ADMIN_TICKET_TTL_MS,
      createdBy: 'relay',
    });
    writeSecretFile(paths.adminTicket, adminTicket.text);
  }
  keepalive.start();
  logger.info({ url, authority: authority.identifier, role, fingerprint: fingerprint?.toString('hex'), firstStart: created }, 'relay listening');

  const close = (): Promise<void> => {
    closing ??= (async () => {
      keepalive.stop();
      revocation.stop();
      presence.stop();
      mesh?.stop();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of relayConnections) connection.closeForShutdown();
      // Give peers the close grace to answer the close handshake, then cut what is left.
      const deadline = Date.now() + settings.closeGraceMs;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      for (const socket of sockets) socket.destroy();
      wss.close();
      await stopped;
      refusals.flush();
      await tap?.close();
      await opened.close();
      logger.info({ url }, 'relay stopped');
    })();
    return closing;
  };

  return {
    url,
    port,
    fingerprint: fingerprint?.toString('hex'),
    authorityIdentifier: authority.identifier,
    authority,
    role,
    firstStart: created,
    adminTicket,
    paths,
    router,
    connections,
    createTicket: (request) => authority.createTicket({ ...request, createdBy: request.createdBy ?? 'relay' }),
    revoke: (identifier, revokedBy = 'relay') => revocation.revoke(identifier, revokedBy),
    reinstate: (identifier, reinstatedBy = 'relay') => revocation.reinstate(identifier, reinstatedBy),
    close,
  };
}
