// The benchmark's output: a table a person can read (stdout) and a JSON a program can compare
// (bench/results/<timestamp>.json and bench/results/latest.json), with the targets beside
// the measured figures.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { packageRoot } from '../src/lib/paths.js';
import type { IngestResult } from './ingest.js';
import type { LatencyResult } from './latency.js';
import type { NoopResult } from './noop.js';
import type { RelistLatencyResult } from './relist-latency.js';

export interface ScaleResults {
  vms: number;
  ingest?: IngestResult;
  noop?: NoopResult;
  latency?: LatencyResult;
  coldstart?: Record<string, any>;
  memory?: Record<string, any>;
  /** Cold start then a mass 410 relist, cluster-wide and per namespace (bench/relist.ts). */
  relist?: Array<Record<string, any>>;
  /** Live changes of both kinds during a full VMI relist (bench/relist-latency.ts). */
  relistLatency?: RelistLatencyResult;
  /** Sections that failed at this scale, with their error. */
  errors?: Record<string, string>;
}

export interface Target {
  what: string;
  target: string;
  measured: string;
  met: boolean | null;
  /** The scale the figure was taken at, when it is not the one the target names. */
  note?: string;
}

export interface Results {
  startedAt: string;
  finishedAt?: string;
  command: string;
  machine: Record<string, string | number>;
  scales: ScaleResults[];
  targets: Target[];
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

export async function machineInfo(url: string): Promise<Record<string, string | number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let postgres = 'unknown';
  const settings: Record<string, string> = {};
  try {
    postgres = (await client.query<{ v: string }>('select version() as v')).rows[0]!.v;
    for (const name of ['shared_buffers', 'work_mem', 'synchronous_commit', 'max_wal_size', 'jit']) {
      settings[name] = (await client.query<{ v: string }>(`select current_setting('${name}') as v`)).rows[0]!.v;
    }
  } finally {
    await client.end();
  }
  return {
    commit: `${sh('git', ['-C', packageRoot, 'rev-parse', '--short', 'HEAD'])}${sh('git', ['-C', packageRoot, 'status', '--porcelain', '--', 'sql', 'migrations', 'src']) ? ' (+ uncommitted changes in sql/, migrations/ or src/)' : ''}`,
    nproc: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memory: sh('free', ['-h']).split('\n')[1]?.replace(/\s+/g, ' ') ?? 'unknown',
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres,
    postgresSettings: Object.entries(settings)
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
  };
}

/** Left-aligned first column, right-aligned numbers. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export const n0 = (v: number) => Math.round(v).toLocaleString('en-US');
export const f1 = (v: number) => v.toFixed(1);
export const f2 = (v: number) => v.toFixed(2);
export const ms1 = (s: number) => `${(s * 1000).toFixed(1)} ms`;

function ingestTable(r: IngestResult): string {
  const rows = r.rows.map((x) => [
    String(x.batchSize),
    n0(x.setBased.eventsPerSec) + (x.setBased.capped ? ` (first ${n0(x.setBased.events)})` : ''),
    n0(x.baseline.eventsPerSec) + (x.baseline.capped ? ` (first ${n0(x.baseline.events)})` : ''),
    n0(x.baselineIndexed.eventsPerSec) + (x.baselineIndexed.capped ? ` (first ${n0(x.baselineIndexed.events)})` : ''),
    n0(x.floor.eventsPerSec) + (x.floor.capped ? ` (first ${n0(x.floor.events)})` : ''),
    `${f1(x.ratioVsBaseline)}x`,
    `${f1(x.ratioVsBaselineIndexed)}x`,
    `${f2(x.ratioVsFloor)}x`,
    `${x.setBased.filledRows}/${r.vms}`,
  ]);
  return table(
    ['batch', 'set-based ev/s', 'per-object ev/s', 'per-object+idx ev/s', 'raw floor ev/s', 'vs per-object', 'vs per-object+idx', 'vs floor', 'rows filled'],
    rows,
  );
}

function noopTable(r: NoopResult): string {
  return table(
    ['no-op', 'value'],
    [
      ['replay events', n0(r.events)],
      ['replay ev/s (batch ' + r.batchSize + ')', n0(r.replay.eventsPerSec)],
      ['first pass ev/s', n0(r.firstPassEventsPerSec)],
      ['vms rows written', r.replay.rowsWritten],
      ['changes appended', r.replay.changesAppended],
      ['notifications received', r.replay.notifications],
      ['reconcile() runs', r.reconcileSeconds.map((x) => (x === null ? `> ${r.reconcileTimeoutSeconds} s (timeout)` : ms1(x))).join(', ')],
      ['reconcile() rows changed', r.reconcileRowsChanged.join(', ')],
    ],
  );
}

function latencyTable(r: LatencyResult): string {
  return table(
    ['latency (emit -> NOTIFY received)', 'ev/s', 'changes', 'received', 'missing', 'p50', 'p95', 'p99', 'max'],
    r.runs.map((x) => [x.label, n0(x.achievedEventsPerSec), n0(x.changes), n0(x.received), x.missing, `${f1(x.p50Ms)} ms`, `${f1(x.p95Ms)} ms`, `${f1(x.p99Ms)} ms`, `${f1(x.maxMs)} ms`]),
  );
}

function relistLatencyTable(r: RelistLatencyResult): string {
  const head = `relist latency: VMI watch 410 -> VMIs listed in ${f2(r.relistSeconds)} s (${r.vmiListRequests} VMI / ${r.vmListRequests} VM list requests; VMI watch again after ${r.watchAgainSeconds === null ? '-' : f2(r.watchAgainSeconds) + ' s'}), load ${n0(r.achievedEventsPerSec)} ev/s`;
  const row = (label: string, x: RelistLatencyResult['otherKind']) => [
    label,
    x.change,
    n0(x.inWindow),
    n0(x.received),
    x.missing,
    `${f1(x.p50Ms)} ms`,
    `${f1(x.p95Ms)} ms`,
    `${f1(x.p99Ms)} ms`,
    `${f1(x.maxMs)} ms`,
  ];
  return [head, table(['changes during the relist', 'change', 'in window', 'received', 'missing', 'p50', 'p95', 'p99', 'max'], [row('other kind (VM)', r.otherKind), row('own kind (VMI)', r.ownKind)])].join('\n');
}

function kvTable(title: string, o: Record<string, any>): string {
  const rows = Object.entries(o)
    .filter(([, v]) => v === null || typeof v !== 'object')
    .map(([k, v]) => [k, typeof v === 'number' ? (Number.isInteger(v) ? n0(v) : v.toFixed(3)) : String(v)]);
  return table([title, 'value'], rows);
}

export function renderText(results: Results): string {
  const out: string[] = [];
  out.push(`machine: ${results.machine.nproc} cores (${results.machine.cpuModel}), ${results.machine.memory}`);
  out.push(`node ${results.machine.node}; ${results.machine.postgres}`);
  out.push(`commit ${results.machine.commit}; ${results.command}`);
  for (const s of results.scales) {
    out.push('', `=== ${n0(s.vms)} VMs ===`);
    if (s.ingest) out.push('', `ingest (${n0(s.ingest.events)} events, ~${n0(s.ingest.avgEventBytes)} B each)`, ingestTable(s.ingest));
    if (s.noop) out.push('', noopTable(s.noop));
    if (s.latency) out.push('', latencyTable(s.latency));
    if (s.coldstart) out.push('', kvTable('cold start', s.coldstart));
    if (s.relistLatency) out.push('', relistLatencyTable(s.relistLatency));
    for (const r of s.relist ?? []) out.push('', kvTable(`cold start + mass 410 relist (${r.mode}, ${r.streams} streams)`, Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'tail'))));
    if (s.memory) out.push('', kvTable('memory', s.memory));
    for (const [name, err] of Object.entries(s.errors ?? {})) out.push('', `${name}: FAILED: ${err.split('\n')[0]}`);
  }
  if (results.targets.length) {
    out.push('', 'targets');
    out.push(
      table(
        ['target', 'wanted', 'measured', 'met'],
        results.targets.map((t) => [t.what, t.target, t.measured + (t.note ? ` (${t.note})` : ''), t.met === null ? 'n/a' : t.met ? 'yes' : 'NO']),
      ),
    );
  }
  return out.join('\n');
}

export function writeResults(results: Results, dir: string): { file: string; latest: string } {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = results.startedAt.replace(/[:.]/g, '-');
  const file = path.join(dir, `${stamp}.json`);
  const json = JSON.stringify(results, null, 2) + '\n';
  fs.writeFileSync(file, json);
  const latest = path.join(dir, 'latest.json');
  fs.writeFileSync(latest, json);
  return { file, latest };
}
