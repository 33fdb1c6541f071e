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
/** A ticket string longer than this is refused before decoding. */
export const MAX_TICKET_TEXT_LEN = 4_096;
export const MAX_RELAY_URL_LEN = 512;
export const MAX_RELAY_NAMES = 32;
export const MAX_RELAY_NAME_LEN = 64;

/** Access policies: bound parse effort on hostile expressions. */
export const MAX_POLICY_LEN = 2_048;
export const MAX_POLICY_DEPTH = 32;

// --- stream multiplexing ---
/** yamux's starting window; ours grows toward the measured bandwidth-delay product. */
export const STREAM_INITIAL_WINDOW = 256 * 1024;
/** Cap on one stream's window: a 40 ms, 1 GB/s path needs ~40 MiB; 16 MiB keeps memory bounded. */
export const STREAM_MAX_WINDOW = 16 * 1024 * 1024;
/** Concurrent streams on one channel. */
export const MAX_STREAMS_PER_CHANNEL = 1_024;
/** Largest stream data payload in one mux frame: fills one Noise message with its header. */
export const MUX_FRAME_HEADER_LEN = 9;
export const MUX_MAX_DATA_PAYLOAD = NOISE_MAX_PLAINTEXT - MUX_FRAME_HEADER_LEN;

// --- agent <-> relay ---
/** ws maxPayload: one Noise message plus the relay frame header, with room for control frames. */
export const RELAY_MAX_FRAME = NOISE_MAX_MESSAGE + 64;
/** Control frames (JSON) are small; anything larger is hostile. */
export const RELAY_MAX_CONTROL_FRAME = 64 * 1024;
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
export const RECONNECT_MAX_DELAY_MS = 10_000;
/** An agent must authenticate within this time of connecting, or it is dropped. */
export const RELAY_AUTH_TIMEOUT_MS = 10_000;
/** Circuits open at once per agent connection. */
export const MAX_CIRCUITS_PER_CONNECTION = 4_096;
/** Admin/RPC requests time out after this. */
export const RELAY_REQUEST_TIMEOUT_MS = 10_000;
