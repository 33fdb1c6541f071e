// Which layer of a tunnel process a `perf` sample's function belongs to, for `npm run
// bench:layers` (cost-layers.ts). Pure: it sees only the symbol and the object file (dso) that
// `perf script -F pid,ip,sym,dso` prints for each sample (perf prints no symbol without the ip).
//
// The layers answer "where does the cost sit, per process and per layer": the kernel's TCP path
// and its copies to and from user space; each cipher; user-space copies and fills (Node's TLS
// memory BIO, ws's joins, Buffer copies and zero fills); the rest of OpenSSL; malloc; V8's garbage
// collector; and the JavaScript, V8, Node binding and libuv code around them. JIT-compiled
// JavaScript has no symbol unless node runs with --perf-basic-prof, so an unnamed sample in node's
// anonymous memory counts as JavaScript. OpenSSH's binaries are stripped: their own code (its
// Poly1305, buffers, channels) is one layer, and the ChaCha20 it calls in the system libcrypto
// shows there without a name.

export const COST_LAYERS = [
  'kernel: TCP, syscalls, scheduling',
  'kernel: copies to and from user space',
  'TLS cipher (AES-GCM)',
  'ChaCha20-Poly1305 (channel AEAD; ssh cipher)',
  'user-space copies and fills (memmove, memset, TLS BIO)',
  'OpenSSL, other (TLS records, EVP)',
  'malloc and free',
  'V8 garbage collector',
  'JavaScript, V8, Node bindings, libuv',
  "libcrypto, unnamed code (ssh's ChaCha20)",
  'OpenSSH code (stripped: Poly1305, buffers, channels)',
  'other',
] as const;

export type CostLayer = (typeof COST_LAYERS)[number];

/** One `perf script -F pid,ip,sym,dso` line. */
export interface PerfSample {
  pid: number;
  symbol: string;
  dso: string;
}

// "  12345      7f257c160dc4 node::StreamBase::Write(uv_buf_t*, unsigned long) (/usr/bin/node)": the
// dso is the last parenthesised group and holds no parentheses; the symbol may hold both.
const SAMPLE_LINE = /^\s*(\d+)\s+[0-9a-f]+\s+(.*?)\s*\(([^()]*)\)\s*$/;

/** Parses one line; undefined for anything else (headers, warnings, a truncated line). */
export function parsePerfSample(line: string): PerfSample | undefined {
  const match = SAMPLE_LINE.exec(line);
  if (match === null) return undefined;
  const pid = Number(match[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return { pid, symbol: match[2]!, dso: match[3]! };
}

const KERNEL_COPY = /copy_(to|from)_iter|copy_user|memcpy|memmove|rep_movs/;
const AES_GCM = /aesni|aes_gcm|gcm_|ghash|_gcm|GCM/;
const CHACHA_POLY = /chacha|ChaCha|poly1305|Poly1305|crypto_aead/;
const USER_COPY = /memmove|memcpy|memset|NodeBIO::(Read|Write|Peek)/;
const OPENSSL = /^(SSL_|ssl|tls1|tls13|ossl_|EVP_|OPENSSL_|CRYPTO_|BIO_|bio_|dtls|RECORD_LAYER)/;
const MALLOC = /^(__libc_)?(malloc|free|calloc|realloc|cfree)(@|$)|^_int_(malloc|free|realloc)|unlink_chunk|malloc_consolidate|tcache|^operator (new|delete)/;
const GC = /Scaveng|MarkCompact|Sweeper|Evacuat|ConcurrentMarking|MinorMC|IncrementalMarking|::Heap::|GCTracer/;

/** The layer a sample's function belongs to. */
export function costLayer(symbol: string, dso: string): CostLayer {
  if (dso.startsWith('[kernel')) return KERNEL_COPY.test(symbol) ? 'kernel: copies to and from user space' : 'kernel: TCP, syscalls, scheduling';
  if (AES_GCM.test(symbol)) return 'TLS cipher (AES-GCM)';
  if (CHACHA_POLY.test(symbol) || /sodium/.test(dso)) return 'ChaCha20-Poly1305 (channel AEAD; ssh cipher)';
  if (USER_COPY.test(symbol)) return 'user-space copies and fills (memmove, memset, TLS BIO)';
  // Node links OpenSSL in with its symbols; the system libcrypto ssh uses names only its API.
  if (symbol === '[unknown]' && /libcrypto/.test(dso)) return "libcrypto, unnamed code (ssh's ChaCha20)";
  if (OPENSSL.test(symbol) || /libssl|libcrypto/.test(dso)) return 'OpenSSL, other (TLS records, EVP)';
  if (MALLOC.test(symbol)) return 'malloc and free';
  if (GC.test(symbol)) return 'V8 garbage collector';
  if (/\/sshd?$/.test(dso)) return 'OpenSSH code (stripped: Poly1305, buffers, channels)';
  if (/\/node$|perf-\d+\.map|^\[unknown\]$|^\[JIT\]/.test(dso)) return 'JavaScript, V8, Node bindings, libuv';
  return 'other';
}
