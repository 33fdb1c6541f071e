import type { Failures } from './scale-agents.js';
import type { PhaseResult } from './scale-fleet.js';

// The tables `npm run bench:scale` prints: per relay, its agents and resident memory before the
// agents connected and once they were connected and idle, the difference per agent, and what
// that makes at the issue's 10,000 agents per relay against its 1 GB.

/** Issue 14: "10,000 idle agents per relay at ≤ 1 GB" (decimal GB: the stricter reading). */
export const GOAL_AGENTS = 10_000;
export const GOAL_BYTES = 1e9;

const MiB = 1024 * 1024;
const KiB = 1024;

export interface RelayRow {
  name: string;
  /** Agents connected to it, as the agents see it (their relay URL) and as it counts them (/metrics). */
  agents: number;
  relayCounts: number | undefined;
  beforeBytes: number;
  idleBytes: number;
}

export interface CaseReport {
  title: string;
  relays: RelayRow[];
  generators: { processes: number; agents: number; beforeBytes: number; idleBytes: number };
  enroll: PhaseResult;
  connect: PhaseResult;
  /** The soft open-files limit the first relay and the first load generator ran with. */
  openFiles: { relay: number; generator: number };
  /** Agents connected when the memory was read, and connections dropped while idle. */
  connectedAtEnd: number;
  drops: number;
  wanted: number;
}

const perAgent = (before: number, idle: number, agents: number) => (agents > 0 ? (idle - before) / agents : NaN);

/** The relay's RSS with GOAL_AGENTS agents, from what it holds now and its cost per agent. */
export function projectedBytes(row: RelayRow): number {
  return row.idleBytes + (GOAL_AGENTS - row.agents) * perAgent(row.beforeBytes, row.idleBytes, row.agents);
}

function cells(values: (string | number)[], widths: number[]): string {
  return values.map((v, i) => (i === 0 ? String(v).padEnd(widths[i]!) : String(v).padStart(widths[i]!))).join('  ');
}

const mib = (bytes: number) => (bytes / MiB).toFixed(1);
const kib = (bytes: number) => (bytes / KiB).toFixed(1);
const rate = (n: number, seconds: number) => (seconds > 0 ? Math.round(n / seconds) : 0);

function failuresText(failures: Failures): string {
  const entries = Object.entries(failures);
  return entries.length === 0 ? '' : ` (failed: ${entries.map(([code, n]) => `${n} ${code}`).join(', ')})`;
}

export function formatCase(c: CaseReport): string {
  const widths = [5, 7, 12, 10, 9, 9, 13, 7];
  const lines = [
    c.title,
    cells(['relay', 'agents', 'relay counts', 'before MiB', 'idle MiB', 'KiB/agent', `MiB at ${GOAL_AGENTS.toLocaleString('en-US')}`, 'of 1 GB'], widths),
  ];
  const row = (r: RelayRow) => {
    const projected = projectedBytes(r);
    return cells(
      [r.name, r.agents, r.relayCounts ?? '-', mib(r.beforeBytes), mib(r.idleBytes), kib(perAgent(r.beforeBytes, r.idleBytes, r.agents)), mib(projected), `${Math.round((100 * projected) / GOAL_BYTES)}%`],
      widths,
    );
  };
  for (const r of c.relays) lines.push(row(r));
  if (c.relays.length > 1) {
    const sum = (f: (r: RelayRow) => number) => c.relays.reduce((s, r) => s + f(r), 0);
    const agents = sum((r) => r.agents);
    const before = sum((r) => r.beforeBytes);
    const idle = sum((r) => r.idleBytes);
    lines.push(
      cells(['all', agents, sum((r) => r.relayCounts ?? 0), mib(before), mib(idle), kib(perAgent(before, idle, agents)), '', ''], widths),
    );
  }
  const g = c.generators;
  lines.push(
    `load generators: ${g.processes} processes holding ${g.agents} agents: ${mib(g.beforeBytes)} MiB before, ${mib(g.idleBytes)} MiB idle, ${kib(perAgent(g.beforeBytes, g.idleBytes, g.agents))} KiB/agent`,
    `enrolled ${c.enroll.ok} in ${c.enroll.seconds.toFixed(1)} s (${rate(c.enroll.ok, c.enroll.seconds)}/s)${failuresText(c.enroll.failures)}; ` +
      `connected ${c.connect.ok} in ${c.connect.seconds.toFixed(1)} s (${rate(c.connect.ok, c.connect.seconds)}/s)${failuresText(c.connect.failures)}`,
    `connected when measured: ${c.connectedAtEnd} of ${c.wanted}; connections dropped while idle: ${c.drops}`,
    `open-files soft limit: relay ${c.openFiles.relay}, load generator ${c.openFiles.generator}`,
  );
  return lines.join('\n');
}

/** Agents of a case that did not make it to the measurement, or 0. */
export function missingAgents(c: CaseReport): number {
  return c.wanted - c.connectedAtEnd;
}
