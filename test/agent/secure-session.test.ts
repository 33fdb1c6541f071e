import { afterEach, describe, expect, it } from 'vitest';
import type { WicketError } from '../../protocol/errors.js';
import type { MuxStream } from '../../protocol/mux/index.js';
import { SessionTable } from '../../agent/session-table.js';
import { closedWith, project, sessionPair, type Wire } from './session-pair.js';

// SecureSession over a back-to-back wire (no relay): the handshake, both policy checks, and that
// any tampering closes the channel and resets its streams.

const wires: Wire[] = [];
afterEach(() => {
  for (const w of wires.splice(0)) {
    w.initiator.close('WICKET_ERR_CHANNEL_CLOSED', 'test over');
    w.responder.close('WICKET_ERR_CHANNEL_CLOSED', 'test over');
  }
});

function track(w: Wire): Wire {
  wires.push(w);
  return w;
}

/**
 * The responder's next stream, paused as an outlet pauses it: OPEN and the first DATA may share a
 * message, so an unpaused stream would emit its data before an awaiting caller could listen.
 */
function acceptOne(w: Wire): Promise<MuxStream> {
  return new Promise((resolve) =>
    w.responder.once('stream', (stream: MuxStream) => {
      stream.pause();
      resolve(stream);
    }),
  );
}

function nextData(stream: MuxStream): Promise<Buffer> {
  const got = new Promise<Buffer>((resolve) => stream.once('data', resolve));
  stream.resume();
  return got;
}

function streamReset(stream: MuxStream): Promise<WicketError> {
  return new Promise((resolve) => stream.once('reset', resolve));
}

describe('secure session handshake', () => {
  it('authenticates both ends and carries a stream both ways', async () => {
    const p = project();
    const inlet = p.member({ 'openai-inlet': 'true' });
    const outlet = p.member({ 'openai-outlet': 'true', env: 'prod' });
    const w = track(sessionPair(p, { initiator: { party: inlet, allow: 'openai-outlet and env=prod' }, responder: { party: outlet, allow: 'openai-inlet' } }));

    const peerOfInitiator = await w.initiator.established;
    const peerOfResponder = await w.responder.established;
    expect(peerOfInitiator.identifier).toBe(outlet.identity.identifier);
    expect(peerOfInitiator.attributes).toMatchObject({ 'openai-outlet': 'true', env: 'prod' });
    expect(peerOfResponder.identifier).toBe(inlet.identity.identifier);

    const accepted = acceptOne(w);
    const stream = w.initiator.openStream();
    stream.write(Buffer.from('ping'));
    const far = await accepted;
    const got = await nextData(far);
    expect(got.toString()).toBe('ping');
    far.write(Buffer.from('pong'));
    expect((await new Promise<Buffer>((resolve) => stream.once('data', resolve))).toString()).toBe('pong');
  });

  it('inlet policy refuses the outlet before message 3: the outlet never learns the inlet identity', async () => {
    const p = project();
    const inlet = p.member({ 'openai-inlet': 'true' });
    const outlet = p.member({ 'some-other-service': 'true' });
    const w = track(sessionPair(p, { initiator: { party: inlet, allow: 'openai-outlet' }, responder: { party: outlet, allow: 'openai-inlet' } }));

    expect(await closedWith(w.initiator)).toBe('WICKET_ERR_POLICY_DENIED');
    await expect(w.initiator.established).rejects.toMatchObject({ code: 'WICKET_ERR_POLICY_DENIED' });
    // The responder saw message 1 only, then the close with the policy code.
    expect(await closedWith(w.responder)).toBe('WICKET_ERR_POLICY_DENIED');
    expect(w.sent.toResponder).toHaveLength(1);
    expect(w.closes.toResponder).toEqual(['WICKET_ERR_POLICY_DENIED']);
    expect(w.responder.peer).toBeUndefined();
  });

  it('outlet policy refuses the inlet after message 3 and the inlet sees the policy code', async () => {
    const p = project();
    const inlet = p.member({ 'guest': 'true' });
    const outlet = p.member({ 'openai-outlet': 'true' });
    const w = track(sessionPair(p, { initiator: { party: inlet, allow: 'openai-outlet' }, responder: { party: outlet, allow: 'openai-inlet' } }));

    expect(await closedWith(w.responder)).toBe('WICKET_ERR_POLICY_DENIED');
    expect(await closedWith(w.initiator)).toBe('WICKET_ERR_POLICY_DENIED');
    expect(w.closes.toInitiator).toEqual(['WICKET_ERR_POLICY_DENIED']);
  });

  it('a peer from another project (other authority) is refused', async () => {
    const p = project();
    const other = project();
    const inlet = p.member({ 'openai-inlet': 'true' });
    const stranger = other.member({ 'openai-outlet': 'true' });
    // The stranger presents a credential signed by its own authority; we pin ours.
    const w = track(sessionPair(p, { initiator: { party: inlet, allow: 'openai-outlet' }, responder: { party: stranger, allow: 'openai-inlet' } }));
    expect(await closedWith(w.initiator)).toBe('WICKET_ERR_CREDENTIAL_ISSUER');
  });

  it('a relay that routes a circuit for one name to the outlet of another breaks the handshake (prologue)', async () => {
    const p = project();
    const w = track(
      sessionPair(p, {
        initiator: { party: p.member({ a: 'true' }), allow: 'b', prologue: 'openai' },
        responder: { party: p.member({ b: 'true' }), allow: 'a', prologue: 'database' },
      }),
    );
    expect(await closedWith(w.initiator)).toBe('WICKET_ERR_HANDSHAKE_DECRYPT');
  });

  it('a responder that never hears from its peer gives up with WICKET_ERR_HANDSHAKE_TIMEOUT', async () => {
    const p = project();
    const w = track(
      sessionPair(p, {
        initiator: { party: p.member({ a: 'true' }), allow: 'b' },
        responder: { party: p.member({ b: 'true' }), allow: 'a' },
        extra: { handshakeTimeoutMs: 50 },
      }),
    );
    // Drop everything: the silent-peer attack (hold a half-open handshake forever).
    w.tap = () => undefined;
    expect(await closedWith(w.responder)).toBe('WICKET_ERR_HANDSHAKE_TIMEOUT');
  });
});

describe('secure session under attack', () => {
  async function openPair(): Promise<{ w: Wire; near: MuxStream; far: MuxStream }> {
    const p = project();
    const w = track(sessionPair(p, { initiator: { party: p.member({ i: 'true' }), allow: 'o' }, responder: { party: p.member({ o: 'true' }), allow: 'i' } }));
    await w.initiator.established;
    await w.responder.established;
    const accepted = acceptOne(w);
    const near = w.initiator.openStream();
    near.write(Buffer.from('hello'));
    const far = await accepted;
    await nextData(far);
    return { w, near, far };
  }

  it('a tampered transport message closes the channel with WICKET_ERR_DECRYPT and resets its streams', async () => {
    const { w, near, far } = await openPair();
    w.tap = (direction, payload) => {
      if (direction !== 'toResponder') return payload;
      const bad = Buffer.from(payload);
      bad[bad.length - 1]! ^= 0x01;
      return bad;
    };
    const farReset = streamReset(far);
    const nearReset = streamReset(near);
    near.write(Buffer.from('tampered on the way'));
    expect(await closedWith(w.responder)).toBe('WICKET_ERR_DECRYPT');
    expect((await farReset).code).toBe('WICKET_ERR_DECRYPT');
    // The initiator learns through the circuit close and resets its side too.
    expect(await closedWith(w.initiator)).toBe('WICKET_ERR_DECRYPT');
    expect((await nearReset).code).toBe('WICKET_ERR_DECRYPT');
  });

  it('a replayed transport message closes the channel (strict nonces)', async () => {
    const { w, near } = await openPair();
    w.tap = (direction, payload) => (direction === 'toResponder' ? [payload, payload] : payload);
    near.write(Buffer.from('once'));
    expect(await closedWith(w.responder)).toBe('WICKET_ERR_DECRYPT');
  });

  it('a dropped transport message closes the channel at the next one (gap)', async () => {
    const { w, near } = await openPair();
    let dropped = false;
    w.tap = (direction, payload) => {
      if (direction === 'toResponder' && !dropped) {
        dropped = true;
        return undefined;
      }
      return payload;
    };
    near.write(Buffer.from('lost'));
    await new Promise((resolve) => setImmediate(resolve));
    near.write(Buffer.from('after the gap'));
    expect(await closedWith(w.responder)).toBe('WICKET_ERR_DECRYPT');
  });

  it('garbage where the handshake expects message 1 closes the responder without crashing', async () => {
    const p = project();
    const w = track(sessionPair(p, { initiator: { party: p.member({ i: 'true' }), allow: 'o' }, responder: { party: p.member({ o: 'true' }), allow: 'i' } }));
    w.tap = (direction, payload) => (direction === 'toResponder' ? Buffer.alloc(3, 0xee) : payload);
    expect(await closedWith(w.responder)).toMatch(/^WICKET_ERR_HANDSHAKE_|^WICKET_ERR_FRAME_/);
  });

  it('revocation closes every channel with the revoked peer and resets its streams', async () => {
    const { w, near, far } = await openPair();
    const table = new SessionTable();
    table.add(w.initiator);
    const nearReset = streamReset(near);
    const farReset = streamReset(far);
    expect(table.revoked('I' + '0'.repeat(64))).toBe(0);
    expect(table.revoked(w.initiator.peer!.identifier)).toBe(1);
    expect(w.initiator.state).toBe('closed');
    expect((await nearReset).code).toBe('WICKET_ERR_REVOKED');
    expect((await farReset).code).toBe('WICKET_ERR_REVOKED');
    expect(table.size).toBe(0);
  });

  it('a circuit closed before its session attached closes the session as soon as it attaches', () => {
    const p = project();
    const w = track(sessionPair(p, { initiator: { party: p.member({ i: 'true' }), allow: 'o' }, responder: { party: p.member({ o: 'true' }), allow: 'i' } }));
    const table = new SessionTable();
    table.circuitClosed(w.initiator.circuit, 'WICKET_ERR_CIRCUIT_CLOSED');
    table.add(w.initiator);
    expect(w.initiator.state).toBe('closed');
    expect(w.initiator.closeError?.code).toBe('WICKET_ERR_CIRCUIT_CLOSED');
  });
});
