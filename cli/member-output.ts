// What both CLIs print after a revoke beyond the time: the tickets it spent. A revoked member still
// holds the tickets it redeemed, so their remaining uses are spent with it; an admin who handed the
// same ticket to others still waiting to enroll needs to give them new ones, and is told so here.

export function spentNote(ticketsSpent: number): string {
  return ticketsSpent === 0 ? '' : `; spent the remaining uses of ${ticketsSpent} ticket${ticketsSpent === 1 ? '' : 's'} it had redeemed`;
}
