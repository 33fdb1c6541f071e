import { describe, expect, it } from 'vitest';
import { AGENT_SHAPES, RELAY_SHAPES, type AgentToRelay, type RelayToAgent, type ShapesOf } from '../../protocol/relay-messages.js';

// The validator's shapes are declared `satisfies ShapesOf<the message union>`, so a message type
// and its shape cannot drift apart: `npm test` type-checks the tree (tsc --noEmit) and a drift is a
// compile error. These lines show the check has teeth: each `@ts-expect-error` marks a drifted
// shape that must NOT compile; if the check ever stopped catching it, tsc would report the unused
// directive and the test run would fail.

type RegisterShape = ShapesOf<AgentToRelay>['register'];
type RevokedShape = ShapesOf<RelayToAgent>['revoked'];

describe('relay messages: a type and its validator shape cannot drift apart', () => {
  it('the shapes in use are exactly what the types demand', () => {
    const register: RegisterShape = AGENT_SHAPES.register;
    const revoked: RevokedShape = RELAY_SHAPES.revoked;
    expect(register).toEqual({ id: 'u32', name: 'string' });
    expect(revoked).toEqual({ seq: 'u32', identifier: 'string', until: 'time' });
  });

  it('a shape missing a field, with an extra field, of the wrong kind, or wrongly optional does not compile', () => {
    // @ts-expect-error a field of the type is missing from the shape
    const missing: RegisterShape = { id: 'u32' };
    // @ts-expect-error the shape checks a field the type does not have
    const extra: RegisterShape = { id: 'u32', name: 'string', smuggled: 'string' };
    // @ts-expect-error a string field checked as a number
    const wrongKind: RegisterShape = { id: 'u32', name: 'u32' };
    // @ts-expect-error a required field marked optional
    const wronglyOptional: RegisterShape = { id: 'u32', name: 'string?' };
    // @ts-expect-error a message type the union does not have
    const unknownType: ShapesOf<AgentToRelay>['hello'] = { version: 'u32' };
    expect([missing, extra, wrongKind, wronglyOptional, unknownType]).toHaveLength(5);
  });
});
