// `npm run bench:scale` (issue 14; not in CI): what a relay's memory costs per connected idle
// agent, against the goal of 10,000 idle agents per relay in at most 1 GB.
//
//   case A  one relay, its default store (SQLite)
//   case B  three relays sharing one PostgreSQL store, the agents spread evenly over them
//
// Real relay processes from the built CLI (scale-relays.ts); the agents are not one process each
// but a few load generators holding thousands each with the agent's own enroll and relay client
// code (scale-agents.ts, scale-fleet.ts). The agents enroll first; then the relays and load
// generators are restarted (agents enroll once but reconnect after every relay restart, and the
// enrollment's garbage is no part of what a connected agent costs). Per relay, VmRSS is read
// after that restart with no agent connected (before) and once all are connected and have been
// idle for a while (idle); each the median of five readings a second apart. (idle − before) /
// agents is the cost of one connected agent. The numbers are a report, not a floor: the exit
// status is 0 unless agents failed to enroll or connect.
//
// Settings (environment): BENCH_SCALE_AGENTS (default 10000, per case), BENCH_SCALE_CASES (A,B),
// BENCH_SCALE_SETTLE_S (10: idle time before the idle reading), BENCH_SCALE_CONCURRENCY (64: agents
// enrolling or connecting at once, in all), BENCH_SCALE_TLS (1; 0 for plain ws:// relays).
// Open files: a relay needs one per agent; the hard limit must allow it (fd-limit.ts says why).
import { get } from 'node:https';
import { get as httpGet } from 'node:http';
import { loadavg } from 'node:os';
import type { RelayProcess } from '../lib/local-processes.js';
import { installExitGuards, runToExit } from './cleanup.js';
import { wholeFromEnv } from './env-number.js';
import { checkOpenFiles, openFileLimits } from './fd-limit.js';
import { medianRssEach } from './process-cpu.js';
import { AgentFleet, agentHomes, type Progress } from './scale-fleet.js';
import { agentsOfTicket, startOneRelay, startThreeRelays, threeRelaysUnavailable, type ScaleRelays } from './scale-relays.js';
import { formatCase, GOAL_AGENTS, GOAL_BYTES, missingAgents, type CaseReport } from './scale-report.js';

const AGENTS = wholeFromEnv('BENCH_SCALE_AGENTS', GOAL_AGENTS, 1);
const SETTLE_MS = wholeFromEnv('BENCH_SCALE_SETTLE_S', 10, 0) * 1000;
const CONCURRENCY = wholeFromEnv('BENCH_SCALE_CONCURRENCY', 64, 1);
const TLS = process.env.BENCH_SCALE_TLS !== '0';
const CASES = (process.env.BENCH_SCALE_CASES ?? 'A,B').toUpperCase().split(',').map((c) => c.trim());
/** Lets the restarted processes finish starting before the "before" reading (no longer than the idle settle). */
const BEFORE_SETTLE_MS = Math.min(5_000, SETTLE_MS);
/** One agent's dial and authentication, however busy the machine (it retries with backoff meanwhile). */
const CONNECT_TIMEOUT_MS = 60_000;
/** Each phase gets a minute plus this much per agent (about 10x what one took here). */
const PHASE_MS_PER_AGENT = 60;
const PHASE_BASE_MS = 60_000;
const PROGRESS_EVERY_MS = 2_000;

function say(line: string): void {
  process.stderr.write(`bench:scale: ${line}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The relay's own count of authenticated agents (wicket_relay_agents_connected on /metrics, loopback). */
function relayCount(relay: RelayProcess): Promise<number | undefined> {
  const url = new URL(relay.url);
  const secure = url.protocol === 'wss:';
  const target = `${secure ? 'https' : 'http'}://${url.host}/metrics`;
  return new Promise((resolve) => {
    // Our own relay on loopback, with its self-signed certificate; the count is a cross-check only.
    const request = (secure ? get : httpGet)(target, { rejectUnauthorized: false, timeout: 10_000 }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        const match = /^wicket_relay_agents_connected (\d+)$/m.exec(text);
        resolve(match === null ? undefined : Number(match[1]));
      });
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(undefined));
  });
}

/** Runs `phase` while printing the fleet's summed progress every few seconds. */
async function withProgress<T>(what: string, total: number, progress: () => Progress, phase: Promise<T>): Promise<T> {
  const started = performance.now();
  const timer = setInterval(() => {
    const p = progress();
    const seconds = (performance.now() - started) / 1000;
    say(`${what} ${p.done}/${total} (${p.failed} failed, ${Math.round(p.done / seconds)}/s)`);
  }, PROGRESS_EVERY_MS);
  try {
    return await phase;
  } finally {
    clearInterval(timer);
  }
}

async function runCase(name: string, title: string, start: () => Promise<ScaleRelays>): Promise<CaseReport> {
  say(`case ${name}: starting the relays`);
  const setup = await start();
  const homes = agentHomes();
  try {
    const phaseDeadline = () => Date.now() + PHASE_BASE_MS + AGENTS * PHASE_MS_PER_AGENT;
    const enrollers = AgentFleet.start(AGENTS, homes.dir);
    say(`case ${name}: ${enrollers.pids.length} load generators enrolling ${AGENTS} agents`);
    const enroll = await withProgress(`case ${name}: enrolled`, AGENTS, () => enrollers.progress(), enrollers.enroll(setup.tickets, { concurrency: CONCURRENCY, deadline: phaseDeadline() }));
    await enrollers.stop();
    say(`case ${name}: restarting the relays and the load generators, so that neither holds the enrollment's garbage`);
    await setup.restart();
    const fleet = AgentFleet.start(AGENTS, homes.dir);
    await sleep(BEFORE_SETTLE_MS);
    const pids = [...setup.relays.map((r) => r.proc.pid), ...fleet.pids];
    const before = await medianRssEach(pids);
    say(`case ${name}: connecting ${enroll.ok} agents`);
    const connect = await withProgress(
      `case ${name}: connected`,
      enroll.ok,
      () => fleet.progress(),
      fleet.connect({ concurrency: CONCURRENCY, timeoutMs: CONNECT_TIMEOUT_MS, deadline: phaseDeadline() }),
    );
    say(`case ${name}: idle for ${SETTLE_MS / 1000} s, then reading memory`);
    await sleep(SETTLE_MS);
    const idle = await medianRssEach(pids);
    const count = await fleet.count(Date.now() + 30_000);
    const relayCounts = await Promise.all(setup.relays.map(relayCount));
    const generators = { processes: fleet.pids.length, agents: count.connected, beforeBytes: 0, idleBytes: 0 };
    for (let i = setup.relays.length; i < pids.length; i++) {
      generators.beforeBytes += before[i]!;
      generators.idleBytes += idle[i]!;
    }
    const report: CaseReport = {
      title: `${title}, ${setup.store} store, ${AGENTS} agents (load average ${loadavg()[0]!.toFixed(2)} at the reading)`,
      relays: setup.relays.map((relay, i) => ({
        name: `r${i + 1}`,
        agents: count.byRelay[relay.url] ?? 0,
        relayCounts: relayCounts[i],
        beforeBytes: before[i]!,
        idleBytes: idle[i]!,
      })),
      generators,
      openFiles: { relay: openFileLimits(pids[0]!).soft, generator: openFileLimits(fleet.pids[0]!).soft },
      enroll,
      connect,
      connectedAtEnd: count.connected,
      drops: count.drops,
      wanted: AGENTS,
    };
    say(`case ${name}: stopping`);
    await fleet.stop();
    return report;
  } finally {
    await setup.stop();
    await homes.remove();
  }
}

async function main(): Promise<number> {
  const unknown = CASES.filter((c) => c !== 'A' && c !== 'B');
  if (unknown.length > 0) throw new Error(`BENCH_SCALE_CASES: unknown case(s) ${unknown.join(', ')}; use A, B or A,B`);
  // Case A's relay holds every agent: the most descriptors any process here needs.
  checkOpenFiles(AGENTS, `a relay holding ${AGENTS} agents`);
  installExitGuards(5 * 60_000 + CASES.length * (2 * (PHASE_BASE_MS + AGENTS * PHASE_MS_PER_AGENT) + 2 * 60_000));
  say(`${AGENTS} agents per case, ${TLS ? 'TLS' : 'plain ws://'} relays, load average ${loadavg()[0]!.toFixed(2)} at the start`);
  const reports: CaseReport[] = [];
  const skipped: string[] = [];
  const o = { tls: TLS };
  if (CASES.includes('A')) reports.push(await runCase('A', 'A: one relay', () => startOneRelay(AGENTS, o)));
  if (CASES.includes('B')) {
    const why = threeRelaysUnavailable();
    if (why !== undefined) skipped.push(`B: three relays skipped: ${why}`);
    else {
      const spread = [0, 1, 2].map((k) => agentsOfTicket(AGENTS, 3, k)).join(' / ');
      reports.push(await runCase('B', `B: three relays (${spread} agents)`, () => startThreeRelays(AGENTS, o)));
    }
  }
  console.log(`\nRSS per connected idle agent (${TLS ? 'TLS' : 'plain ws://'} relays; goal: ${GOAL_AGENTS.toLocaleString('en-US')} agents per relay in ≤ 1 GB = ${(GOAL_BYTES / 2 ** 20).toFixed(1)} MiB)`);
  console.log('before: agents enrolled, relays restarted, none connected; idle: all connected and idle; each the median of 5 readings');
  console.log(`KiB/agent = (idle − before) / agents; MiB at ${GOAL_AGENTS.toLocaleString('en-US')} = idle + (${GOAL_AGENTS.toLocaleString('en-US')} − agents) × KiB/agent\n`);
  for (const r of reports) console.log(`${formatCase(r)}\n`);
  for (const s of skipped) console.log(s);
  const missing = reports.map((r) => [r.title.slice(0, 1), missingAgents(r)] as const).filter(([, n]) => n > 0);
  if (missing.length > 0) {
    console.error(`bench:scale: agents did not connect: ${missing.map(([c, n]) => `case ${c}: ${n} of ${AGENTS}`).join('; ')}`);
    return 1;
  }
  return 0;
}

runToExit('bench:scale', main);
