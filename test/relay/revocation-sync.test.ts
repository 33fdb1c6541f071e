import { describe, expect, it } from 'vitest';
import { Identity } from '../../protocol/identity.js';
import type { RelayToAgent } from '../../protocol/relay-messages.js';
import { RawRelayClient } from '../helpers/raw-relay-client.js';
import { relaysStoppedAfterEach, type TestRelay } from './relay-fixture.js';

// Agents keep the project's revoked set (DESIGN.md property 5). The relay pushes each revocation
// event in seq order, and re-sends the ones that still matter right behind every `welcome`, from
// the seq the agent says it last saw: a push missed while away is never lost.

const relay = relaysStoppedAfterEach();

/** Reconnects `member` with auth, saying it last saw `after`; returns what came behind the welcome. */
async function reconnect(r: TestRelay, member: RawRelayClient, after: number): Promise<{ client: RawRelayClient; notices: RelayToAgent[] }> {
  const client = await RawRelayClient.connect(r.relay.url);
  await client.auth(member.identity!, member.credential!, after);
  const notices: RelayToAgent[] = [];
  for (;;) {
    const message = await client.nextMatching((m) => m.t === 'revoked' || m.t === 'reinstated' || m.t === 'revocations-synced', 'a revocation notice');
    notices.push(message);
    if (message.t === 'revocations-synced') return { client, notices };
  }
}

describe('revocation re-sync', () => {
  it('an agent offline during the revoke learns it when it reconnects, before anything else; from its last seq, nothing is repeated', async () => {
    const r = await relay();
    const away = await r.member({ outlet: 'true' }, ['svc']);
    const revokedOne = await r.member({ inlet: 'true' });
    const revokedTwo = await r.member({ inlet: 'true' });
    await away.close();
    await r.relay.revoke(revokedOne.identity!.identifier);
    await r.relay.revoke(revokedTwo.identity!.identifier);

    const { client, notices } = await reconnect(r, away, 0);
    expect(notices.map((n) => [n.t, 'identifier' in n ? n.identifier : undefined, 'seq' in n ? n.seq : undefined])).toEqual([
      ['revoked', revokedOne.identity!.identifier, 1],
      ['revoked', revokedTwo.identity!.identifier, 2],
      ['revocations-synced', undefined, 2],
    ]);
    // Nothing else was sent before the re-sync finished (the welcome came first, then these).
    expect(client.controls).toEqual([]);
    await client.close();

    const { notices: fromTwo } = await reconnect(r, away, 2);
    expect(fromTwo).toEqual([{ t: 'revocations-synced', seq: 2 }]);
    const { notices: fromOne } = await reconnect(r, away, 1);
    expect(fromOne.map((n) => n.t)).toEqual(['revoked', 'revocations-synced']);
  });

  it('an agent is never sent its own revocation events, and events past the keep window are not re-sent', async () => {
    const r = await relay();
    const member = await r.member();
    const victim = await r.member();
    await r.relay.revoke(victim.identity!.identifier);
    expect((await reconnect(r, member, 0)).notices.map((n) => n.t)).toEqual(['revoked', 'revocations-synced']);
    // Once every credential the revoked identity held has expired, the handshake refuses it on
    // expiry alone: the event no longer needs to travel.
    r.clock.advance(r.relay.authority.revocationKeepMs + 1);
    expect((await reconnect(r, member, 0)).notices).toEqual([{ t: 'revocations-synced', seq: 1 }]);
  });

  it('a reinstate is pushed as its own event, re-synced in order after the revoke, and lets the member back in', async () => {
    const r = await relay();
    const admin = await RawRelayClient.connect(r.relay.url);
    await admin.enroll(Identity.generate(), r.relay.adminTicket!.text.reveal());
    const bystander = await r.member();
    const member = await r.member({ inlet: 'true' });
    await r.relay.revoke(member.identity!.identifier);
    expect(await bystander.next('revoked')).toMatchObject({ seq: 1, identifier: member.identity!.identifier });

    const response = await admin.request('member.reinstate', { identifier: member.identity!.identifier });
    expect(response.result).toMatchObject({ identifier: member.identity!.identifier, reinstatedAt: expect.any(String) });
    expect(await bystander.next('reinstated')).toEqual({ t: 'reinstated', seq: 2, identifier: member.identity!.identifier });
    expect((await reconnect(r, bystander, 0)).notices.map((n) => `${n.t}:${'seq' in n ? n.seq : ''}`)).toEqual(['revoked:1', 'reinstated:2', 'revocations-synced:2']);

    // The reinstated key authenticates again with its old credential.
    const back = await RawRelayClient.connect(r.relay.url);
    expect((await back.auth(member.identity!, member.credential!)).identifier).toBe(member.identity!.identifier);
    // Reinstating a member that is not revoked is refused with a code.
    const twice = await admin.request('member.reinstate', { identifier: member.identity!.identifier });
    expect(twice.error?.code).toBe('WICKET_ERR_MEMBER_NOT_REVOKED');
  });
});
