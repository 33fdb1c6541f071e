import { describe, expect, it } from 'vitest';
import { verifyCredential } from '../../protocol/credential.js';
import { relaysStoppedAfterEach } from './relay-fixture.js';

// Timers of a live connection: keepalive drops a silent peer; credentials are refreshed while the
// member stays connected. Both use injected small periods, never a timing assertion.

const relay = relaysStoppedAfterEach();

describe('keepalive', () => {
  it('drops a silent peer (one that no longer answers pings) and closes its circuits, while a live peer stays', async () => {
    const r = await relay({ settings: { keepaliveIntervalMs: 100, keepaliveDeadAfterMs: 400, keepaliveSweepMs: 50 } });
    const silent = await r.member({}, ['svc']);
    await silent.register('svc');
    const live = await r.member();
    const opened = await live.open('svc');
    if (opened.t !== 'opened') throw new Error('open failed');
    // Stop reading: the silent peer's ws never sees the relay's pings, so it never answers.
    silent.ws.pause();
    expect(await live.next('close', () => true, 5_000)).toEqual({ t: 'close', circuit: opened.circuit, code: 'WICKET_ERR_CIRCUIT_CLOSED' });
    expect(r.relay.connections.isConnected(silent.identity!.identifier)).toBe(false);
    expect(r.relay.router.serversOf('svc')).toBe(0);
    // The live peer answered every ping meanwhile (its ws replies automatically) and is still served.
    expect(r.relay.connections.isConnected(live.identity!.identifier)).toBe(true);
    expect(await live.open('svc')).toMatchObject({ t: 'error', code: 'WICKET_ERR_RELAY_NAME_UNKNOWN' });
  });
});

describe('credential refresh', () => {
  it('pushes a fresh credential to a live member when half its lifetime is left', async () => {
    const r = await relay({ credentialTtlMs: 400 });
    const member = await r.member({ team: 'a' }, ['svc']);
    const first = verifyCredential(member.credential!, { authorityPublicKey: r.relay.authority.publicKey, subject: member.identity!.identifier, now: r.clock.now() });
    expect(first.expiresAt - first.issuedAt).toBe(400);
    // Each pushed credential is checked as it arrives (verifyCredential refuses an expired one).
    const credentials = [];
    for (let i = 0; i < 2; i++) {
      const pushed = await member.next('credential', () => true, 5_000);
      credentials.push(
        verifyCredential(Buffer.from(pushed.credential, 'base64url'), {
          authorityPublicKey: r.relay.authority.publicKey,
          subject: member.identity!.identifier,
          now: r.clock.now(),
        }),
      );
    }
    expect(credentials[0]!.expiresAt).toBeGreaterThan(first.expiresAt);
    expect(credentials[1]!.expiresAt).toBeGreaterThan(credentials[0]!.expiresAt);
    expect(credentials[1]!.attributes).toEqual({ team: 'a', 'wicket:relays': 'svc' });
  });
});
