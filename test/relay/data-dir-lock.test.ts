import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isWicketError } from '../../protocol/errors.js';
import { startRelay } from '../../relay/server.js';
import { runCommand, startRelayProcess, stopAll, tempDir } from '../../scripts/lib/local-processes.js';
import { testLogger } from './relay-fixture.js';

// One relay per data folder (relay/data-dir-lock.ts): a second `relay start` is refused with
// WICKET_ERR_DATA_DIR_LOCKED naming the holder's pid, the offline commands keep working beside a
// running relay, and a lock left by a relay that died is taken over.

afterEach(stopAll);

/** The pid of a process that has already exited (and been reaped): certainly not a live relay. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  return child.pid;
}

function lockHolder(dataDir: string): number {
  return Number(readFileSync(join(dataDir, 'relay.lock'), 'utf8'));
}

describe('the data folder lock', () => {
  it('refuses a second relay on one folder, naming the folder and the holder; offline commands still work; released on exit', async () => {
    const relay = await startRelayProcess();
    expect(lockHolder(relay.dataDir)).toBe(relay.proc.pid);

    const second = await runCommand('relay', ['start', '--listen', '127.0.0.1:0', '--data', relay.dataDir, '--json']);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/^error: WICKET_ERR_DATA_DIR_LOCKED: /m);
    expect(second.stderr).toContain(relay.dataDir);
    expect(second.stderr).toContain(`pid ${relay.proc.pid}`);
    expect(second.stdout).toBe('');
    // The refused relay did not take or remove the lock.
    expect(lockHolder(relay.dataDir)).toBe(relay.proc.pid);

    // `relay ticket …` and `relay member …` read the folder without the lock, beside the relay.
    for (const args of [['ticket', 'create', '--attribute', 'x'], ['ticket', 'list'], ['member', 'list']]) {
      const result = await runCommand('relay', [...args, '--data', relay.dataDir]);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
    }

    expect((await relay.proc.kill('SIGTERM')).code).toBe(0);
    expect(existsSync(join(relay.dataDir, 'relay.lock'))).toBe(false);
    const again = await startRelayProcess({ dataDir: relay.dataDir });
    expect(lockHolder(relay.dataDir)).toBe(again.proc.pid);
  });

  it('takes over a lock left by a relay that died (SIGKILL) or by a dead pid, and says so in the log', async () => {
    const crashed = await startRelayProcess();
    await crashed.proc.kill('SIGKILL');
    expect(lockHolder(crashed.dataDir)).toBe(crashed.proc.pid);
    const after = await startRelayProcess({ dataDir: crashed.dataDir, env: { WICKET_LOG_LEVEL: 'info' } });
    expect(lockHolder(crashed.dataDir)).toBe(after.proc.pid);
    const log = await after.proc.waitForLog({ msg: 'taking over the data folder lock of a relay that is no longer running' });
    expect(log.stalePid).toBe(crashed.proc.pid);
    await after.proc.kill('SIGTERM');

    const stale = deadPid();
    writeFileSync(join(crashed.dataDir, 'relay.lock'), `${stale}\n`);
    const third = await startRelayProcess({ dataDir: crashed.dataDir, env: { WICKET_LOG_LEVEL: 'info' } });
    expect((await third.proc.waitForLog({ msg: 'taking over the data folder lock of a relay that is no longer running' })).stalePid).toBe(stale);
    await third.proc.kill('SIGTERM');

    // Not a pid at all (a damaged file): also stale.
    writeFileSync(join(crashed.dataDir, 'relay.lock'), 'garbage');
    const fourth = await startRelayProcess({ dataDir: crashed.dataDir });
    expect(lockHolder(crashed.dataDir)).toBe(fourth.proc.pid);
  });

  it('in one process: a second startRelay on the folder is refused until the first closes', async () => {
    const dataDir = tempDir('wicket-lock-');
    const options = { dataDir, logger: testLogger(), listen: { host: '127.0.0.1', port: 0 } };
    const first = await startRelay(options);
    try {
      const refused = await startRelay(options).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isWicketError(refused, 'WICKET_ERR_DATA_DIR_LOCKED')).toBe(true);
      expect((refused as Error).message).toContain(`pid ${process.pid}`);
    } finally {
      await first.close();
    }
    expect(existsSync(join(dataDir, 'relay.lock'))).toBe(false);
    // A lock naming this very pid that this process does not hold (a container's relay is pid 1
    // on every start): stale, taken over.
    writeFileSync(join(dataDir, 'relay.lock'), `${process.pid}\n`);
    const second = await startRelay(options);
    expect(lockHolder(dataDir)).toBe(process.pid);
    await second.close();
    expect(existsSync(join(dataDir, 'relay.lock'))).toBe(false);
  });
});
