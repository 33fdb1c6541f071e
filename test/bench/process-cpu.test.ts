import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { memoryBytes, processTree, treeCpuSeconds } from '../../scripts/bench/process-cpu.js';

// The bench charges a tunnel with the CPU of its whole process tree (sshd works in forked
// children): the tree must include grandchildren, and a child that already exited must still
// count, through its parent's reaped-children times.

function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error(`not within ${timeoutMs} ms`));
      else setTimeout(poll, 50);
    };
    poll();
  });
}

describe('process-cpu', () => {
  it('finds a grandchild in the process tree', async () => {
    const shell = spawn('sh', ['-c', 'sh -c "sleep 5" & wait'], { stdio: 'ignore' });
    try {
      await waitFor(() => processTree([shell.pid!]).length >= 3, 5_000);
      expect(processTree([shell.pid!])).toContain(shell.pid!);
    } finally {
      shell.kill('SIGKILL');
    }
  });

  it('counts the CPU of a child that exited and was reaped (cutime)', async () => {
    // The child burns ~0.5 s of CPU and exits; its shell parent lives on, having reaped it.
    const burn = `${JSON.stringify(process.execPath)} -e "const t=Date.now(); while (Date.now()-t<500);"`;
    const shell = spawn('sh', ['-c', `${burn}; echo done; sleep 5`], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const before = treeCpuSeconds([shell.pid!]);
      await new Promise<void>((resolve) => shell.stdout!.once('data', () => resolve()));
      expect(treeCpuSeconds([shell.pid!]) - before).toBeGreaterThan(0.3);
    } finally {
      shell.kill('SIGKILL');
    }
  });

  it('reads resident memory, NaN for a process that is gone', () => {
    expect(memoryBytes(process.pid, 'VmRSS')).toBeGreaterThan(1024 * 1024);
    expect(memoryBytes(process.pid, 'VmHWM')).toBeGreaterThan(1024 * 1024);
    expect(memoryBytes(2 ** 22 + 17, 'VmRSS')).toBeNaN();
  });
});
