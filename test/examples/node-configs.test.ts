import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNodeConfig, parseNodeConfig } from '../../agent/node-config.js';
import { REPO_ROOT } from '../../scripts/lib/local-processes.js';

// The node configs under examples/nodes/ are what people copy: each must pass the node's own parser.

const folder = join(REPO_ROOT, 'examples', 'nodes');

describe('examples/nodes', () => {
  for (const file of readdirSync(folder).filter((f) => /\.(json|ya?ml)$/.test(f))) {
    it(`${file} is a valid node config`, () => {
      const config = loadNodeConfig(join(folder, file));
      expect(config.outlets.length + config.inlets.length).toBeGreaterThan(0);
    });
  }

  it('edge.yaml says in YAML what inlet.json says in JSON', () => {
    const { metrics, ...fromYaml } = loadNodeConfig(join(folder, 'edge.yaml'));
    expect(fromYaml).toEqual(loadNodeConfig(join(folder, 'inlet.json')));
    expect(metrics).toEqual({ host: '127.0.0.1', port: 9464 });
  });

  it('gateway.json is a two-region pool with limits', () => {
    const config = parseNodeConfig(readFileSync(join(folder, 'gateway.json'), 'utf8'), folder);
    const gateway = config.outlets[0]?.gateway;
    expect(gateway?.backends.map((b) => [b.name, b.priority, b.auth.kind])).toEqual([['eastus', 0, 'entra'], ['swedencentral', 1, 'entra']]);
    expect(gateway?.limits).toHaveLength(2);
  });
});
