import { wicketError } from './errors.js';
import { isIdentifier } from './identity.js';
import { MAX_RELAY_NAME_LEN } from './limits.js';
import { decodeFrame, encodeControl } from './relay-frames.js';
import { isRelayId } from './relay-names.js';
import { parseAvoidList, typed, type ShapesOf } from './relay-messages.js';

// The relay-to-relay link (protocol/README.md, "Relay mesh"). Two relays of one project keep one
// WebSocket between them (on MESH_PATH of the dialled relay's port) and forward over it the
// circuits whose two ends sit on different relays. Frames are the agents' relay frames: DATA is
// the very frame an agent sent, its circuit id rewritten to the RECEIVING relay's id for that
// circuit; control frames carry the messages below. Both relays are equals on the link: each
// sends `hello`, each proves itself with `auth`, and the link is open once both have. A relay's credential carries RELAY_ID_ATTRIBUTE
// (relay-names.ts) naming its relay id.

/** Where a relay accepts links from the other relays of its project. */
export const MESH_PATH = '/wicket-mesh';

/** Ed25519 over meshProof(): MESH_AUTH_DOMAIN ‖ the prover's role ‖ the verifier's challenge ‖ both relay ids. */
export const MESH_AUTH_DOMAIN = Buffer.from('wicket/mesh-auth/v1\0');

/** Which end of the link a relay is: the one that dialled, or the one that accepted. */
export type MeshRole = 'dialer' | 'acceptor';
const ROLE_BYTE: Readonly<Record<MeshRole, number>> = { dialer: 1, acceptor: 2 };

/**
 * The bytes a relay signs in its `auth`: the domain, its role on this link, the verifier's
 * challenge, then the prover's and the verifier's relay ids, each behind its length (u8), so no two
 * id pairs sign alike. The role stops a go-between from passing one relay's proof to another: a
 * proof a relay made as the dialler of its own link does not pass as an acceptor's, and the reverse.
 */
export function meshProof(role: MeshRole, challenge: Uint8Array, proverRelayId: string, verifierRelayId: string): Buffer {
  const prover = Buffer.from(proverRelayId, 'utf8');
  const verifier = Buffer.from(verifierRelayId, 'utf8');
  return Buffer.concat([MESH_AUTH_DOMAIN, Buffer.from([ROLE_BYTE[role]]), challenge, Buffer.from([prover.length]), prover, Buffer.from([verifier.length]), verifier]);
}

export type MeshMessage =
  /** First frame of each side: who it is, its credential, and a fresh challenge for the other side. */
  | { t: 'hello'; relay: string; publicKey: string; credential: string; challenge: string }
  /** The proof over the other side's challenge (see MESH_AUTH_DOMAIN). */
  | { t: 'auth'; signature: string }
  /**
   * Open a circuit to a local server of `name`. `circuit`: the sender's id for it (frames and
   * messages towards the sender use it); `peer`: the opening agent; `avoid`: as in the agent's open.
   */
  | { t: 'open'; circuit: number; name: string; peer: string; avoid?: string }
  /** The circuit is joined: `circuit` is the opener relay's id, `remote` the answering relay's, `peer` the serving agent. */
  | { t: 'opened'; circuit: number; remote: number; peer: string }
  /** The open failed (`circuit`: the opener relay's id); `code` is what its agent is told. */
  | { t: 'refused'; circuit: number; code: string; message: string }
  /** The circuit is gone (`circuit`: the receiver's id). */
  | { t: 'close'; circuit: number; code: string }
  /** The receiver may send `bytes` more on `circuit` (the receiver's id): the sender handed them on. */
  | { t: 'credit'; circuit: number; bytes: number }
  /** The link is refused or closing. */
  | { t: 'error'; code: string; message: string };

export type MeshMessageType = MeshMessage['t'];

export const MESH_SHAPES = {
  hello: { relay: 'string', publicKey: 'string', credential: 'string', challenge: 'string' },
  auth: { signature: 'string' },
  open: { circuit: 'u32', name: 'string', peer: 'string', avoid: 'string?' },
  opened: { circuit: 'u32', remote: 'u32', peer: 'string' },
  refused: { circuit: 'u32', code: 'string', message: 'string' },
  close: { circuit: 'u32', code: 'string' },
  credit: { circuit: 'u32', bytes: 'u32' },
  error: { code: 'string', message: 'string' },
} as const satisfies ShapesOf<MeshMessage>;

function refused(type: string, detail: string): never {
  throw wicketError('WICKET_ERR_RELAY_PROTOCOL', `mesh control '${type}': ${detail}`);
}

/** Validates a message from the other relay. Throws WICKET_ERR_RELAY_PROTOCOL. */
export function validateMeshMessage(value: unknown): MeshMessage {
  const { type, record } = typed(value, MESH_SHAPES, 'a relay');
  if (type === 'hello' && !isRelayId(record.relay)) refused(type, "field 'relay' is not a relay id");
  if ((type === 'open' || type === 'opened') && !isIdentifier(record.peer)) refused(type, "field 'peer' is not an identifier");
  if (type === 'open') {
    const name = record.name as string;
    if (name.length === 0 || name.length > MAX_RELAY_NAME_LEN) refused(type, "field 'name' is not a relay name");
    if (record.avoid !== undefined) parseAvoidList(record.avoid as string);
  }
  if ((type === 'open' || type === 'opened') && record.circuit === 0) refused(type, 'circuit id 0 is never used');
  // The answering relay's id is stamped on every DATA frame of the circuit: 0 would send them all
  // to a circuit no relay ever allocates (the router skips 0), a circuit open in name only.
  if (type === 'opened' && record.remote === 0) refused(type, "field 'remote': circuit id 0 is never used");
  return record as MeshMessage;
}

export type MeshFrame = { kind: 'data'; circuit: number; payload: Buffer } | { kind: 'control'; message: MeshMessage };

export function decodeMeshFrame(frame: Buffer): MeshFrame {
  return decodeFrame(frame, validateMeshMessage);
}

export function encodeMeshControl(message: MeshMessage): Buffer {
  return encodeControl(message);
}
