import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Identity } from '../../protocol/identity.js';
import { RELAY_MAX_CONTROL_FRAME, RELAY_MAX_FRAME } from '../../protocol/limits.js';
import { base64url, encodeControl, encodeData, FRAME_CONTROL } from '../../protocol/relay-frames.js';
import type { AgentToRelay } from '../../protocol/relay-messages.js';
import { decodeTicket, ticketKeyFromSecret, ticketProofMessage } from '../../protocol/ticket.js';
import { RawRelayClient } from '../helpers/raw-relay-client.js';
import { ticketEvidence } from '../helpers/ticket-proof.js';
import { startTestRelay, type TestRelay } from './relay-fixture.js';

// Hostile input never crashes the relay (DESIGN.md property 9): each attack closes that one
// session with a clear code, the bystanders' circuit keeps forwarding, and the attacker leaves
// nothing behind (no circuits, no registrations).

let r: TestRelay;
let bystanders: { inlet: RawRelayClient; outlet: RawRelayClient; circuit: number };

beforeAll(async () => {
  r = await startTestRelay();
  const outlet = await r.member({}, ['steady']);
  await outlet.register('steady');
  const inlet = await r.member();
  const opened = await inlet.open('steady');
  if (opened.t !== 'opened') throw new Error('bystander circuit did not open');
  await outlet.next('incoming');
  bystanders = { inlet, outlet, circuit: opened.circuit };
});
afterAll(async () => {
  await r.stop();
});

let round = 0;
/** The bystanders' circuit still forwards, and the relay holds only their circuit and name. */
async function bystandersUnharmed(): Promise<void> {
  const frame = encodeData(bystanders.circuit, Buffer.from(`still fine ${round++}`));
  bystanders.inlet.sendRaw(frame);
  expect((await bystanders.outlet.nextData()).equals(frame)).toBe(true);
  expect(r.relay.router.circuitCount).toBe(1);
  expect(r.relay.router.serversOf('steady')).toBe(1);
  expect(r.relay.router.serversOf('attacker')).toBe(0);
}

/** An authenticated attacker that also holds a registration and a circuit, to prove cleanup. */
async function entrenchedAttacker(): Promise<RawRelayClient> {
  const attacker = await r.member({}, ['attacker']);
  await attacker.register('attacker');
  expect((await attacker.open('steady')).t).toBe('opened');
  await bystanders.outlet.next('incoming');
  expect(r.relay.router.circuitCount).toBe(2);
  return attacker;
}

async function expectRefused(client: RawRelayClient, code: string): Promise<void> {
  const refusal = await client.refusal();
  expect(refusal.code).toBe(code);
  expect(refusal.close).toEqual({ code: 1008, reason: code });
}

describe('hostile frames close one session with a code', () => {
  it('garbage (an unknown frame type byte) → WICKET_ERR_FRAME_UNKNOWN_TYPE', async () => {
    const attacker = await entrenchedAttacker();
    attacker.sendRaw(Buffer.from([0x7f, 1, 2, 3, 4, 5]));
    await expectRefused(attacker, 'WICKET_ERR_FRAME_UNKNOWN_TYPE');
    // The bystander outlet is told the attacker's circuit closed.
    await bystanders.outlet.next('close', (m) => m.code === 'WICKET_ERR_CIRCUIT_CLOSED');
    await bystandersUnharmed();
  });

  it('an empty frame → WICKET_ERR_FRAME_TRUNCATED', async () => {
    const attacker = await r.member();
    attacker.sendRaw(Buffer.alloc(0));
    await expectRefused(attacker, 'WICKET_ERR_FRAME_TRUNCATED');
    await bystandersUnharmed();
  });

  it('a frame over maxPayload is cut by the WebSocket layer with close 1009, before it is buffered', async () => {
    const attacker = await entrenchedAttacker();
    attacker.sendRaw(Buffer.alloc(RELAY_MAX_FRAME + 1, 0));
    const close = await attacker.closed;
    expect(close.code).toBe(1009);
    await bystanders.outlet.next('close', (m) => m.code === 'WICKET_ERR_CIRCUIT_CLOSED');
    await bystandersUnharmed();
  });

  it('an oversized control frame → WICKET_ERR_FRAME_TOO_LARGE', async () => {
    const attacker = await r.member();
    const frame = Buffer.alloc(RELAY_MAX_CONTROL_FRAME + 10, 0x20);
    frame[0] = FRAME_CONTROL;
    attacker.sendRaw(frame);
    await expectRefused(attacker, 'WICKET_ERR_FRAME_TOO_LARGE');
    await bystandersUnharmed();
  });

  it('bad JSON → WICKET_ERR_FRAME_MALFORMED', async () => {
    const attacker = await entrenchedAttacker();
    attacker.sendRaw(Buffer.concat([Buffer.from([FRAME_CONTROL]), Buffer.from('{"t":"open",')]));
    await expectRefused(attacker, 'WICKET_ERR_FRAME_MALFORMED');
    await bystanders.outlet.next('close');
    await bystandersUnharmed();
  });

  it('a text WebSocket message → WICKET_ERR_FRAME_MALFORMED', async () => {
    const attacker = await r.member();
    attacker.sendRaw('{"t":"open","id":1,"name":"steady"}', false);
    await expectRefused(attacker, 'WICKET_ERR_FRAME_MALFORMED');
    await bystandersUnharmed();
  });

  it('an unknown control type → WICKET_ERR_RELAY_PROTOCOL', async () => {
    const attacker = await r.member();
    attacker.sendRaw(Buffer.concat([Buffer.from([FRAME_CONTROL]), Buffer.from('{"t":"shutdown"}')]));
    await expectRefused(attacker, 'WICKET_ERR_RELAY_PROTOCOL');
    await bystandersUnharmed();
  });

  it('a smuggled extra field → WICKET_ERR_RELAY_PROTOCOL', async () => {
    const attacker = await r.member();
    attacker.sendRaw(Buffer.concat([Buffer.from([FRAME_CONTROL]), Buffer.from('{"t":"open","id":1,"name":"steady","as":"admin"}')]));
    await expectRefused(attacker, 'WICKET_ERR_RELAY_PROTOCOL');
    await bystandersUnharmed();
  });

  it('an unknown admin op → WICKET_ERR_RELAY_PROTOCOL (the codec refuses it)', async () => {
    const attacker = await r.member();
    attacker.sendRaw(Buffer.concat([Buffer.from([FRAME_CONTROL]), Buffer.from('{"t":"request","id":1,"op":"cluster.destroy","args":{}}')]));
    await expectRefused(attacker, 'WICKET_ERR_RELAY_PROTOCOL');
    await bystandersUnharmed();
  });

  it('a relay-to-agent message sent by an agent (a forged `incoming`) → WICKET_ERR_RELAY_PROTOCOL', async () => {
    const attacker = await r.member();
    attacker.sendControl({ t: 'incoming', circuit: bystanders.circuit, name: 'steady', peer: attacker.identity!.identifier });
    await expectRefused(attacker, 'WICKET_ERR_RELAY_PROTOCOL');
    await bystandersUnharmed();
  });

  it("DATA on someone else's circuit → WICKET_ERR_RELAY_PROTOCOL, and nothing reaches the circuit's ends", async () => {
    const attacker = await entrenchedAttacker();
    attacker.sendRaw(encodeData(bystanders.circuit, Buffer.from('injected')));
    await expectRefused(attacker, 'WICKET_ERR_RELAY_PROTOCOL');
    await bystanders.outlet.next('close');
    expect(bystanders.inlet.data).toEqual([]);
    await bystandersUnharmed();
  });

  it("close of someone else's circuit → WICKET_ERR_RELAY_PROTOCOL, and the circuit stays", async () => {
    const attacker = await r.member();
    attacker.sendControl({ t: 'close', circuit: bystanders.circuit, code: 'WICKET_ERR_CIRCUIT_CLOSED' });
    await expectRefused(attacker, 'WICKET_ERR_RELAY_PROTOCOL');
    await bystandersUnharmed();
  });
});

describe('hostile connections below the WebSocket layer', () => {
  it('a plain HTTP request gets 426 and raw TCP garbage is dropped, and the relay keeps serving', async () => {
    const response = await fetch(r.relay.url.replace('ws://', 'http://') + '/');
    expect(response.status).toBe(426);
    await response.text();
    await new Promise<void>((resolve) => {
      const socket = connect(r.relay.port, '127.0.0.1', () => socket.end(Buffer.alloc(4096, 0xff)));
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
      socket.resume();
    });
    await bystandersUnharmed();
  });
});

describe('hostile authentication', () => {
  it('a frame before auth (register) → WICKET_ERR_RELAY_PROTOCOL', async () => {
    const client = await RawRelayClient.connect(r.relay.url);
    client.sendControl({ t: 'register', id: 1, name: 'steady' });
    await expectRefused(client, 'WICKET_ERR_RELAY_PROTOCOL');
    await bystandersUnharmed();
  });

  it('DATA before auth → WICKET_ERR_RELAY_PROTOCOL', async () => {
    const client = await RawRelayClient.connect(r.relay.url);
    client.sendRaw(encodeData(bystanders.circuit, Buffer.from('x')));
    await expectRefused(client, 'WICKET_ERR_RELAY_PROTOCOL');
    await bystandersUnharmed();
  });

  it('auth with a bad signature → WICKET_ERR_SIGNATURE_INVALID', async () => {
    const member = await r.member();
    const client = await RawRelayClient.connect(r.relay.url);
    const message = client.authMessage(member.identity!, member.credential!);
    if (message.t !== 'auth') throw new Error('unreachable');
    const signature = Buffer.from(message.signature, 'base64url');
    signature[0]! ^= 0x01;
    client.sendControl({ ...message, signature: base64url(signature) });
    await expectRefused(client, 'WICKET_ERR_SIGNATURE_INVALID');
    await bystandersUnharmed();
  });

  it('auth with a key that is not 32 bytes → WICKET_ERR_RELAY_PROTOCOL', async () => {
    const client = await RawRelayClient.connect(r.relay.url);
    client.sendControl({ t: 'auth', publicKey: base64url(Buffer.alloc(31)), signature: base64url(Buffer.alloc(64)), credential: '', revocationsAfter: 0 });
    await expectRefused(client, 'WICKET_ERR_RELAY_PROTOCOL');
  });

  it('enroll with a bad signature → WICKET_ERR_SIGNATURE_INVALID, and the ticket is not spent', async () => {
    const ticket = await r.ticket({ inlet: 'true' });
    const identity = Identity.generate();
    const client = await RawRelayClient.connect(r.relay.url);
    // Signed over another connection's challenge.
    client.sendControl(client.enrollMessage(identity, ticket, Buffer.alloc(32, 1)));
    await expectRefused(client, 'WICKET_ERR_SIGNATURE_INVALID');
    const honest = await RawRelayClient.connect(r.relay.url);
    await honest.enroll(identity, ticket);
    await honest.close();
    await bystandersUnharmed();
  });

  it('a second auth on an authenticated connection → WICKET_ERR_RELAY_PROTOCOL', async () => {
    const member = await r.member();
    member.sendControl(member.authMessage(member.identity!, member.credential!));
    await expectRefused(member, 'WICKET_ERR_RELAY_PROTOCOL');
    await bystandersUnharmed();
  });

  it('a flood of pipelined frames while the relay checks auth → WICKET_ERR_RELAY_PROTOCOL', async () => {
    const member = await r.member();
    const client = await RawRelayClient.connect(r.relay.url);
    const frames = [encodeControl(client.authMessage(member.identity!, member.credential!))];
    for (let i = 0; i < 100; i++) frames.push(encodeControl({ t: 'open', id: i + 1, name: 'steady' }));
    // One socket write, so the relay reads them all while the store is still answering.
    const socket = (client.ws as unknown as { _socket: import('node:net').Socket })._socket;
    socket.cork();
    for (const frame of frames) client.sendRaw(frame);
    socket.uncork();
    await expectRefused(client, 'WICKET_ERR_RELAY_PROTOCOL');
    await bystandersUnharmed();
  });
});

// An enroll carries the ticket's public key and a proof binding (authority, ticket id, member
// key), never the secret (protocol/ticket.ts). Whoever captured one (a compromised relay, a log)
// must not be able to bend it to another key, project or ticket; a refused proof spends nothing.
describe('hostile enrollment: the ticket proof', () => {
  /** `identity`'s enroll for `ticket` with its ticket key and proof replaced. */
  function forged(client: RawRelayClient, identity: Identity, ticket: string, evidence: { ticketKey: Buffer; ticketProof: Buffer }): AgentToRelay {
    return { ...client.enrollMessage(identity, ticket), ticketKey: base64url(evidence.ticketKey), ticketProof: base64url(evidence.ticketProof) } as AgentToRelay;
  }

  /** The one-use `ticket` was not spent: its rightful holder still enrolls with it. */
  async function stillRedeemable(ticket: string, identity = Identity.generate()): Promise<void> {
    const honest = await RawRelayClient.connect(r.relay.url);
    expect((await honest.enroll(identity, ticket)).identifier).toBe(identity.identifier);
    await honest.close();
  }

  it("a proof captured from one member's enroll, presented for another member key → WICKET_ERR_SIGNATURE_INVALID, no use spent", async () => {
    const ticket = await r.ticket({ inlet: 'true' });
    const [victim, attacker] = [Identity.generate(), Identity.generate()];
    const client = await RawRelayClient.connect(r.relay.url);
    const captured = ticketEvidence(decodeTicket(ticket), victim.publicKey);
    client.sendControl(forged(client, attacker, ticket, captured));
    const refusal = await client.refusal();
    expect(refusal).toMatchObject({ code: 'WICKET_ERR_SIGNATURE_INVALID', close: { code: 1008 } });
    expect(refusal.message).toContain('ticket proof');
    expect(await r.relay.authority.getMember(attacker.identifier)).toBeUndefined();
    await stillRedeemable(ticket, victim);
    await bystandersUnharmed();
  });

  it('a proof made for another authority (another project) → WICKET_ERR_SIGNATURE_INVALID, no use spent', async () => {
    const ticket = await r.ticket({ inlet: 'true' });
    const identity = Identity.generate();
    const client = await RawRelayClient.connect(r.relay.url);
    client.sendControl(forged(client, identity, ticket, ticketEvidence(decodeTicket(ticket), identity.publicKey, Identity.generate().publicKey)));
    await expectRefused(client, 'WICKET_ERR_SIGNATURE_INVALID');
    await stillRedeemable(ticket, identity);
    await bystandersUnharmed();
  });

  it("another ticket's key proving for this ticket's id → refused, and neither ticket is spent", async () => {
    const target = await r.ticket({ admin: 'true' });
    const own = await r.ticket({ inlet: 'true' });
    const attacker = Identity.generate();
    const ownKey = ticketKeyFromSecret(decodeTicket(own).secret);
    const targetTicket = decodeTicket(target);
    const proofForTarget = ownKey.sign(ticketProofMessage(r.relay.authority.publicKey, targetTicket.ticketId, attacker.publicKey));
    // Its own ticket key, honestly signed: the proof holds, the store's key for the id does not match.
    const first = await RawRelayClient.connect(r.relay.url);
    first.sendControl(forged(first, attacker, target, { ticketKey: ownKey.publicKey, ticketProof: proofForTarget }));
    await expectRefused(first, 'WICKET_ERR_TICKET_UNKNOWN');
    // The target's real public key (a relay sees it), with a proof that key never made.
    const second = await RawRelayClient.connect(r.relay.url);
    const targetKey = ticketKeyFromSecret(targetTicket.secret).publicKey;
    second.sendControl(forged(second, attacker, target, { ticketKey: targetKey, ticketProof: proofForTarget }));
    await expectRefused(second, 'WICKET_ERR_SIGNATURE_INVALID');
    expect(await r.relay.authority.getMember(attacker.identifier)).toBeUndefined();
    await stillRedeemable(target);
    await stillRedeemable(own);
    await bystandersUnharmed();
  });

  it('a ticket key or proof of the wrong length → WICKET_ERR_RELAY_PROTOCOL, the connection closed, the relay serving', async () => {
    const ticket = await r.ticket({ inlet: 'true' });
    const identity = Identity.generate();
    const honest = ticketEvidence(decodeTicket(ticket), identity.publicKey);
    for (const evidence of [
      { ...honest, ticketKey: honest.ticketKey.subarray(1) },
      { ...honest, ticketKey: Buffer.concat([honest.ticketKey, Buffer.alloc(1)]) },
      { ...honest, ticketProof: honest.ticketProof.subarray(1) },
      { ...honest, ticketProof: Buffer.alloc(0) },
    ]) {
      const client = await RawRelayClient.connect(r.relay.url);
      client.sendControl(forged(client, identity, ticket, evidence));
      await expectRefused(client, 'WICKET_ERR_RELAY_PROTOCOL');
    }
    await stillRedeemable(ticket, identity);
    await bystandersUnharmed();
  });

  it('a captured enroll replayed on another connection → WICKET_ERR_SIGNATURE_INVALID (its challenge is spent)', async () => {
    const ticket = await r.ticket({ inlet: 'true' }, [], { usageCount: 2 });
    const victim = Identity.generate();
    const first = await RawRelayClient.connect(r.relay.url);
    const captured = first.enrollMessage(victim, ticket);
    first.sendControl(captured);
    await first.next('welcome');
    const replay = await RawRelayClient.connect(r.relay.url);
    replay.sendControl(captured);
    await expectRefused(replay, 'WICKET_ERR_SIGNATURE_INVALID');
    expect((await r.relay.authority.listTickets(false)).find((t) => t.ticketId.equals(decodeTicket(ticket).ticketId))?.usesLeft).toBe(1);
    await first.close();
    await bystandersUnharmed();
  });

  it('the enroll an agent sends names the ticket by its public key and proof, and carries no secret', async () => {
    const ticket = await r.ticket({ inlet: 'true' });
    const decoded = decodeTicket(ticket);
    const client = await RawRelayClient.connect(r.relay.url);
    const message = client.enrollMessage(Identity.generate(), ticket);
    expect(Object.keys(message).sort()).toEqual(['publicKey', 'signature', 't', 'ticketId', 'ticketKey', 'ticketProof']);
    const frame = encodeControl(message).toString('latin1');
    for (const form of ['base64url', 'base64', 'hex'] as const) expect(frame).not.toContain(decoded.secret.reveal().toString(form));
    // An enroll that carries a secret anyway (an agent from before) is refused, unread.
    client.sendControl({ ...message, secret: decoded.secret.reveal().toString('base64url') } as unknown as AgentToRelay);
    await expectRefused(client, 'WICKET_ERR_RELAY_PROTOCOL');
    await stillRedeemable(ticket);
  });
});
