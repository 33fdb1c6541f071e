import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Vault } from '../../agent/vault.js';
import type { Identity } from '../../protocol/identity.js';
import { DATA_HEADER_LEN } from '../../protocol/relay-frames.js';
import { InitiatorHandshake, ResponderHandshake, type SecureChannelOptions } from '../../protocol/secure-channel/index.js';
import {
  type AgentHome,
  enrollAgent,
  type NodeProcess,
  type RelayProcess,
  runAgent,
  runCommand,
  startNodeProcess,
  startRelayProcess,
  stopAll,
} from '../../scripts/lib/local-processes.js';
import { connectTcp, type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { RawRelayClient } from '../helpers/raw-relay-client.js';

// Revocation with no way around it (DESIGN.md property 5), tried as an attacker would, with real
// relay and agent processes. A revoked identity cannot authenticate to the relay any more, so it
// borrows an accomplice's: the accomplice (any member) opens the circuit or registers the name,
// and the revoked identity runs the Noise handshake over it with its own key and its cached
// credential, still within its lifetime. Agents refuse it twice over: they keep the project's
// revoked set (WICKET_ERR_REVOKED), and they hold the handshake to the identity the relay joined
// the circuit to (WICKET_ERR_PEER_MISMATCH). The revoked check comes first, so the code says which
// defence stopped a revoked identity.

let relay: RelayProcess;
let echo: EchoServer;
let outletAgent: AgentHome;
let outletNode: NodeProcess;

/** An enrolled identity as the attacker holds it: its key and its last credential, from its home. */
interface Stolen {
  readonly identity: Identity;
  readonly credential: Buffer;
  readonly authorityPublicKey: Buffer;
  readonly identifier: string;
}

async function enrolled(attributes: string[], relayNames: string[] = []): Promise<Stolen & { home: string }> {
  const agent = await enrollAgent(relay, { attributes, relayNames });
  const vault = Vault.open(agent.home);
  const enrollment = vault.requireEnrollment();
  return { home: agent.home, identity: vault.identity(), credential: enrollment.credential, authorityPublicKey: enrollment.authorityPublicKey, identifier: agent.identifier };
}

/** The accomplice's own relay connection (it is a member in good standing). */
async function connected(member: Stolen): Promise<RawRelayClient> {
  const client = await RawRelayClient.connect(relay.url);
  await client.auth(member.identity, member.credential);
  return client;
}

function channelOptions(as: Stolen, relayName: string): SecureChannelOptions {
  return { identity: as.identity, credential: as.credential, authorityPublicKey: as.authorityPublicKey, now: Date.now, prologue: Buffer.from(relayName) };
}

async function revoke(identifier: string): Promise<void> {
  const result = await runCommand('relay', ['member', 'revoke', '--data', relay.dataDir, identifier]);
  expect(result.code).toBe(0);
}

/**
 * The accomplice opens a circuit to the outlet; `as` runs the initiator handshake over it. Returns
 * the code the outlet closed the circuit with (or 'open' if it let the handshake through).
 */
async function handshakeThroughAccomplice(accomplice: RawRelayClient, as: Stolen, relayName: string): Promise<string> {
  const opened = await accomplice.open(relayName);
  if (opened.t !== 'opened') throw new Error(`open failed: ${JSON.stringify(opened)}`);
  const initiator = new InitiatorHandshake(channelOptions(as, relayName));
  accomplice.sendData(opened.circuit, initiator.writeMessage1());
  const message2 = await accomplice.nextData();
  initiator.readMessage2(message2.subarray(DATA_HEADER_LEN));
  accomplice.sendData(opened.circuit, initiator.writeMessage3());
  const answer = await Promise.race([
    accomplice.next('close', (m) => m.circuit === opened.circuit),
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 3_000)),
  ]);
  return answer?.code ?? 'open';
}

beforeAll(async () => {
  relay = await startRelayProcess();
  echo = await startEchoServer();
  outletAgent = await enrollAgent(relay, { attributes: ['svc-outlet'], relayNames: ['svc'] });
  outletNode = await startNodeProcess(outletAgent, { outlets: [{ to: echo.address, relay: 'svc', allow: 'svc-inlet' }] });
}, 120_000);

afterAll(async () => {
  await stopAll();
  await echo?.close();
});

describe('revoked identities cannot borrow a circuit', () => {
  it("revoked identity through an accomplice's circuit: the outlet refuses it (WICKET_ERR_REVOKED) and the target is never reached", async () => {
    const revoked = await enrolled(['svc-inlet']);
    const accomplice = await connected(await enrolled(['guest']));
    await revoke(revoked.identifier);
    await outletNode.proc.waitForLog({ peer: revoked.identifier, msg: 'the relay reports a revoked identity' });
    // Connections so far: the outlet's check of its target when it was created, nothing else.
    const before = echo.accepted();
    expect(await handshakeThroughAccomplice(accomplice, revoked, 'svc')).toBe('WICKET_ERR_REVOKED');
    expect(echo.accepted()).toBe(before);
    await outletNode.proc.waitForLog({ code: 'WICKET_ERR_REVOKED' });
  });

  it("a live member through another member's circuit is refused too (WICKET_ERR_PEER_MISMATCH): nobody can lend a circuit", async () => {
    const lender = await connected(await enrolled(['guest']));
    const borrower = await enrolled(['svc-inlet']);
    const before = echo.accepted();
    expect(await handshakeThroughAccomplice(lender, borrower, 'svc')).toBe('WICKET_ERR_PEER_MISMATCH');
    expect(echo.accepted()).toBe(before);
  });

  it("a revoked outlet serving through an accomplice's registration: the inlet refuses it and the app is reset", async () => {
    const revokedOutlet = await enrolled(['svc-outlet'], ['mirror']);
    const accompliceMember = await enrolled(['guest'], ['mirror']);
    const accomplice = await connected(accompliceMember);
    expect((await accomplice.register('mirror')).t).toBe('registered');
    await revoke(revokedOutlet.identifier);
    // The accomplice answers every circuit with the revoked outlet's handshake.
    let answered = 0;
    const serve = async (): Promise<void> => {
      for (;;) {
        const incoming = await accomplice.next('incoming', () => true, 60_000).catch(() => undefined);
        if (incoming === undefined) return;
        const responder = new ResponderHandshake(channelOptions(revokedOutlet, 'mirror'));
        responder.readMessage1((await accomplice.nextData()).subarray(DATA_HEADER_LEN));
        accomplice.sendData(incoming.circuit, responder.writeMessage2());
        answered++;
      }
    };
    void serve();
    const inletAgent = await enrollAgent(relay, { attributes: ['svc-inlet'] });
    const inletNode = await startNodeProcess(inletAgent, { inlets: [{ from: '127.0.0.1:0', via: 'mirror', allow: 'svc-outlet' }] });
    const client = await connectTcp(inletNode.inlets.mirror!);
    await client.write(Buffer.from('for the real outlet only')).catch(() => undefined);
    const outcome = await client.outcome();
    expect(outcome.ending).toBe('reset');
    expect(outcome.received.length).toBe(0);
    expect(answered).toBeGreaterThanOrEqual(1);
    // The log names the revoked identity that answered, not only the accomplice the relay named.
    const logged = await inletNode.proc.waitForLine((l) => l.includes('"code":"WICKET_ERR_REVOKED"') && l.includes(revokedOutlet.identifier), { stream: 'stderr' });
    expect(logged).toContain(accompliceMember.identifier);
    await accomplice.close();
  });

  it('an agent that was offline during the revoke reconnects and still refuses the revoked peer', async () => {
    const revoked = await enrolled(['svc-inlet']);
    const accomplice = await connected(await enrolled(['guest']));
    await outletNode.proc.kill('SIGTERM');
    await revoke(revoked.identifier);
    outletNode = await startNodeProcess(outletAgent, { outlets: [{ to: echo.address, relay: 'svc', allow: 'svc-inlet' }] });
    // It learnt the revocation from the re-sync behind its welcome, not from a push it missed.
    const status = JSON.parse((await runAgent(outletAgent.home, ['status', '--json'])).stdout) as { relay: { revokedPeers: number } };
    expect(status.relay.revokedPeers).toBeGreaterThanOrEqual(1);
    const before = echo.accepted();
    expect(await handshakeThroughAccomplice(accomplice, revoked, 'svc')).toBe('WICKET_ERR_REVOKED');
    expect(echo.accepted()).toBe(before);
  });
});
