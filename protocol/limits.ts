// All of Wicket's limits in one place, split like wireguard-go's constants.go into what a
// specification fixes and what this implementation chose, with the reason beside each.
// Decoders check these as soon as a length is read, before allocating.

// ---------------------------------------------------------------------------------------------
// Specification constants (Noise revision 34, RFC 7748, RFC 8032, RFC 8439)
// ---------------------------------------------------------------------------------------------

/** Noise §3: every Noise message, handshake or transport, is at most 65,535 bytes. */
export const NOISE_MAX_MESSAGE = 65_535;
/** X25519 public keys and DH outputs (RFC 7748). */
export const DH_LEN = 32;
/** AEAD tag length for ChaChaPoly and AESGCM (Noise §5.1). */
export const AEAD_TAG_LEN = 16;
/** Noise §5.1: a cipher key is 32 bytes. */
export const CIPHER_KEY_LEN = 32;
/** Noise §5.1: nonce 2^64-1 is reserved for rekey; a CipherState must never use it. */
export const NOISE_MAX_NONCE = 2n ** 64n - 1n;
/** Ed25519 public key and signature lengths (RFC 8032). */
export const ED25519_PUBLIC_KEY_LEN = 32;
export const ED25519_SIGNATURE_LEN = 64;

// ---------------------------------------------------------------------------------------------
// Implementation constants
// ---------------------------------------------------------------------------------------------

/** Largest plaintext in one transport message: the Noise cap less the tag. */
export const NOISE_MAX_PLAINTEXT = NOISE_MAX_MESSAGE - AEAD_TAG_LEN;
/**
 * Rekey (Noise §11.3 REKEY) after this many messages in one direction. At 64 KiB messages this is
 * every ~4 GiB: frequent enough to bound what one key ever protects, rare enough to cost nothing.
 */
export const REKEY_INTERVAL_MESSAGES = 65_536;
/** A handshake that has not finished in this time is abandoned (a stalled peer holds nothing). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Identity identifier: 'I' + 64 hex digits of SHA-256(public key). */
export const IDENTIFIER_PREFIX = 'I';
export const IDENTIFIER_HEX_LEN = 64;

/** Credentials are short-lived so a leaked one is worth little; refreshed while the member is live. */
export const CREDENTIAL_TTL_MS = 10 * 60_000;
/** Refresh a credential when this fraction of its lifetime is left. */
export const CREDENTIAL_REFRESH_FRACTION = 0.5;
/** Tolerated clock skew between relay and agents when checking validity windows. */
export const CLOCK_SKEW_MS = 60_000;
/** Caps inside a credential: they bound what a hostile credential can make us allocate. */
export const MAX_ATTRIBUTES = 64;
export const MAX_ATTRIBUTE_KEY_LEN = 128;
export const MAX_ATTRIBUTE_VALUE_LEN = 1_024;
export const MAX_CREDENTIAL_LEN = 16_384;

/** Tickets: 256-bit secrets, default one use and one hour. */
export const TICKET_SECRET_LEN = 32;
export const TICKET_ID_LEN = 16;
export const TICKET_DEFAULT_USAGE_COUNT = 1;
export const TICKET_DEFAULT_TTL_MS = 60 * 60_000;
export const TICKET_MAX_TTL_MS = 30 * 24 * 60 * 60_000;
/** More uses than this is not a ticket but a standing password; use several tickets instead. */
export const TICKET_MAX_USAGE_COUNT = 1_000_000;
/** A ticket string longer than this is refused before decoding. */
export const MAX_TICKET_TEXT_LEN = 4_096;
export const MAX_RELAY_URL_LEN = 512;
/** Relays one ticket lists (a store's live relays): enough to fail over, and the text stays pasteable. */
export const MAX_TICKET_RELAYS = 8;
/** SHA-256 of the relay's DER certificate, pinned in the ticket. */
export const RELAY_CERT_FINGERPRINT_LEN = 32;
/**
 * First bytes of SHA-256(ticket binary) appended to a ticket: catches a mangled paste with a clear
 * message (a random change slips through with probability 2^-32). Not a security measure.
 */
export const TICKET_CHECKSUM_LEN = 4;
export const MAX_RELAY_NAMES = 32;
export const MAX_RELAY_NAME_LEN = 64;
/**
 * How far a ticket grant's signedAt (the admin agent's clock) may be from the clock that judges it
 * (the relay's, or the store's and the signer's on a forwarding relay): wide enough for skewed
 * clocks and a slow queue, narrow enough that a grant read off the store cannot be replayed later.
 */
export const TICKET_GRANT_FRESHNESS_MS = 5 * 60_000;
/**
 * A stored grant statement longer than this (in UTF-16 code units, a JS string's length) is refused
 * before parsing (WICKET_ERR_GRANT_INVALID). It bounds parse effort on a hostile queue row; it is
 * not the largest grant the caps allow: 63 attributes of 128-byte keys and 1024-byte values are
 * already over 70 KiB before JSON escaping, so a grant that large is refused by the signer.
 */
export const MAX_TICKET_GRANT_LEN = 64 * 1024;

/** Access policies: bound parse effort on hostile expressions. */
export const MAX_POLICY_LEN = 2_048;
export const MAX_POLICY_DEPTH = 32;

// --- stream multiplexing ---
/** yamux's starting window; ours grows toward the measured bandwidth-delay product. */
export const STREAM_INITIAL_WINDOW = 256 * 1024;
/** Cap on one stream's window: a 40 ms, 1 GB/s path needs ~40 MiB; 16 MiB keeps memory bounded. */
export const STREAM_MAX_WINDOW = 16 * 1024 * 1024;
/**
 * Heap one open, idle stream costs its session, per side: MuxStream, ReceiveWindow, SendQueue,
 * ReceiveBuffer, two Lifecycles, the map entry and its listeners. Measured (Node 20): 10,000 idle
 * streams between two back-to-back sessions, one byte each way, grew the heap by 21.2 MiB, so
 * ~2.2 KB a pair, ~1.1 KB a side. The agent's socket and bridge come on top (~1 KB of heap per
 * loopback socket, measured the same way) and are bounded by the outlet's maxConnections.
 */
export const MUX_STREAM_STATE_BYTES = 1_100;
/**
 * Heap one session may spend on stream state. Data no longer scales with the stream count (the
 * session window bounds it), so the stream cap is this budget over a stream's cost.
 */
export const MUX_SESSION_STREAM_STATE_BUDGET = 64 * 1024 * 1024;
/**
 * Concurrent streams on one channel: the stream-state budget over a stream's cost, 61,008. It
 * was a fixed 1,024 while each stream's window was what bounded the data a peer could make us
 * hold (issue 12); with the session window that bound no longer grows with the streams.
 */
export const MAX_STREAMS_PER_CHANNEL = Math.floor(MUX_SESSION_STREAM_STATE_BUDGET / MUX_STREAM_STATE_BYTES);
/**
 * The stream cap of builds before session credit: the most streams a peer that predates it
 * keeps open with us (it refuses more), which sizes the session window below.
 */
export const MUX_LEGACY_MAX_STREAMS = 1_024;
/** Largest stream data payload in one mux frame: fills one Noise message with its header. */
export const MUX_FRAME_HEADER_LEN = 9;
export const MUX_MAX_DATA_PAYLOAD = NOISE_MAX_PLAINTEXT - MUX_FRAME_HEADER_LEN;
/**
 * Sum of every receive window above our initial window, across all streams of one session: the
 * growth auto-tuning gives fast streams, and the larger windows a peer asks for in OPEN. A few
 * streams may reach STREAM_MAX_WINDOW, but they cannot all hold 16 MiB; and because grown windows
 * hold at most this much, stalled fast streams can never take the whole session window below.
 */
export const MUX_SESSION_WINDOW_BUDGET = 64 * 1024 * 1024;
/**
 * The session receive window: DATA bytes, across all streams, the peer may have sent us that we
 * have not yet handed to readers or dropped (HTTP/2's connection window, QUIC's MAX_DATA). It is
 * what bounds the data a session holds, whatever the stream count. Sized as the most a peer built
 * before session credit can legitimately have outstanding (1,024 streams at the initial window,
 * plus every window byte above it, which the budget caps): receivers enforce the session window
 * against every peer, and such a peer does not know it, so a smaller one would cut off a
 * well-behaved old peer. It is also the old "maxStreams x initialWindow + budget" bound (320 MiB),
 * now independent of the stream count; and since grown windows take at most the budget, stalled
 * readers must fill ~1,000 initial windows before they hold up the session's other streams.
 */
export const MUX_SESSION_RECEIVE_WINDOW = MUX_LEGACY_MAX_STREAMS * STREAM_INITIAL_WINDOW + MUX_SESSION_WINDOW_BUDGET;
/** A stream's write() returns false above this many queued bytes (four full frames). */
export const STREAM_WRITE_HIGH_WATER = 256 * 1024;
/** Auto-tuning re-measures RTT (one PING) when its last sample is older than this. */
export const MUX_RTT_SAMPLE_MAX_AGE_MS = 10_000;

// --- agent <-> relay ---
/** ws maxPayload: one Noise message plus the relay frame header, with room for control frames. */
export const RELAY_MAX_FRAME = NOISE_MAX_MESSAGE + 64;
/** Control frames (JSON) are small; anything larger is hostile. */
export const RELAY_MAX_CONTROL_FRAME = 64 * 1024;
/**
 * Longest string field in a control message. The largest legitimate one is a base64url credential,
 * ceil(4/3 × MAX_CREDENTIAL_LEN) = 21,846 characters; 16 KiB (the first choice) refused those.
 */
export const RELAY_MAX_CONTROL_STRING = 32 * 1024;
/** Bytes the relay queues towards one connection before pausing the sender(s) feeding it. */
export const RELAY_HIGH_WATER_BYTES = 4 * 1024 * 1024;
export const RELAY_LOW_WATER_BYTES = 1 * 1024 * 1024;
/** A connection whose queue passes this despite backpressure is dropped (it stopped reading). */
export const RELAY_HARD_CAP_BYTES = 64 * 1024 * 1024;
/** Keepalive: ping every interval; a peer silent for DEAD_AFTER is dropped (<= 10 s by design). */
export const KEEPALIVE_INTERVAL_MS = 3_000;
export const KEEPALIVE_DEAD_AFTER_MS = 9_000;
/** Reconnect backoff (jittered exponential): never a hot loop (Ockam issue #4796). */
export const RECONNECT_MIN_DELAY_MS = 100;
/**
 * Capped at 2 s so an agent is back within ~3 s of a relay restart (issue 3), however long the
 * relay was gone; a failed dial costs microseconds, so this is no hot loop.
 */
export const RECONNECT_MAX_DELAY_MS = 2_000;
/**
 * During a relay outage the agent retries every RECONNECT_MAX_DELAY_MS or so; it warns at the first
 * failure, then at most once per this interval with the count of failed attempts since.
 */
export const RELAY_OUTAGE_WARN_INTERVAL_MS = 60_000;
/** The relay's fresh per-connection challenge that an agent signs to authenticate. */
export const RELAY_CHALLENGE_LEN = 32;
/** An agent must authenticate within this time of connecting, or it is dropped. */
export const RELAY_AUTH_TIMEOUT_MS = 10_000;
/** Circuits open at once per agent connection. */
export const MAX_CIRCUITS_PER_CONNECTION = 4_096;
/**
 * Outlets an inlet may ask the relay to skip in one `open` (ones it already refused: policy,
 * revoked, not the registered identity). A handful covers any sane HA set; more is hostile.
 */
export const MAX_OPEN_AVOID = 8;
/**
 * An agent keeps a revoked identity in its refusal set until every credential that identity was
 * issued has expired: the relay sends `until` = revokedAt + its credential TTL + CLOCK_SKEW_MS.
 * This cap bounds the set against a confused relay (a project revokes far fewer in ten minutes).
 */
export const MAX_REVOKED_PEERS = 100_000;
/** Admin/RPC requests time out after this. */
export const RELAY_REQUEST_TIMEOUT_MS = 10_000;
/**
 * Both ends check liveness this often, so a silent peer is dropped within DEAD_AFTER + SWEEP =
 * 9.5 s: under the 10 s DESIGN.md promises, with room for the close to reach the other end.
 */
export const KEEPALIVE_SWEEP_MS = 500;
/** Control frames an agent may pipeline while the relay checks its auth/enroll (store I/O is async). */
export const RELAY_MAX_FRAMES_DURING_AUTH = 16;
/** A peer that does not finish the WebSocket close handshake in this time is cut (revocation: <= 1 s). */
export const RELAY_CLOSE_GRACE_MS = 500;
/**
 * Refused logins logged per window; past it they are counted into one summary line per window,
 * so a scanner or a misconfigured fleet cannot flood the journal (relay/refusal-log.ts).
 */
export const REFUSAL_LOG_LINES_PER_WINDOW = 20;
export const REFUSAL_LOG_WINDOW_MS = 10_000;
/** The relay polls its store for revocations made by other processes (offline CLI, other relays). */
export const REVOCATION_POLL_INTERVAL_MS = 250;
/**
 * With a PostgreSQL store, revocations arrive by LISTEN/NOTIFY within milliseconds; this re-read is
 * only the backstop for a notification lost while the listening connection was down, so a missed
 * one cannot leave a revoked member connected longer than this.
 */
export const STORE_REREAD_INTERVAL_MS = 2_000;
/**
 * While the store is unreachable those re-reads fail every STORE_REREAD_INTERVAL_MS; the relay warns
 * at the first failure, then at most once per this interval with the count since (as an agent does
 * for a relay outage), and says when reading works again.
 */
export const STORE_OUTAGE_WARN_INTERVAL_MS = 60_000;
/** How long a PostgreSQL connection attempt may take before the store counts as unavailable. */
export const STORE_CONNECT_TIMEOUT_MS = 2_000;
/** A store query that takes longer is abandoned (WICKET_ERR_STORE_UNAVAILABLE), so a hung server cannot hang logins. */
export const STORE_QUERY_TIMEOUT_MS = 5_000;
/** Connections each relay keeps to PostgreSQL (its pool), besides the one listening for revocations. */
export const STORE_POOL_SIZE = 8;
/** The listening connection reconnects after 100 ms, doubling up to this, while PostgreSQL is away. */
export const STORE_LISTEN_RETRY_MAX_MS = 1_000;
/**
 * Credentials for a forwarding relay's agents (a relay without the signing key) come from the
 * project authority through the store's credential_requests table. The relay waits this long for
 * the signed answer, then refuses with WICKET_ERR_AUTHORITY_UNAVAILABLE. Kept well inside
 * RELAY_AUTH_TIMEOUT_MS (10 s) with room for the redemption before it (at most a
 * STORE_QUERY_TIMEOUT_MS), so the agent hears the real reason instead of an auth timeout; a live
 * signer answers in milliseconds (one NOTIFY each way).
 */
export const CREDENTIAL_ANSWER_TIMEOUT_MS = 3_000;
/**
 * While waiting, the relay re-reads its unanswered requests this often: the backstop for an
 * answer NOTIFY lost while its listening connection was reconnecting.
 */
export const CREDENTIAL_ANSWER_POLL_MS = 500;
/**
 * A signer (a relay with the key, or `relay authority`) sweeps the queue this often besides
 * answering each NOTIFY: a request notified while its listener was down waits at most this long,
 * well inside CREDENTIAL_ANSWER_TIMEOUT_MS.
 */
export const CREDENTIAL_SIGNER_SWEEP_MS = 1_000;
/** Requests one sweep transaction answers; a longer queue takes several sweeps back to back. */
export const CREDENTIAL_SIGN_BATCH = 64;
/**
 * Rows older than this (a requester that died before deleting its row) are deleted by the signer's
 * sweep; requests are answered only while someone can still be waiting for them.
 */
export const CREDENTIAL_REQUEST_KEEP_MS = 60_000;
/**
 * A live connection whose credential refresh failed (store or authority away) tries again after
 * this, not a whole refresh period later: its credential must not expire while the authority
 * comes back. Also the first refresh of an agent let in with its own still-valid credential.
 */
export const CREDENTIAL_REFRESH_RETRY_MS = 15_000;
/** Each relay on a shared store re-records itself this often (its row in `relays`: URL, pin, last seen). */
export const RELAY_HEARTBEAT_INTERVAL_MS = 5_000;
/** A relay unseen this long (three missed heartbeats, e.g. killed) is left out of new tickets. */
export const RELAY_LIVE_TIMEOUT_MS = 15_000;
// --- relay mesh (relay/mesh/) ---
/** How often a relay re-reads the live relays and dials the peers it should link to but does not. */
export const MESH_DIAL_INTERVAL_MS = 2_000;
/** A relay-to-relay dial (TCP, TLS, upgrade) and the mutual handshake must each finish in this. */
export const MESH_DIAL_TIMEOUT_MS = 5_000;
/**
 * The receiving relay returns credit for a circuit's bytes once this many are owed (and it is not
 * holding them back for a full destination): one `credit` per this many bytes, not per frame.
 * At most half of RELAY_LOW_WATER_BYTES (mesh.ts caps it there), so the sending relay resumes its
 * source before its window runs dry. 512 KiB rather than 128: a credit is a JSON control frame
 * a relay writes or parses, and at 128 KiB (one per two full DATA frames) the four processes of the
 * two-relay bench path spent 5.83 CPU s per GB in all against 5.67 at 512 KiB (scratch iperf3
 * runs, three rounds each, same machine).
 */
export const MESH_CREDIT_BATCH_BYTES = 512 * 1024;
/**
 * Which relays serve which relay names comes from the store and its notifications; this re-read
 * (and re-announcement of this relay's own names) is the backstop for a lost notification or a
 * write that failed while the store was away.
 */
export const MESH_NAMES_REREAD_MS = 2_000;

/**
 * A relay re-reads the project's live relays this often for the agents it serves, and tells each
 * one only of a change (`relays`): as often as relays beat, so a relay started later is known to
 * connected agents within two intervals of its first heartbeat, and a dead one drops out of their
 * lists within RELAY_LIVE_TIMEOUT_MS plus one interval. One indexed read per relay, not per agent.
 */
export const RELAY_DIRECTORY_CHECK_INTERVAL_MS = RELAY_HEARTBEAT_INTERVAL_MS;
/**
 * The list a relay gives its agents keeps, after the live relays, those silent for less than this:
 * a list of live relays only would make agents forget a relay down for maintenance, and when the
 * one they are on died next they would have nowhere to go once it came back. A relay gone for a
 * day is taken as retired and drops out of the lists.
 */
export const RELAY_DIRECTORY_KEEP_MS = 24 * 60 * 60_000;
/**
 * The features header of an agent's WebSocket upgrade (`wicket-agent-features: relays`) is read
 * only up to this length: a few short tokens; anything longer is not an agent of ours.
 */
export const AGENT_FEATURES_HEADER_MAX_LEN = 256;
/**
 * `agent enroll` tries the ticket's relays in order until one answers, all within this time: a
 * relay that refuses the connection costs nothing, one that swallows packets costs up to
 * RELAY_AUTH_TIMEOUT_MS, so three black holes still leave a working relay its turn, and a
 * person (or cloud-init) waiting on the command gets an answer within half a minute.
 */
export const ENROLL_DEADLINE_MS = 30_000;
/** The one-time admin ticket printed on the relay's first start. */
export const ADMIN_TICKET_TTL_MS = 24 * 60 * 60_000;
/** The generated self-signed relay certificate; agents pin its fingerprint, so a long life is safe. */
export const SELF_SIGNED_CERT_VALIDITY_MS = 10 * 365 * 24 * 60 * 60_000;
/** audit.list: default and maximum number of events returned. */
export const AUDIT_LIST_DEFAULT = 100;
export const AUDIT_LIST_MAX = 1_000;
/**
 * ticket.list: the relay stops adding tickets to its answer past this many JSON bytes (and says
 * how many it left out), so the answer stays under RELAY_MAX_CONTROL_FRAME whatever the tickets
 * carry; `relay ticket list` on the relay host shows them all.
 */
export const TICKET_LIST_REPLY_BUDGET = 48 * 1024;
/** SQLite waits this long for a lock held by another process (relay and `relay ticket create`). */
export const STORE_BUSY_TIMEOUT_MS = 5_000;
/**
 * Plain HTTP on the relay's port (/healthz, /readyz, /metrics, and the upgrade request itself):
 * a client gets this long for its whole request (and a TLS client as long for its handshake); a
 * request head over this size is refused (431). A scraper needs milliseconds, so a slow or silent
 * client holds a socket for seconds, not minutes.
 */
export const RELAY_HTTP_TIMEOUT_MS = 10_000;
export const RELAY_HTTP_MAX_HEADER_BYTES = 16 * 1024;

// --- agent relay client and vault ---
/**
 * Bytes of frames the agent holds between reading the relay's welcome and the client taking over
 * the connection. The relay sends the revocation re-sync right behind the welcome, and `ws` may hand
 * over a whole socket read (at most 64 KiB of frames) before the client's continuation runs; a
 * relay that sends more than this there is hostile. Counted in bytes, not frames: a re-sync is many
 * small frames.
 */
export const RELAY_CLIENT_MAX_QUEUED_BYTES = 1024 * 1024;
/** enrollment.json holds a credential and a few fields; a bigger file is not ours and is refused. */
export const ENROLLMENT_FILE_MAX_BYTES = 64 * 1024;

// --- agent node (inlets, outlets, control socket) ---
/** Mux ping period on an open channel: keeps an RTT estimate fresh for the window growth. */
export const CHANNEL_PING_INTERVAL_MS = 5_000;
/**
 * How long an app connection accepted by an inlet may wait for a channel (relay away, outlet not
 * yet re-registered) before it is reset. Long enough to ride out a relay restart plus the
 * reconnect backoff, short enough that a client is not left hanging on a dead path.
 */
export const INLET_CHANNEL_WAIT_MS = 15_000;
/**
 * Node reads a TCP socket into a 64 KiB buffer, and a TLS socket hands over one record (at most
 * 16 KiB of plaintext) at a time. A read shorter than that means the kernel queue was drained: the
 * bridge sends it at once instead of waiting a loop turn for more to coalesce with.
 */
export const TCP_READ_SIZE = 64 * 1024;
export const TLS_MAX_RECORD_PLAINTEXT = 16 * 1024;
/**
 * ChaChaPoly messages with plaintexts shorter than this are sealed and opened by libsodium, longer
 * ones by OpenSSL (node:crypto). libsodium does a message in one native call where OpenSSL needs
 * a fresh context and four calls (1 KiB seal + open: 5 µs against 24 µs), but OpenSSL's AVX-512
 * code is faster on long messages (64 KiB: about 25% here); at 16 KiB they measured even.
 */
export const AEAD_LIBSODIUM_BELOW = 16 * 1024;
/**
 * OpenSSL (node:crypto) only: a plaintext made of several parts (a mux header and its payload) is
 * gathered into one buffer and encrypted in one AEAD update when it is at most this long. Each
 * node:crypto update() costs ~2 µs of fixed overhead (a native call and a fresh output buffer)
 * while copying 16 KiB costs about 1 µs, so below this size one copy beats one extra call; above
 * it the parts go one by one.
 */
export const AEAD_GATHER_MAX = 16 * 1024;
/** Pause between channel attempts while the path is not there (name unknown, relay away). */
export const INLET_CHANNEL_RETRY_MS = 250;
/**
 * Target connections one outlet holds at once (connecting or bridged). Each is a file descriptor
 * and up to a stream window of buffered data, and a node's descriptors are finite and shared
 * (EMFILE resets every caller alike). Configurable per outlet (`--max-connections`).
 */
export const OUTLET_MAX_TARGET_CONNECTIONS = 2_048;
/**
 * One peer identity's share of an outlet's target connections, across all its channels: a quarter
 * of the outlet's, so one member can never take more than that and three others always fit.
 * Configurable per outlet (`--max-connections-per-peer`).
 */
export const OUTLET_MAX_TARGET_CONNECTIONS_PER_PEER = 512;
/** The largest connection limit an outlet accepts in its settings (far above any descriptor limit). */
export const MAX_TARGET_CONNECTIONS_SETTING = 1_000_000;
/** An outlet's connection to its target (TCP connect + TLS handshake) must finish in this time. */
export const TARGET_CONNECT_TIMEOUT_MS = 10_000;
/**
 * The check an outlet makes of its target when it is created (TCP, and TLS with the name check):
 * short, because `agent outlet create` waits for it, and it only warns.
 */
export const TARGET_CHECK_TIMEOUT_MS = 3_000;
/** One control-socket request line; anything longer is hostile and the connection is dropped. */
export const CONTROL_MAX_LINE = 64 * 1024;
/** Concurrent control-socket clients (the CLI uses one at a time). */
export const CONTROL_MAX_CLIENTS = 32;
/** The CLI gives up on the node's answer after this. */
export const CONTROL_REQUEST_TIMEOUT_MS = 15_000;
/** A node config file (YAML or JSON) larger than this is refused before parsing. */
export const NODE_CONFIG_MAX_BYTES = 1024 * 1024;
/**
 * YAML aliases a node config may expand (the yaml package's maxAliasCount): enough to share a
 * policy string among many resources, far too few for a "billion laughs" expansion.
 */
export const NODE_CONFIG_MAX_YAML_ALIASES = 100;
/**
 * Circuits the relay closed before their session attached (an `opened`/`close` race), remembered
 * so the session closes at once; only the newest matter (a session attaches within one loop turn).
 */
export const CLOSED_EARLY_CIRCUITS_KEPT = 256;
/** Inlets and outlets on one node (each holds a listener or a registration). */
export const MAX_NODE_RESOURCES = 256;

// --- Azure OpenAI gateway (agent/gateway) ---
/** Request header block the gateway parses (node:http maxHeaderSize); larger is 431. */
export const GATEWAY_MAX_HEADER_BYTES = 16 * 1024;
/** Request body the gateway reads (it parses JSON to count and limit tokens); larger is 413. */
export const GATEWAY_MAX_REQUEST_BODY_BYTES = 8 * 1024 * 1024;
/** The whole request head must arrive within this (a slow-loris caller gets 408 and is closed). */
export const GATEWAY_HEADERS_TIMEOUT_MS = 10_000;
/** The whole request (head and body) must arrive within this. */
export const GATEWAY_REQUEST_TIMEOUT_MS = 60_000;
/** A kept-alive stream with no request for this long is closed. */
export const GATEWAY_KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** A non-streamed backend answer up to this is parsed whole for its usage; past it only its tail is. */
export const GATEWAY_USAGE_PARSE_BYTES = 4 * 1024 * 1024;
/** One server-sent event from the backend; a longer one is passed on unparsed (its usage is lost, not the bytes). */
export const GATEWAY_MAX_SSE_EVENT_BYTES = 1024 * 1024;
/** Connect (TCP + TLS) to a backend within this, else try the next one. */
export const GATEWAY_BACKEND_CONNECT_TIMEOUT_MS = 5_000;
/** The backend's response head within this (a long prompt's first token can take a while). */
export const GATEWAY_BACKEND_HEADERS_TIMEOUT_MS = 120_000;
/** Silence between two body chunks of a backend answer. */
export const GATEWAY_BACKEND_BODY_TIMEOUT_MS = 120_000;
/** Kept connections per backend. */
export const GATEWAY_BACKEND_CONNECTIONS = 128;
/** Consecutive 5xx or connection failures that open a backend's breaker. */
export const GATEWAY_BREAKER_FAILURES = 3;
/** How long an opened breaker keeps a backend out before one trial request (doubles while it fails, to 16x). */
export const GATEWAY_BREAKER_COOLDOWN_MS = 10_000;
/** A 429 without retry-after / retry-after-ms cools its backend this long. */
export const GATEWAY_DEFAULT_RETRY_AFTER_MS = 10_000;
/** A backend's retry-after is believed up to this (a bogus header must not park a region for days). */
export const GATEWAY_MAX_RETRY_AFTER_MS = 10 * 60_000;
/** Sliding windows for tokens and requests per minute. */
export const GATEWAY_RATE_WINDOW_MS = 60_000;
/** Ledger rows are written in batches at least this often (never on the request's path). */
export const GATEWAY_LEDGER_FLUSH_MS = 250;
/** Rows waiting for the ledger; past it the oldest wait in the log line only (a stuck disk must not eat memory). */
export const GATEWAY_LEDGER_MAX_PENDING = 10_000;
/** Default ledger retention. */
export const GATEWAY_LEDGER_RETENTION_DAYS = 90;
/** Distinct identities with their own metric label; the rest are counted under "other". */
export const GATEWAY_METRIC_IDENTITIES = 100;
/** Content log caps (off unless configured): one entry, and the file before it is rotated once. */
export const GATEWAY_CONTENT_ENTRY_BYTES = 64 * 1024;
export const GATEWAY_CONTENT_TOTAL_BYTES = 256 * 1024 * 1024;
/**
 * Prompt text the tokenizer reads exactly for a request's estimate; the rest is counted at 4
 * characters a token, so an 8 MB prompt cannot hold the event loop for seconds.
 */
export const GATEWAY_TOKENIZE_MAX_CHARS = 256 * 1024;
/**
 * How long a gateway request waits for another outlet process's limit-counter transaction. They
 * last microseconds, and the wait holds the agent's event loop (every stream of the node), so a
 * longer wait means a stuck process: the request gets a 503 rather than freezing the node.
 */
export const GATEWAY_COUNTERS_BUSY_TIMEOUT_MS = 250;
/**
 * How long a ledger flush waits for another process's write lock. Short on purpose: the flush runs
 * on the event loop, and a busy file only delays the batch to the next timer (the rows stay queued).
 */
export const GATEWAY_LEDGER_BUSY_TIMEOUT_MS = 250;
/** A backend api-key file larger than this is not a key. */
export const GATEWAY_API_KEY_FILE_MAX_BYTES = 4_096;
/**
 * Token counts are clamped to this: far above any real request (context windows are ~1e6), and it
 * keeps every sum far below 2^53 so SQLite's integers come back exact.
 */
export const GATEWAY_MAX_TOKENS_PER_REQUEST = 1e12;
/** An Entra token is refreshed when less than this (or half its lifetime, if shorter) is left. */
export const GATEWAY_ENTRA_REFRESH_BEFORE_MS = 5 * 60_000;
/** An Entra token is used only while it has more than this left (or 10% of its lifetime, if shorter): a request still has to reach the backend. */
export const GATEWAY_ENTRA_VALIDITY_MARGIN_MS = 30_000;
export const GATEWAY_ENTRA_VALIDITY_MARGIN_FRACTION = 0.1;
/** One Entra token fetch (the whole credential chain) may take this long; a request waiting for a first token waits at most this. */
export const GATEWAY_ENTRA_FETCH_TIMEOUT_MS = 15_000;
/** Failed Entra fetches are retried after 1 s, doubling to 30 s (jittered). */
export const GATEWAY_ENTRA_RETRY_MIN_MS = 1_000;
export const GATEWAY_ENTRA_RETRY_MAX_MS = 30_000;
/**
 * Request bodies one gateway outlet holds at once (each at most GATEWAY_MAX_REQUEST_BODY_BYTES):
 * past it a request is answered 503 with retry-after, so hundreds of streams sending large
 * bodies at once cannot take the agent's memory.
 */
export const GATEWAY_MAX_BUFFERED_BODY_BYTES = 256 * 1024 * 1024;
