import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseNodeConfig } from '../../agent/node-config.js';
import { REPO_ROOT } from '../../scripts/lib/local-processes.js';

// The node configs under examples/nodes/ are what people copy: each must pass the node's own parser.

const folder = join(REPO_ROOT, 'examples', 'nodes');

describe('examples/nodes', () => {
  for (const file of readdirSync(folder).filter((f) => f.endsWith('.json'))) {
    it(`${file} is a valid node config`, () => {
      const config = parseNodeConfig(readFileSync(join(folder, file), 'utf8'), folder);
      expect(config.outlets.length + config.inlets.length).toBeGreaterThan(0);
    });
  }

  it('gateway.json is a two-region pool with limits', () => {
    const config = parseNodeConfig(readFileSync(join(folder, 'gateway.json'), 'utf8'), folder);
    const gateway = config.outlets[0]?.gateway;
    expect(gateway?.backends.map((b) => [b.name, b.priority, b.auth.kind])).toEqual([['eastus', 0, 'entra'], ['swedencentral', 1, 'entra']]);
    expect(gateway?.limits).toHaveLength(2);
  });
});
