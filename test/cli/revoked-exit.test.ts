import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_REVOKED } from '../../cli/cli-errors.js';
import { enrollAgent, runAgent, runCommand, startNodeProcess, startRelayProcess, stopAll } from '../../scripts/lib/local-processes.js';

// A revoked node exits with EXIT_REVOKED (3), not 1 like any failure: the systemd units carry
// `RestartPreventExitStatus=3`, so a revoked node is not restarted forever. Both ways it meets
// the revocation: cut while running, and refused when it starts again.

afterAll(stopAll);

const EXIT_WITHIN_MS = 5_000;

describe('a revoked node', () => {
  it('exits with code 3 within seconds of `relay member revoke`, and again with 3 when restarted', async () => {
    expect(EXIT_REVOKED).toBe(3);
    const relay = await startRelayProcess();
    const agent = await enrollAgent(relay, { attributes: ['inlet'] });
    const node = await startNodeProcess(agent);

    const revoked = await runCommand('relay', ['member', 'revoke', agent.identifier, '--data', relay.dataDir]);
    expect(revoked.code).toBe(0);
    const started = Date.now();
    const exit = await Promise.race([
      node.proc.exited,
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), EXIT_WITHIN_MS).unref()),
    ]);
    expect(exit, node.proc.tail()).toEqual({ code: 3, signal: null });
    console.log(`revoked node exited with 3 after ${Date.now() - started} ms`);
    expect(node.proc.stderrLines.join('\n')).toMatch(/WICKET_ERR_REVOKED/);

    // What systemd would do without RestartPreventExitStatus: start it again. Refused, 3 again.
    const restarted = await runAgent(agent.home, ['node', 'start'], { timeoutMs: 20_000 });
    expect(restarted.code, restarted.stderr).toBe(3);
    expect(restarted.stderr).toMatch(/WICKET_ERR_REVOKED/);
  });
});
