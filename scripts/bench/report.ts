import type { IdleStreamsResult } from './idle-streams.js';
import type { BenchPath, Figure, PathKey, Results, Settings } from './rounds.js';
import type { RttOutcome } from './rtt-bench.js';
import { formatSpread, median, spreadOf } from './stats.js';

// The report on stdout: what was measured and how, one table of medians (min–max over the
// rounds) with each figure's ratio to ssh -L, the secondary and one-off lines, then the floors.
// A cell is "-" when its measurement failed (the failure is listed) and "n/a" when the figure
// does not apply to that path (direct TCP has no tunnel process to charge CPU to).

export const IDLE_STREAMS_FLOOR = { streams: 10_000, bytesPerStream: 32 * 1024 };

interface Row {
  figure: Figure;
  label: string;
  digits: number;
  /** The floor on Wicket TLS ÷ ssh -L: at least `min` or at most `max`. */
  floor?: { min?: number; max?: number; name: string };
}

function rows(s: Settings): Row[] {
  return [
    { figure: 'bulk1', label: 'iperf3 upload, 1 stream: MB/s', digits: 0, floor: { min: 0.7, name: 'bulk single stream (iperf3 -P1)' } },
    { figure: 'bulk4', label: 'iperf3 upload, 4 streams: MB/s', digits: 0 },
    { figure: 'cpu', label: 'tunnel CPU s per GB (1 stream)', digits: 2, floor: { max: 2.0, name: 'tunnel CPU seconds per GB' } },
    { figure: 'p50', label: 'HTTP 1 KiB, 1 connection: p50 µs', digits: 0, floor: { max: 1.6, name: 'HTTP 1 KiB one connection p50' } },
    { figure: 'rps1', label: 'HTTP 1 KiB, 1 connection: req/s', digits: 0 },
    { figure: 'rps64', label: 'HTTP 1 KiB, 64 connections: req/s', digits: 0, floor: { min: 0.8, name: 'HTTP 1 KiB 64 connections req/s' } },
    {
      figure: 'close',
      label: `HTTP new connection per request (-c${s.closeConnections}): req/s`,
      digits: 0,
      floor: { min: 0.8, name: 'new connection per request rate' },
    },
  ];
}

export interface ReportInput {
  quick: boolean;
  settings: Settings;
  header: string[];
  paths: readonly BenchPath[];
  results: Results;
  /** Peak RSS in bytes, per path, per process role. */
  peakRss: Partial<Record<PathKey, Record<string, number>>>;
  idle: IdleStreamsResult | { skipped: string };
  rtt: RttOutcome;
  /** Why the two-relay path was not measured (no PostgreSQL here), when it was not. */
  meshSkipped?: string | undefined;
}

const mib = (bytes: number) => (bytes / 1024 ** 2).toFixed(0);
/** 10,000 rather than 10000: counts and byte sizes read at a glance. */
const count = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');

function table(lines: string[][]): string[] {
  const widths = lines[0]!.map((_, col) => Math.max(...lines.map((l) => l[col]!.length)));
  return lines.map((l) => l.map((cell, col) => (col === l.length - 1 ? cell : cell.padEnd(widths[col]!))).join(' | '));
}

function floorVerdict(ratio: number, floor: { min?: number; max?: number }): boolean {
  return floor.min !== undefined ? ratio >= floor.min : ratio <= floor.max!;
}

function floorText(floor: { min?: number; max?: number }): string {
  return floor.min !== undefined ? `≥ ${floor.min}×` : `≤ ${floor.max}×`;
}

/** Prints the report; returns whether every floor held (always true in quick mode). */
export function printReport(r: ReportInput): boolean {
  const out: string[] = [];
  const has = (key: PathKey) => r.paths.some((p) => p.key === key);
  const floors: { text: string; ok: boolean | undefined }[] = [];
  const verdict = (ok: boolean) => (r.quick ? 'not checked (quick mode)' : ok ? 'OK' : 'MISSED');
  out.push('', ...r.header, '');

  const lines: string[][] = [['figure', 'direct', 'ssh -L', 'Wicket TLS', '× ssh -L', 'floor (Wicket TLS ÷ ssh -L)']];
  for (const row of rows(r.settings)) {
    const cell = (key: PathKey) => {
      if (!has(key)) return 'not run';
      if (row.figure === 'cpu' && key === 'direct') return 'n/a';
      return formatSpread(r.results.get(row.figure, key).length > 0 ? spreadOf(r.results.get(row.figure, key)) : undefined, row.digits);
    };
    const ratio = median(r.results.get(row.figure, 'tls')) / median(r.results.get(row.figure, 'ssh'));
    let floorCell = '';
    if (row.floor !== undefined) {
      const ok = Number.isFinite(ratio) ? floorVerdict(ratio, row.floor) : undefined;
      floorCell = `${floorText(row.floor)} ${ok === undefined ? 'not measured' : verdict(ok)}`;
      // No ssh -L baseline (OpenSSH missing): nothing to hold Wicket to. A failed Wicket run: missed.
      const checked = Number.isFinite(ratio) ? floorVerdict(ratio, row.floor) : has('ssh') ? false : undefined;
      const shown = Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : has('ssh') ? 'not measured' : 'no ssh -L baseline';
      floors.push({ text: `${row.floor.name} ${floorText(row.floor)} ssh -L: ${shown}`, ok: checked });
    }
    lines.push([row.label, cell('direct'), cell('ssh'), cell('tls'), Number.isFinite(ratio) ? ratio.toFixed(2) : '-', floorCell]);
  }
  out.push(...table(lines), '');

  // The plain ws:// relay: the same Wicket without TLS between agents and relay.
  if (has('ws')) {
    const ssh = (f: Figure) => median(r.results.get(f, 'ssh'));
    const part = (f: Figure, unit: string, digits: number) => {
      const v = r.results.get(f, 'ws');
      const ratio = median(v) / ssh(f);
      return `${formatSpread(v.length > 0 ? spreadOf(v) : undefined, digits)} ${unit}${Number.isFinite(ratio) ? ` (${ratio.toFixed(2)}× ssh -L)` : ''}`;
    };
    out.push(`Wicket ws:// (plain relay, secondary): iperf3 1 stream ${part('bulk1', 'MB/s', 0)}; HTTP 1 connection p50 ${part('p50', 'µs', 0)}; ${part('cpu', 'CPU s/GB', 2)}`);
  }

  // Two relays (the mesh): against the one-relay path of the same run; issue 14's floor on bulk.
  if (has('mesh')) {
    const vs = (f: Figure, unit: string, digits: number) => {
      const v = r.results.get(f, 'mesh');
      const ratio = median(v) / median(r.results.get(f, 'tls'));
      return { text: `${formatSpread(v.length > 0 ? spreadOf(v) : undefined, digits)} ${unit}${Number.isFinite(ratio) ? ` (${ratio.toFixed(2)}× one relay)` : ''}`, ratio };
    };
    const bulk = vs('bulk1', 'MB/s', 0);
    out.push(`Wicket TLS, two relays (inlet and outlet on different relays, secondary): iperf3 1 stream ${bulk.text}; HTTP 1 connection p50 ${vs('p50', 'µs', 0).text}; ${vs('cpu', 'CPU s/GB', 2).text}`);
    floors.push({ text: `two-relay bulk ≥ 0.8× one-relay bulk (iperf3 -P1): ${Number.isFinite(bulk.ratio) ? `${bulk.ratio.toFixed(2)}×` : 'not measured'}`, ok: Number.isFinite(bulk.ratio) && bulk.ratio >= 0.8 });
  } else {
    out.push(`Wicket TLS, two relays: ${r.meshSkipped ?? 'not measured'}`);
    floors.push({ text: `two-relay bulk ≥ 0.8× one-relay bulk: ${r.meshSkipped ?? 'not measured'}`, ok: undefined });
  }

  // Where the tunnel CPU goes: each process role of each path (its children summed in).
  const byRole = (['ssh', 'tls', 'ws', 'mesh'] as const)
    .filter((k) => r.results.roleCpu(k).length > 0)
    .map((k) => `${r.paths.find((p) => p.key === k)!.label}: ${r.results.roleCpu(k).map(([role, v]) => `${role} ${median(v).toFixed(2)}`).join(', ')}`);
  if (byRole.length > 0) out.push(`tunnel CPU s per GB by process (iperf3 -P1, medians): ${byRole.join('; ')}`);

  // Memory per idle stream.
  if ('skipped' in r.idle) {
    out.push(`idle memory per stream: not measured: ${r.idle.skipped}`);
    floors.push({ text: `${count(IDLE_STREAMS_FLOOR.streams)} concurrent connections all served, ≤ 32 KiB per idle stream: not measured`, ok: false });
  } else {
    const i = r.idle;
    const failures = Object.entries(i.failures).map(([why, n]) => `${count(n)} ${why}`).join(', ');
    out.push(
      `idle memory per stream (Wicket TLS, inlet + relay + outlet VmRSS, ${count(i.wanted)} connections held open at once): ` +
        `${count(i.bytesPerStream)} bytes per stream; served ${count(i.served)} of ${count(i.wanted)}` +
        ` (RSS ${mib(i.baselineBytes)} → ${mib(i.loadedBytes)} MiB; ${count(i.openAtMeasurement)} still open when measured` +
        `${failures ? `; not served: ${failures}` : ''}${i.note ? `; ${i.note}` : ''})`,
    );
    const ok = i.wanted >= IDLE_STREAMS_FLOOR.streams && i.served === i.wanted && i.bytesPerStream <= IDLE_STREAMS_FLOOR.bytesPerStream;
    floors.push({
      text:
        `${count(IDLE_STREAMS_FLOOR.streams)} concurrent connections through one inlet, all served, ≤ 32 KiB (32,768 bytes) per idle stream over inlet, relay and outlet: ` +
        `served ${count(i.served)} of ${count(i.wanted)}, ${count(i.bytesPerStream)} bytes per stream`,
      ok,
    });
  }

  // One stream over 40 ms RTT.
  if ('skipped' in r.rtt) {
    out.push(`one stream over 40 ms RTT: skipped: ${r.rtt.skipped}`);
    floors.push({ text: `one stream over 40 ms RTT ≥ 0.8× direct TCP on the same link: skipped (${r.rtt.skipped})`, ok: undefined });
  } else {
    const t = r.rtt;
    const ratio = median(t.wicket) / median(t.direct);
    out.push(
      `one stream over 40 ms RTT (${t.kind}; RTT measured ${t.rttMs.toFixed(1)} ms, iperf3 min RTT ${t.directMinRttMs.toFixed(1)} ms; ${t.seconds} s runs): ` +
        `direct ${formatSpread(t.direct.length > 0 ? spreadOf(t.direct) : undefined, 1)} MB/s, Wicket TLS ${formatSpread(t.wicket.length > 0 ? spreadOf(t.wicket) : undefined, 1)} MB/s, ` +
        `${Number.isFinite(ratio) ? `${ratio.toFixed(2)}× direct` : 'ratio not measured'}`,
    );
    for (const f of t.failures) r.results.failures.push(`40 ms link: ${f}`);
    floors.push({
      text: `one stream over 40 ms RTT ≥ 0.8× direct TCP on the same link: ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : 'not measured'}`,
      ok: Number.isFinite(ratio) && ratio >= 0.8,
    });
  }

  // Peak resident memory of each tunnel's processes.
  const peak = (['ssh', 'tls', 'ws', 'mesh'] as const)
    .filter((k) => r.peakRss[k] !== undefined)
    .map((k) => {
      const roles = r.peakRss[k]!;
      const total = Object.values(roles).reduce((a, b) => a + b, 0);
      return `${r.paths.find((p) => p.key === k)!.label}: ${Object.entries(roles).map(([role, b]) => `${role} ${mib(b)}`).join(', ')} = ${mib(total)}`;
    });
  out.push(`peak RSS (VmHWM, MiB; a role's child processes summed in): ${peak.join('; ')}`, '');

  if (r.quick) out.push('floors are not checked in quick mode (BENCH_QUICK=1); the ratios are printed only:');
  for (const f of floors) out.push(`floor: ${f.text} ${f.ok === undefined ? 'NOT CHECKED' : verdict(f.ok)}`);
  if (r.results.failures.length > 0) out.push('', 'failed measurements:', ...r.results.failures.map((f) => `  ${f}`));
  console.log(out.join('\n'));
  return r.quick || floors.every((f) => f.ok !== false);
}
