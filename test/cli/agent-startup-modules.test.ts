import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../scripts/lib/local-processes.js';

// A plain TCP agent must not load the gateway's libraries: their heap makes every major GC on the
// data path slower (measured once: bulk through an inlet fell by a third when node-config loaded
// zod). `agent status` loads the same static module graph as `agent node start` (cli/agent.ts
// imports every command and the node with it); only a gateway outlet, --metrics or `agent usage`
// may pull these in, by dynamic import.
//
// zod is no longer on the list: node-config.ts validates every node config with it. That third
// was measured before the agents ran with --initial-old-space-size=64; re-measured with zod
// preloaded into every process of one side (`BENCH_AB_B_ARGS="--import=…/zod/index.js" npm run
// bench:ab -- .`, TLS relays, 3 interleaved rounds), without → with: iperf3 1 stream 322 → 330 MB/s
// (1.02×), CPU s/GB 4.97 → 4.78 (0.96×), 64 connections 35,669 → 36,433 req/s (1.02×), a new
// connection per request 4,484 → 4,418/s (0.99×), p50 256 → 291 µs (1.14×, within the rounds'
// spread of 237–310 µs). The `yaml` package (node configs in YAML) may load in a plain agent too.

const GATEWAY_ONLY = ['undici', '@azure/identity', '@azure/msal-node', 'prom-client', 'better-sqlite3', 'gpt-tokenizer'];

describe('agent startup', () => {
  it('loads none of the gateway-only libraries', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wicket-modules-'));
    try {
      const hook = join(dir, 'log-loads.mjs');
      writeFileSync(
        hook,
        `import { register } from 'node:module';\nregister('data:text/javascript,' + encodeURIComponent('export async function resolve(s, c, n) { const r = await n(s, c); process.stderr.write("LOADED " + r.url + "\\\\n"); return r; }'));\n`,
      );
      const result = spawnSync(process.execPath, ['--import', hook, join(REPO_ROOT, 'bin', 'agent.js'), 'status'], {
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, WICKET_HOME: join(dir, 'home') },
      });
      const loaded = result.stderr.split('\n').filter((line) => line.startsWith('LOADED ')).map((line) => line.slice(7));
      // The hook saw the program's own modules, so an empty list cannot pass for a clean one.
      expect(loaded.some((url) => url.includes('/dist/agent/node.js'))).toBe(true);
      for (const name of GATEWAY_ONLY) expect(loaded.filter((url) => url.includes(`/node_modules/${name}/`)), name).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
