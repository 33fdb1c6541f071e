// The mux over the real secure channel (Noise XX transport), in memory: every message the mux
// hands to send() is one seal(), every opened plaintext one receive(). Proves the two layers fit:
// parts go to seal() unjoined, full-size frames fit a Noise message, bytes survive both ways.

import { describe, expect, it } from 'vitest';
import { MUX_SESSION_RECEIVE_WINDOW } from '../../../protocol/limits.js';
import { MuxSession } from '../../../protocol/mux/session.js';
import type { MuxStream } from '../../../protocol/mux/stream.js';
import type { SecureTransport } from '../../../protocol/secure-channel/index.js';
import { handshake, inletAttributes, outletAttributes, party } from '../secure-channel/channel-fixtures.js';
import { seededRandom } from './sim.js';

describe('mux over a Noise transport', () => {
  it('moves seeded bulk data on several streams both ways through seal/open', () => {
    const { initiator, responder } = handshake(party('inlet', inletAttributes).options, party('outlet', outletAttributes).options);
    const wire: { to: 'a' | 'b'; sealed: Buffer }[] = [];
    const session = (role: 'initiator' | 'responder', transport: SecureTransport, to: 'a' | 'b') =>
      new MuxSession({ role, send: (parts) => wire.push({ to, sealed: transport.seal(parts) }) > 0 });
    const a = session('initiator', initiator, 'b');
    const b = session('responder', responder, 'a');
    const rng = seededRandom(99);
    const payloads = Array.from({ length: 4 }, () => rng.bytes(rng.int(100_000, 600_000)));
    const echoed = payloads.map(() => [] as Buffer[]);
    // The outlet side echoes every stream back, then ends when the inlet ends.
    b.on('stream', (s: MuxStream) => {
      s.on('data', (c: Buffer) => s.write(c));
      s.on('end', () => s.end());
    });
    const streams = payloads.map((p, i) => {
      const s = a.openStream();
      s.on('data', (c: Buffer) => echoed[i]!.push(c));
      s.write(p);
      s.end();
      return s;
    });
    for (let i = 0; i < 100_000 && wire.length > 0; i++) {
      const { to, sealed } = wire.shift()!;
      expect(sealed.length).toBeLessThanOrEqual(65_535);
      if (to === 'b') b.receive(responder.open(sealed));
      else a.receive(initiator.open(sealed));
    }
    expect(a.closed || b.closed).toBe(false);
    // Both said hello and announced their session windows through the channel.
    expect(a.sessionCredit).toBeLessThanOrEqual(MUX_SESSION_RECEIVE_WINDOW);
    expect(b.sessionCredit).toBeLessThanOrEqual(MUX_SESSION_RECEIVE_WINDOW);
    payloads.forEach((p, i) => expect(Buffer.concat(echoed[i]!).equals(p), `stream ${streams[i]!.id}`).toBe(true));
    expect(a.streamCount).toBe(0);
    expect(b.streamCount).toBe(0);
  });
});
