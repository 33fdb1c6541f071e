import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { wicketError } from '../../protocol/errors.js';
import { controlRequest } from '../../agent/control-client.js';
import { ControlServer, parseControlRequest } from '../../agent/control-server.js';
import { silentLogger } from './session-pair.js';

// The control socket's protocol on its own (the node's ops are covered by portal.test.ts with a
// real node): framing, error replies carrying the node's code, the socket file's mode, and what
// the CLI sees when no node runs.

const dirs: string[] = [];
const servers: ControlServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function home(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wicket-ctl-'));
  dirs.push(dir);
  return dir;
}

describe('control socket', () => {
  it('serves requests in order and hands the node error code back to the CLI', async () => {
    const path = join(home(), 'control.sock');
    servers.push(
      await ControlServer.listen(
        path,
        (op, args) => {
          if (op === 'inlet.delete') throw wicketError('WICKET_ERR_RESOURCE_UNKNOWN', `no inlet named ${String(args.name)}`);
          return { op, args };
        },
        silentLogger,
      ),
    );
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await controlRequest(path, 'inlet.list', { x: 1 })).toEqual({ op: 'inlet.list', args: { x: 1 } });
    await expect(controlRequest(path, 'inlet.delete', { name: 'nope' })).rejects.toMatchObject({
      code: 'WICKET_ERR_RESOURCE_UNKNOWN',
      message: 'WICKET_ERR_RESOURCE_UNKNOWN: no inlet named nope',
    });
  });

  it('no node running is WICKET_ERR_CONTROL with the fix, both without a socket file and with a stale one', async () => {
    const dir = home();
    await expect(controlRequest(join(dir, 'control.sock'), 'status')).rejects.toMatchObject({ code: 'WICKET_ERR_CONTROL', message: /agent node start/ });
    // A stale socket file: a node killed with SIGKILL leaves its socket file behind.
    const stale = join(dir, 'stale.sock');
    const crashed = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`]);
    await new Promise<void>((resolve) => crashed.stdout.once('data', () => resolve()));
    crashed.kill('SIGKILL');
    await new Promise((resolve) => crashed.once('exit', resolve));
    expect(statSync(stale).isSocket()).toBe(true);
    await expect(controlRequest(stale, 'status', {}, 2_000)).rejects.toMatchObject({ code: 'WICKET_ERR_CONTROL' });
    // And a new node replaces the stale file rather than refusing to start.
    servers.push(await ControlServer.listen(stale, () => 'alive', silentLogger));
    expect(await controlRequest(stale, 'status')).toBe('alive');
  });

  it('refuses to start over a file that is not a socket', async () => {
    const path = join(home(), 'control.sock');
    writeFileSync(path, 'not a socket');
    await expect(ControlServer.listen(path, () => null, silentLogger)).rejects.toMatchObject({ code: 'WICKET_ERR_CONTROL' });
  });

  it.each([
    ['a number', '42', /not a JSON object/],
    ['null', 'null', /not a JSON object/],
    ['an unknown op', '{"op":"exec","args":{}}', /unknown op "exec"/],
    ['an op that is not a string', '{"op":{"toString":1}}', /unknown op object/],
    ['args that are an array', '{"op":"status","args":[]}', /args must be a JSON object/],
    ['a negative id', '{"id":-1,"op":"status"}', /id must be/],
    ['an extra field', '{"op":"status","sudo":true}', /unexpected field "sudo"/],
    ['a prototype key', '{"op":"status","__proto__":{}}', /unexpected field "__proto__"/],
  ])('parseControlRequest refuses %s with WICKET_ERR_CONTROL_REQUEST', (_what, line, expected) => {
    expect(() => parseControlRequest(line)).toThrow(expected);
    expect(() => parseControlRequest(line)).toThrow(/WICKET_ERR_CONTROL_REQUEST/);
  });
});
