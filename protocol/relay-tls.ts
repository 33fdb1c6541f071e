// The TLS both ends of a relay connection speak (agents dial, the relay serves): TLS 1.3 only,
// AES-128-GCM preferred.
//
// Why these: the relay hop carries Noise ciphertext, so TLS there protects the relay's control
// plane (credentials, names, circuit ids) and hides traffic from the network, not the payload.
// Every byte is sealed and opened on each of the two relay hops, so the suite's speed is the
// tunnel's: on this project's x86-64 machines with AES-NI, OpenSSL seals 16 KiB records at about
// 5.2 GB/s with AES-128-GCM, 4.8 with AES-256-GCM and 3.5 with ChaCha20-Poly1305
// (`openssl speed -evp … -bytes 16384`). The other two stay offered, so a peer that cannot do
// AES-128-GCM still connects; the relay's order decides (honorCipherOrder). TLS 1.2 is refused:
// both ends are ours and 1.3 saves a round trip on every dial.
//
// The end-to-end channel inside keeps ChaCha20-Poly1305 (protocol/noise/crypto-suite.ts): its
// small messages go through libsodium in one call (about 3 µs to seal and open 1 KiB, against
// 15 µs through node:crypto's four calls, which is all node offers for AES-GCM), and the latency
// of a request through the tunnel is four such messages.

export const RELAY_TLS_MIN_VERSION = 'TLSv1.3';

/** OpenSSL cipher string for TLS 1.3 suites, most preferred first. */
export const RELAY_TLS_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
