#!/usr/bin/env -S node --max-semi-space-size=4 --initial-old-space-size=64 --no-parallel-scavenge
// Runs the compiled CLI from dist/ (built by `npm run build`, which `npm ci` runs as `prepare`).
// Compiled output, not a runtime TypeScript loader: the loader's transpile-time helpers cost the
// data path about 40% of its throughput (measured with `npm run bench`).
// --max-semi-space-size=4 (MB) keeps V8's young generation small: every message the tunnel carries
// is a 64 KiB buffer, and with a young generation that grows to its 16 MB default, those buffers
// live through scavenges into the old generation, where only full collections free them. Measured
// on an inlet uploading 1 GiB: 50-180 full collections and 205-230 MB/s by default, 14-34 and
// 260-283 MB/s with 4 MB.
// --initial-old-space-size=64 (MB) stops V8 from running a full collection every few dozen
// megabytes carried: each message's buffers are external memory, and with V8's small starting
// limits for a small heap that external churn alone set off 50-70 full collections per gigabyte
// carried in the relay (a third of its CPU) and 10-30 in each agent, though scavenges free those buffers
// anyway. From 64 MB on there were none; resident memory did not change. Measured through a TLS
// relay with iperf3, one stream: 195-220 MB/s and 7.7-8.4 CPU s/GB before, 299-329 MB/s and
// 5.1-5.7 after (32 MB still collected as often as none).
// --no-parallel-scavenge: with a 4 MB young generation a scavenge is short, and splitting it over
// V8's helper threads costs more in handing work out and waking threads than it saves, most of all
// where the agent shares a few cores with the app and the service. Measured through TLS relays
// (`npm run bench:ab`, all three processes with and without the flag, 6-7 interleaved rounds, four
// runs): 64 keep-alive connections 1.05x, 1.07x, 1.13x and 1.10x the req/s, a new connection per
// request 1.11x, 1.06x, 1.12x and 1.05x, bulk and one-connection p50 unchanged within the noise
// (two of the runs were V8's --single-threaded-gc, which measured the same as this narrower flag;
// this one keeps concurrent marking for the relay's larger heaps).
// Tests, the demo and the benchmark start these files with the same flags
// (scripts/lib/local-processes.ts reads them from this line).
import { launch } from './launch.js';

await launch('agent');
