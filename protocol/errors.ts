// Every error Wicket raises has a class (WicketError), a stable code (WICKET_ERR_*), a stable
// number that can travel on the wire (reset/close frames carry it), a meaning and a fix.
// The README's error table is checked against this registry by test/protocol/errors.test.ts,
// so adding a code here without documenting it fails the tests.
//
// Messages never contain secrets: callers pass identifiers, names and lengths, never key
// material, ticket secrets or API keys (see protocol/secret.ts).

interface ErrorSpec {
  /** Stable number, unique, carried in wire frames (u16). Never reuse a retired number. */
  readonly num: number;
  /** What happened, in one line. */
  readonly meaning: string;
  /** What the operator should do about it. */
  readonly fix: string;
}

export const ERROR_CODES = {
  // --- generic decoding (1xx) ---
  WICKET_ERR_FRAME_TRUNCATED: { num: 100, meaning: 'A frame or encoded object ended before its declared length.', fix: 'A peer sent a broken frame; the session was closed. Check both sides run the same Wicket version.' },
  WICKET_ERR_FRAME_TOO_LARGE: { num: 101, meaning: 'A declared length exceeds the limit for that field (checked before allocating).', fix: 'A peer sent an oversized frame; the session was closed. See protocol/limits.ts for the caps.' },
  WICKET_ERR_FRAME_MALFORMED: { num: 102, meaning: 'A frame or encoded object does not follow the wire format.', fix: 'A peer sent garbage; the session was closed. Check both sides run the same Wicket version.' },
  WICKET_ERR_FRAME_UNKNOWN_TYPE: { num: 103, meaning: 'A frame carries a type byte this version does not know.', fix: 'Upgrade the older side; the session was closed.' },
  WICKET_ERR_VERSION: { num: 104, meaning: 'An encoded object carries an unsupported format version.', fix: 'Upgrade the older side so both speak the same version.' },

  // --- identity (2xx) ---
  WICKET_ERR_IDENTIFIER_INVALID: { num: 200, meaning: 'A string is not a valid identity identifier (I followed by 64 hex digits).', fix: 'Copy the identifier exactly as `agent status` or `agent member list` prints it.' },
  WICKET_ERR_KEY_INVALID: { num: 201, meaning: 'A public or private key has the wrong length or encoding.', fix: 'The key file or the peer message is corrupt; re-create the identity or check the peer.' },
  WICKET_ERR_SIGNATURE_INVALID: { num: 202, meaning: 'A signature does not verify under the claimed key.', fix: 'The peer does not hold the key it claims, or the data was altered in transit.' },
  WICKET_ERR_KEY_FILE_PERMISSIONS: { num: 203, meaning: 'An identity key file is readable by users other than its owner.', fix: 'Run `chmod 600` on the key file (Wicket creates it with mode 0600).' },

  // --- credentials (3xx) ---
  WICKET_ERR_CREDENTIAL_MALFORMED: { num: 300, meaning: 'A credential cannot be decoded.', fix: 'The credential is corrupt; re-enroll or wait for the relay to refresh it.' },
  WICKET_ERR_CREDENTIAL_ISSUER: { num: 301, meaning: 'A credential was issued by an authority other than the pinned project authority.', fix: 'The peer belongs to another project; enroll it with a ticket from this project.' },
  WICKET_ERR_CREDENTIAL_SIGNATURE: { num: 302, meaning: "A credential's authority signature does not verify.", fix: 'The credential was altered; it was rejected.' },
  WICKET_ERR_CREDENTIAL_EXPIRED: { num: 303, meaning: 'A credential is expired (or not yet valid) at the verifier\'s clock.', fix: 'Keep the agent connected to the relay so it refreshes its credential; check both clocks.' },
  WICKET_ERR_CREDENTIAL_SUBJECT: { num: 304, meaning: 'A credential names a different identity than the one presenting it.', fix: 'The peer presented someone else\'s credential; it was rejected.' },
  WICKET_ERR_CREDENTIAL_NOT_MEMBER: { num: 305, meaning: "A relay's own credential (it names a relay id) was presented where a member's is required.", fix: 'Only agents open channels; a relay key presenting itself to an agent was refused.' },

  // --- tickets and enrollment (4xx) ---
  WICKET_ERR_TICKET_PREFIX: { num: 400, meaning: 'The text is not a Wicket ticket (wrong or missing prefix).', fix: 'Pass the whole ticket as printed by `agent ticket create` (it starts with `wkt1_`).' },
  WICKET_ERR_TICKET_MALFORMED: { num: 401, meaning: 'The ticket text is truncated or mangled.', fix: 'Copy the ticket again, whole; tickets are single-line base64url.' },
  WICKET_ERR_TICKET_EXPIRED: { num: 402, meaning: 'The ticket has expired.', fix: 'Ask an admin for a new ticket (`agent ticket create --expires-in …`).' },
  WICKET_ERR_TICKET_USED: { num: 403, meaning: 'The ticket has no uses left.', fix: 'Tickets are one-time by default; ask an admin for a new one.' },
  WICKET_ERR_TICKET_UNKNOWN: { num: 404, meaning: 'The relay\'s authority does not know this ticket (or the secret is wrong).', fix: 'The ticket is from another relay or project, or was mistyped.' },
  WICKET_ERR_ALREADY_ENROLLED: { num: 405, meaning: 'This agent home already holds an enrollment for another project.', fix: 'Use a different WICKET_HOME for the other project, or remove the old one deliberately.' },
  WICKET_ERR_TICKET_REVOKED: { num: 407, meaning: 'An admin revoked the ticket before it was redeemed.', fix: 'Ask an admin for a new ticket; `relay ticket list --all` / `agent ticket list --all` shows who revoked it and when.' },
  WICKET_ERR_NOT_ENROLLED: { num: 406, meaning: 'This agent home holds no enrollment.', fix: 'Run `agent enroll --ticket …` first.' },

  // --- secure channel (5xx) ---
  WICKET_ERR_HANDSHAKE_MALFORMED: { num: 500, meaning: 'A Noise handshake message has the wrong length or shape.', fix: 'The peer is not a Wicket agent of this version, or the message was altered; the channel was closed.' },
  WICKET_ERR_HANDSHAKE_DECRYPT: { num: 501, meaning: 'A Noise handshake message failed authentication (tampered, reordered or replayed).', fix: 'The message was altered or replayed in transit; the channel was closed.' },
  WICKET_ERR_HANDSHAKE_STATE: { num: 502, meaning: 'A handshake message arrived out of order or after the handshake finished.', fix: 'The peer broke the protocol; the channel was closed.' },
  WICKET_ERR_HANDSHAKE_PAYLOAD: { num: 503, meaning: 'A handshake payload (identity, signature, credential) is missing or malformed.', fix: 'The peer is not a Wicket agent of this version; the channel was closed.' },
  WICKET_ERR_STATIC_KEY_BINDING: { num: 504, meaning: "The peer's identity signature does not cover its Noise static key.", fix: 'The peer tried to reuse another session\'s binding; the channel was closed.' },
  WICKET_ERR_HANDSHAKE_TIMEOUT: { num: 505, meaning: 'The handshake did not finish in time.', fix: 'Check that the peer agent is running and connected to the relay.' },
  WICKET_ERR_MESSAGE_TOO_LARGE: { num: 510, meaning: 'A Noise message exceeds 65,535 bytes.', fix: 'The peer broke the Noise size limit; the channel was closed.' },
  WICKET_ERR_DECRYPT: { num: 511, meaning: 'A transport message failed authentication (tampered, replayed, reordered or dropped before it).', fix: 'Something between the agents altered the stream; the channel was closed and streams reset.' },
  WICKET_ERR_NONCE_EXHAUSTED: { num: 512, meaning: 'A cipher ran out of nonces.', fix: 'Cannot happen with periodic rekey; report it.' },
  WICKET_ERR_PEER_MISMATCH: { num: 506, meaning: 'The identity that finished the handshake is not the one the relay joined the circuit to (opener or registered outlet).', fix: 'Another member tried to run a handshake through someone else\'s circuit; the channel was refused. Check the audit log for the two identities.' },
  WICKET_ERR_CHANNEL_CLOSED: { num: 513, meaning: 'The secure channel is closed.', fix: 'The peer went away or the path broke; new connections open a new channel.' },

  // --- policy (6xx) ---
  WICKET_ERR_POLICY_SYNTAX: { num: 600, meaning: 'An access policy expression does not parse.', fix: 'Use attr, attr=value, identifier=I…, and, or, not and parentheses, e.g. `openai-inlet and not env=dev`.' },
  WICKET_ERR_POLICY_DENIED: { num: 601, meaning: 'The peer\'s identity or attributes do not satisfy the policy.', fix: 'Issue the peer a ticket with the attribute the policy asks for, or widen `--allow`.' },

  // --- stream multiplexing (7xx) ---
  WICKET_ERR_MUX_PROTOCOL: { num: 700, meaning: 'A stream frame broke the multiplexing protocol (duplicate open, data after fin, bad flags).', fix: 'The peer broke the protocol; the channel was closed.' },
  WICKET_ERR_MUX_UNKNOWN_STREAM: { num: 701, meaning: 'A frame names a stream that does not exist.', fix: 'The peer broke the protocol; the channel was closed.' },
  WICKET_ERR_MUX_WINDOW_EXCEEDED: { num: 702, meaning: 'A peer sent more stream data than the granted credit window.', fix: 'The peer ignored flow control; the channel was closed.' },
  WICKET_ERR_MUX_TOO_MANY_STREAMS: { num: 703, meaning: 'Too many concurrent streams on one channel.', fix: 'Raise the stream limit or spread clients; the new stream was refused.' },
  WICKET_ERR_MUX_WINDOW_BUDGET: { num: 705, meaning: 'A new stream\'s receive window does not fit in what is left of the channel\'s window budget.', fix: 'The peer asked for more buffering than the channel allows (see MUX_SESSION_WINDOW_BUDGET); the new stream was refused, the others go on.' },
  WICKET_ERR_STREAM_RESET: { num: 704, meaning: 'A stream was reset by the other side.', fix: 'The far end failed mid-stream; the app connection was reset, not cleanly closed.' },

  // --- relay and routing (8xx) ---
  WICKET_ERR_RELAY_AUTH: { num: 800, meaning: 'The relay refused the agent\'s authentication.', fix: 'Re-enroll the agent, or check it was not revoked.' },
  WICKET_ERR_RELAY_NAME_FORBIDDEN: { num: 801, meaning: 'The agent\'s credential does not allow registering that relay name.', fix: 'Enroll with a ticket created with `--relay NAME`.' },
  WICKET_ERR_RELAY_NAME_UNKNOWN: { num: 802, meaning: 'No live outlet is registered under that relay name.', fix: 'Start the outlet (`agent outlet create … --relay NAME`) and check it is connected.' },
  WICKET_ERR_RELAY_UNREACHABLE: { num: 803, meaning: 'The agent cannot reach the relay.', fix: 'Check the relay URL, the network, and that the relay runs; the agent keeps retrying with backoff.' },
  WICKET_ERR_RELAY_PROTOCOL: { num: 804, meaning: 'A relay message broke the agent-relay protocol.', fix: 'Check both sides run the same Wicket version; the connection was closed.' },
  WICKET_ERR_RELAY_TLS_PIN: { num: 805, meaning: 'The relay\'s TLS certificate does not match the fingerprint pinned in the ticket.', fix: 'You may be talking to an impostor; verify the relay, or re-enroll with a ticket from it.' },
  WICKET_ERR_INSECURE_RELAY: { num: 806, meaning: 'Plain ws:// was requested for a non-loopback address.', fix: 'Use TLS (wss://), or pass --insecure if you really mean it.' },
  WICKET_ERR_RELAY_OVERLOADED: { num: 807, meaning: 'The relay dropped a connection that exceeded its buffer caps.', fix: 'The peer stopped reading; the connection was closed.' },
  WICKET_ERR_CIRCUIT_CLOSED: { num: 808, meaning: 'The relay circuit to the peer was closed.', fix: 'The peer disconnected or was revoked; streams on it were reset.' },
  WICKET_ERR_REVOKED: { num: 809, meaning: 'The identity was revoked by an admin.', fix: 'Ask an admin for a new ticket if access should be restored.' },
  WICKET_ERR_NOT_ADMIN: { num: 810, meaning: 'The command needs an identity with the admin attribute.', fix: 'Run it as an enrolled admin (the relay printed the first admin ticket).' },
  WICKET_ERR_MEMBER_UNKNOWN: { num: 811, meaning: 'No member has that identifier.', fix: 'List members with `agent member list`.' },
  WICKET_ERR_RELAY_TIMEOUT: { num: 812, meaning: 'The relay did not answer in time.', fix: 'Check the relay is running and reachable.' },
  WICKET_ERR_RELAY_TOO_MANY_CIRCUITS: { num: 813, meaning: 'A connection asked for more open circuits than the relay allows per connection.', fix: 'Close idle circuits or spread load over more agents (see MAX_CIRCUITS_PER_CONNECTION).' },
  WICKET_ERR_MESH_AUTH: { num: 814, meaning: 'A relay-to-relay link was refused: the other relay did not prove a relay credential of this project for the relay id it named.', fix: 'Every relay of a project must share its store and be let in by the authority; check both relays use the same --store and that their clocks agree.' },
  WICKET_ERR_MESH_LINK_LOST: { num: 815, meaning: 'The link to the relay holding the other end of a circuit went down, so the circuit closed.', fix: 'Open a new connection: the relays re-link within seconds, and agents of a relay that died move to another.' },
  WICKET_ERR_RELAYS_UNREACHABLE: { num: 816, meaning: 'Enrollment reached none of the relays the ticket lists (each refused the connection, timed out, failed its pinned certificate or was not this project\'s relay).', fix: 'The message names every relay tried and why; check they run and this host reaches them, then run `agent enroll` again with the same ticket in the same home (a redemption whose answer was lost is answered again without spending another use).' },

  // --- agent, CLI and configuration (9xx) ---
  WICKET_ERR_ARGUMENT: { num: 900, meaning: 'A command-line argument is missing or invalid.', fix: 'See the command\'s --help for the expected form and an example.' },
  WICKET_ERR_CONFIG: { num: 901, meaning: 'A node configuration file is invalid.', fix: 'Fix the field the message names; see examples/ for a valid node.json.' },
  WICKET_ERR_CONTROL: { num: 902, meaning: 'The local node is not running or its control socket is unreachable.', fix: 'Start it with `agent node start` (same WICKET_HOME).' },
  WICKET_ERR_TARGET_UNREACHABLE: { num: 903, meaning: 'The outlet could not connect to its target.', fix: 'Check the outlet\'s --to address and that the service is up; the app connection was reset.' },
  WICKET_ERR_ADDRESS_IN_USE: { num: 904, meaning: 'The inlet or relay cannot listen on the requested address.', fix: 'Pick a free port or stop what uses it.' },
  WICKET_ERR_RESOURCE_EXISTS: { num: 905, meaning: 'An inlet or outlet with that name already exists.', fix: 'Delete it first or pick another name.' },
  WICKET_ERR_RESOURCE_UNKNOWN: { num: 906, meaning: 'No inlet or outlet has that name.', fix: 'List resources with `agent inlet list` / `agent outlet list`.' },
  WICKET_ERR_TARGET_BUSY: { num: 909, meaning: 'The outlet already holds as many target connections as its limits allow (for this peer, or in all).', fix: 'Close idle connections or raise the outlet\'s --max-connections / --max-connections-per-peer; the new connection was reset, the others go on.' },
  WICKET_ERR_MEMBER_NOT_REVOKED: { num: 910, meaning: 'Reinstate was asked for a member that is not revoked.', fix: 'Only a revoked member can be reinstated; `agent member list` shows who is revoked.' },
  WICKET_ERR_PERMISSION: { num: 911, meaning: 'This user may not read or write a file or folder Wicket needs (EACCES, EPERM, a read-only filesystem): the agent home and its files, the node config, the relay data folder.', fix: 'Run as the user that owns the path the message names, or give that user the permission it names (e.g. `chown -R wicket: PATH`); nothing there is corrupt.' },
  WICKET_ERR_TLS_TARGET: { num: 907, meaning: 'TLS to the outlet\'s target failed (certificate or name mismatch).', fix: 'Pass --tls-ca and --tls-servername matching the target\'s certificate.' },
  WICKET_ERR_CONTROL_REQUEST: { num: 920, meaning: 'A control-socket request is malformed, too long or names an unknown operation.', fix: 'Use the `agent` CLI to talk to the node; the request was refused and the node kept running.' },
  WICKET_ERR_STORE: { num: 908, meaning: 'The authority store failed.', fix: 'Check the relay data folder is writable and not corrupt.' },
  WICKET_ERR_DATA_DIR_LOCKED: { num: 930, meaning: 'Another relay process holds the data folder\'s lock (relay.lock): two relays on one authority store would split its state.', fix: 'Stop the other relay (the message names its pid), or give this one its own --data folder. A lock left by a crashed relay is taken over by itself; `relay ticket` and `relay member` commands work while a relay runs.' },
  WICKET_ERR_STORE_UNAVAILABLE: { num: 931, meaning: 'The relay cannot reach its PostgreSQL store (down, restarting, refusing connections, or too slow to answer); what needs the store (enrollment, login, tickets, revocation) is refused, circuits already open keep flowing.', fix: 'Check PostgreSQL at the address the message names (the password is never shown); the relay reconnects by itself, retry once /readyz answers 200.' },
  WICKET_ERR_STORE_PROJECT_MISMATCH: { num: 932, meaning: 'The PostgreSQL store belongs to another project: it recorded a different authority identifier than this relay\'s authority key.', fix: 'Start every relay on that store with the same authority key (`relay start --authority-key FILE`, a copy of the first relay\'s DATA/authority.key, mode 0600), or give this project its own database.' },
  WICKET_ERR_AUTHORITY_UNAVAILABLE: { num: 933, meaning: 'This relay only forwards and verifies (it holds no signing key) and no signer of the project (a relay started with the project key, or `relay authority`) answered its request through the PostgreSQL store in time: an enrollment, a credential refresh, or an admin\'s ticket grant (`agent ticket create` through this relay) was refused. Agents that present a still-valid credential are still let in.', fix: 'Start a signer on the same store: `relay authority --store postgres://… --authority-key FILE` (or any relay with the project key); then enroll again from the same agent home (the ticket use already spent is not spent twice), or run `agent ticket create` again (each run makes a new ticket; the unanswered one is never printed and enrolls nobody).' },
  WICKET_ERR_NOT_ENDORSED: { num: 934, meaning: "The signer refused a member's credential: the shared store's record of it (or of the ticket it enrolled with) was not written through the project's signer, or changed since. Every relay can write the store, so a signer signs only for members and tickets it endorsed itself. A forwarding relay also says it when the store's answer to an admin's ticket grant is not one the signer could have written (nothing is recorded).", fix: 'Enroll the agent again with a ticket created by the signer (`relay ticket create --store … --authority-key FILE`, or an admin through a relay holding the key). If nobody changed the store by hand, look for who did: whoever holds a relay or the store password. A store made before endorsements needs `relay authority --endorse-existing` once.' },
  WICKET_ERR_SIGNER_ONLY: { num: 935, meaning: 'Tickets on a shared (PostgreSQL) store are created only where the project key is, or by an admin agent that makes the ticket itself and signs a grant for it: this relay, or this data folder, only forwards, and the request carried no grant (an agent older than ticket grants, or `relay ticket create` without the key).', fix: 'Run `agent ticket create` from an up-to-date admin agent (it works through any relay), or create the ticket on the signing host (`relay ticket create --store postgres://… --authority-key FILE`, or `--data` of a relay holding the key).' },
  WICKET_ERR_GRANT_INVALID: { num: 936, meaning: "A ticket grant (an admin agent's signed request for a ticket it made itself) was refused: it does not verify under the admin's key for this project, was signed more than 5 minutes from the relay's or signer's clock, is malformed, or names a ticket id already endorsed or stored (a grant makes one ticket, once).", fix: "Check the admin host's clock (NTP) and run `agent ticket create` again: each run makes a new ticket id and a fresh grant. A grant that was altered after signing means someone changed the request on its way: whoever holds a relay or the store password." },

  // --- Azure provisioning (10xx) ---
  WICKET_ERR_AZURE_CONFIG: { num: 1000, meaning: 'Azure settings are missing or invalid (subscription, credentials, endpoint).', fix: 'Sign in with `az login` or set AZURE_SUBSCRIPTION_ID (and AZURE_ARM_ENDPOINT/AZURE_ACCESS_TOKEN for other clouds).' },
  WICKET_ERR_AZURE_OPERATION: { num: 1001, meaning: 'An Azure Resource Manager operation failed.', fix: 'Read the resource name and Azure error in the message (quota, policy, region); fix it and re-run to resume.' },

  // --- Azure OpenAI gateway (11xx): answered to the app as HTTP with an Azure-shaped JSON error ---
  WICKET_ERR_GATEWAY_RATE_LIMITED: { num: 1100, meaning: 'The caller used its tokens or requests per minute at this outlet (HTTP 429).', fix: 'Wait retry-after seconds (the openai SDK does so itself), or ask AI Corp to raise the caller\'s limit in the outlet\'s gateway.limits.' },
  WICKET_ERR_GATEWAY_QUOTA_EXCEEDED: { num: 1101, meaning: 'The caller spent its token quota for the day or month (HTTP 403).', fix: 'Wait for the next period (the message says when), or ask AI Corp to raise tokensPerDay / tokensPerMonth.' },
  WICKET_ERR_GATEWAY_DENIED: { num: 1102, meaning: 'The caller\'s identity or attributes do not allow that deployment (HTTP 403).', fix: 'Ask AI Corp for a ticket with the attribute the outlet\'s gateway.deployments policy names, or use an allowed deployment.' },
  WICKET_ERR_BACKEND_UNREACHABLE: { num: 1103, meaning: 'No backend of the outlet\'s pool could be reached (HTTP 502).', fix: 'Check the backends\' URLs, DNS and private endpoints from the outlet host; `agent status` shows each backend\'s last error.' },
  WICKET_ERR_BACKEND_FAILED: { num: 1104, meaning: 'Every backend tried answered with a server error (HTTP 502).', fix: 'The service is failing in every region tried; `agent status` shows each backend\'s breaker and last error. Retry later.' },
  WICKET_ERR_BACKENDS_COOLING: { num: 1105, meaning: 'Every backend is cooling down after 429s or failures (HTTP 503 with retry-after).', fix: 'Retry after retry-after seconds; add capacity (another region or deployment) to the pool if it happens often.' },
  WICKET_ERR_BACKEND_AUTH: { num: 1106, meaning: 'The outlet has no valid credential for the backend: the Entra token could not be obtained or refreshed, or the api-key file is unreadable (HTTP 503).', fix: 'Check the outlet host\'s managed identity (role "Cognitive Services OpenAI User") or the api-key file (mode 0600); the outlet log says which failed.' },
  WICKET_ERR_HTTP_REQUEST: { num: 1107, meaning: 'The app\'s HTTP request is malformed or exceeds the gateway\'s limits (HTTP 400, 408, 413 or 431).', fix: 'Send well-formed HTTP/1.1 within the limits in protocol/limits.ts (GATEWAY_*); the stream was answered and closed.' },
  WICKET_ERR_LEDGER: { num: 1108, meaning: 'The usage ledger could not be written or read.', fix: 'Check the agent home is writable (usage.db); requests were served, their rows are in the log line.' },
  WICKET_ERR_GATEWAY_COUNTERS: { num: 1109, meaning: 'The gateway could not read or write its limit counters (limits.db or gateway.sharedCounters); the request was refused (HTTP 503).', fix: 'Check the counters file is writable and not held by a stuck process; requests resume once it is.' },
  WICKET_ERR_CONTENT_LOG: { num: 1110, meaning: 'The gateway\'s content log could not be written or rotated; content logging stopped, requests go on.', fix: 'Check the contentLog path\'s folder is writable and has room, then restart the outlet.' },

  WICKET_ERR_INTERNAL: { num: 9999, meaning: 'An unexpected internal error.', fix: 'Report it with the log lines around it.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

const BY_NUMBER = new Map<number, ErrorCode>(
  (Object.keys(ERROR_CODES) as ErrorCode[]).map((code) => [ERROR_CODES[code].num, code]),
);

export class WicketError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(`${code}: ${message ?? ERROR_CODES[code].meaning}`, options);
    this.name = 'WicketError';
    this.code = code;
  }

  /** The stable wire number of this error's code. */
  get num(): number {
    return ERROR_CODES[this.code].num;
  }
}

/** The one error factory: `throw wicketError('WICKET_ERR_FRAME_TRUNCATED', 'credential: 3 of 32 bytes')`. */
export function wicketError(code: ErrorCode, detail?: string, cause?: unknown): WicketError {
  return new WicketError(code, detail, cause === undefined ? undefined : { cause });
}

/**
 * The one rule for a code that arrives as text (relay `close`, `error`, `response.error`): a
 * registered code is kept, anything else becomes `fallback`. Codes are shown to users and drive
 * decisions (retry or not), so an unknown string never passes through as if it were a code.
 */
export function errorCodeFromWire(text: string, fallback: ErrorCode): ErrorCode {
  return Object.hasOwn(ERROR_CODES, text) ? (text as ErrorCode) : fallback;
}

/** Maps a wire number back to its code; unknown numbers become WICKET_ERR_INTERNAL. */
export function codeFromNumber(num: number): ErrorCode {
  return BY_NUMBER.get(num) ?? 'WICKET_ERR_INTERNAL';
}

/** Any thrown value as a WicketError (foreign errors are wrapped as internal). */
export function asWicketError(err: unknown): WicketError {
  if (err instanceof WicketError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return wicketError('WICKET_ERR_INTERNAL', message, err);
}

export function isWicketError(err: unknown, code?: ErrorCode): err is WicketError {
  return err instanceof WicketError && (code === undefined || err.code === code);
}
