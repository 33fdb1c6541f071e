// The sodium-native (libsodium) functions Wicket uses: the IETF ChaCha20-Poly1305 AEAD of
// RFC 8439, combined mode (ciphertext followed by its 16-byte tag), and X25519 (RFC 7748). All
// throw on bad sizes; decrypt throws when the tag does not verify (libsodium checks the tag
// before it writes `m`), and crypto_scalarmult throws on a low-order `p` (an all-zero result).
declare module 'sodium-native' {
  /** c = ENCRYPT(k, npub, ad, m) ‖ tag; c.byteLength must be m.byteLength + 16. Returns c's length. */
  export function crypto_aead_chacha20poly1305_ietf_encrypt(
    c: Uint8Array,
    m: Uint8Array,
    ad: Uint8Array | null,
    nsec: null,
    npub: Uint8Array,
    k: Uint8Array,
  ): number;
  /** m = DECRYPT(k, npub, ad, c); m.byteLength must be c.byteLength - 16. Throws on a bad tag. */
  export function crypto_aead_chacha20poly1305_ietf_decrypt(
    m: Uint8Array,
    nsec: null,
    c: Uint8Array,
    ad: Uint8Array | null,
    npub: Uint8Array,
    k: Uint8Array,
  ): number;
  /** q = X25519(n, 9): the public key of private key n (clamped internally). All 32 bytes. */
  export function crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void;
  /** q = X25519(n, p) (n clamped internally); throws when p has low order. All 32 bytes. */
  export function crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  /** Fills buf with bytes from the OS CSPRNG. */
  export function randombytes_buf(buf: Uint8Array): void;
}
