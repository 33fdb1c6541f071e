import { describe, expect, it } from 'vitest';
import { costLayer, parsePerfSample } from '../../scripts/bench/cost-layer.js';

// `npm run bench:layers` shares each tunnel process's CPU out over layers by its perf samples. The
// lines below are real `perf script -F pid,ip,sym,dso` lines from an inlet, a relay and ssh.

describe('parsePerfSample', () => {
  it('reads pid, symbol and object file, the symbol holding spaces and parentheses', () => {
    expect(parsePerfSample('   19494      7f8bb28a6a04 node::StreamBase::Write(uv_buf_t*, unsigned long) (/usr/bin/node)')).toEqual({
      pid: 19494,
      symbol: 'node::StreamBase::Write(uv_buf_t*, unsigned long)',
      dso: '/usr/bin/node',
    });
    expect(parsePerfSample('19424      7f257c160dc4 [unknown] (/tmp/perf-19424.map)')).toEqual({ pid: 19424, symbol: '[unknown]', dso: '/tmp/perf-19424.map' });
  });

  it('refuses what is not a sample line', () => {
    for (const line of ['', '19424 ', 'Warning: 3 samples lost', '   0  ffff _copy_to_iter ([kernel.kallsyms])', '19424 zz _copy_to_iter ([kernel.kallsyms])', '19424 ffff _copy_to_iter']) {
      expect(parsePerfSample(line), line).toBeUndefined();
    }
  });
});

describe('costLayer', () => {
  const cases: [string, string, string][] = [
    ['_copy_to_iter', '[kernel.kallsyms]', 'kernel: copies to and from user space'],
    ['finish_task_switch.isra.0', '[kernel.kallsyms]', 'kernel: TCP, syscalls, scheduling'],
    ['tcp_sendmsg_locked', '[kernel.kallsyms]', 'kernel: TCP, syscalls, scheduling'],
    ['_aesni_ctr32_ghash_6x', '/usr/bin/node', 'TLS cipher (AES-GCM)'],
    ['ChaCha20_16x', '/usr/bin/node', 'ChaCha20-Poly1305 (channel AEAD; ssh cipher)'],
    ['crypto_onetimeauth_poly1305_donna', '/work/main/node_modules/sodium-native/prebuilds/linux-x64/sodium-native.node', 'ChaCha20-Poly1305 (channel AEAD; ssh cipher)'],
    ['__memmove_avx512_unaligned_erms', '/usr/lib/x86_64-linux-gnu/libc.so.6', 'user-space copies and fills (memmove, memset, TLS BIO)'],
    ['node::crypto::NodeBIO::Write(char const*, unsigned long)', '/usr/bin/node', 'user-space copies and fills (memmove, memset, TLS BIO)'],
    ['ssl3_write_bytes', '/usr/bin/node', 'OpenSSL, other (TLS records, EVP)'],
    ['_int_malloc', '/usr/lib/x86_64-linux-gnu/libc.so.6', 'malloc and free'],
    ['cfree@GLIBC_2.2.5', '/usr/lib/x86_64-linux-gnu/libc.so.6', 'malloc and free'],
    ['v8::internal::ScavengerCollector::CollectGarbage()', '/usr/bin/node', 'V8 garbage collector'],
    ['Builtins_KeyedLoadIC_Megamorphic', '/usr/bin/node', 'JavaScript, V8, Node bindings, libuv'],
    ['uv__io_poll', '/usr/bin/node', 'JavaScript, V8, Node bindings, libuv'],
    ['[unknown]', '/tmp/perf-19424.map', 'JavaScript, V8, Node bindings, libuv'],
    ['[unknown]', '/usr/lib/x86_64-linux-gnu/libcrypto.so.3', "libcrypto, unnamed code (ssh's ChaCha20)"],
    ['EVP_Cipher', '/usr/lib/x86_64-linux-gnu/libcrypto.so.3', 'OpenSSL, other (TLS records, EVP)'],
    ['[unknown]', '/usr/bin/ssh', 'OpenSSH code (stripped: Poly1305, buffers, channels)'],
    ['[unknown]', '/usr/sbin/sshd', 'OpenSSH code (stripped: Poly1305, buffers, channels)'],
    ['__strcmp_evex', '/usr/lib/x86_64-linux-gnu/libc.so.6', 'other'],
  ];
  it.each(cases)('%s in %s is %s', (symbol, dso, layer) => {
    expect(costLayer(symbol, dso)).toBe(layer);
  });
});
