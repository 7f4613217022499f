// The issue's targets, checked against what this run measured. Each names the scale it is about
// (100,000 VMs); when that scale was not run, the largest one measured stands in and says so.
import { RUN_OPTIONS } from '../src/lib/config.js';
import { f1, f2, ms1, n0, type Results, type ScaleResults, type Target } from './report.js';

const TARGET_SCALE = 100_000;

/** The watcher's own batch (BATCH_MAX_EVENTS default): issue 14's ingest targets are about it. */
export const DEFAULT_BATCH = Number(RUN_OPTIONS.find((o) => o.key === 'batchMaxEvents')!.default);

function pick<K extends keyof ScaleResults>(results: Results, key: K): { s: ScaleResults; note?: string } | undefined {
  const have = results.scales.filter((s) => s[key] !== undefined).sort((a, b) => b.vms - a.vms);
  const s = have.find((x) => x.vms === TARGET_SCALE) ?? have[0];
  if (!s) return undefined;
  return { s, note: s.vms === TARGET_SCALE ? undefined : `at ${n0(s.vms)} VMs` };
}

export function evaluateTargets(results: Results): Target[] {
  const t: Target[] = [];
  const ing = pick(results, 'ingest');
  if (ing) {
    // The watcher's default batch carries the targets (the largest measured if it was not run).
    const rows = ing.s.ingest!.rows;
    const row = rows.find((r) => r.batchSize === DEFAULT_BATCH) ?? [...rows].sort((a, b) => b.batchSize - a.batchSize)[0]!;
    const batch = row.batchSize === DEFAULT_BATCH ? `batch ${row.batchSize} = the default BATCH_MAX_EVENTS` : `batch ${row.batchSize}, NOT the default ${DEFAULT_BATCH}`;
    const note = [ing.note, batch].filter(Boolean).join(', ');
    t.push({ what: 'ingest throughput', target: '>= 20,000 ev/s', measured: `${n0(row.setBased.eventsPerSec)} ev/s`, met: row.setBased.eventsPerSec >= 20_000, note });
    t.push({ what: 'ingest vs per-object baseline', target: '>= 10x', measured: `${f1(row.ratioVsBaseline)}x`, met: row.ratioVsBaseline >= 10, note });
    t.push({
      what: 'ingest vs per-object + index',
      target: '>= 10x',
      measured: `${f1(row.ratioVsBaselineIndexed)}x`,
      met: row.ratioVsBaselineIndexed >= 10,
      note: `${note}; index added for the baseline only`,
    });
    t.push({ what: 'ingest vs raw-insert floor', target: '>= 0.5x', measured: `${f2(row.ratioVsFloor)}x`, met: row.ratioVsFloor >= 0.5, note });
  }
  const lat = pick(results, 'latency');
  if (lat) {
    // The target is about the watcher as shipped; other windows are in the latency table for comparison.
    for (const run of lat.s.latency!.runs.filter((r) => r.label.startsWith('defaults'))) {
      const note = [lat.note, run.label].filter(Boolean).join(', ');
      t.push({ what: 'latency p99 at 1,000 ev/s', target: '< 50 ms', measured: `${f1(run.p99Ms)} ms`, met: run.p99Ms < 50 && run.missing === 0, note });
    }
  }
  const cold = pick(results, 'coldstart');
  if (cold) {
    const c = cold.s.coldstart!;
    // Issue 14's bound for production-sized objects (the earlier 20 s was for 3.4 KB objects).
    const measured = c.coldStartSeconds === null ? `> ${n0(c.timeoutSeconds)} s (timeout)` : `${f1(c.coldStartSeconds)} s`;
    t.push({ what: 'cold start VMs + VMIs', target: '< 30 s', measured, met: c.coldStartSeconds !== null && c.coldStartSeconds < 30, note: cold.note });
    if (c.resumeSeconds !== undefined) {
      t.push({ what: 'resume after restart', target: '< 1 s', measured: `${f2(c.resumeSeconds)} s`, met: c.resumeSeconds < 1, note: cold.note });
      t.push({ what: 'relists on resume', target: '0', measured: String(c.relistsOnResume), met: c.relistsOnResume === 0, note: cold.note });
    }
  }
  const rl = pick(results, 'relistLatency');
  if (rl) {
    const r = rl.s.relistLatency!;
    const note = [rl.note, `${f1(r.relistSeconds)} s VMI relist, ${n0(r.achievedEventsPerSec)} ev/s`].filter(Boolean).join(', ');
    const fig = (x: typeof r.otherKind) => `${f1(x.p99Ms)} ms p99 (max ${f1(x.maxMs)} ms, ${n0(x.inWindow)} changes${x.missing ? `, ${x.missing} MISSING` : ''})`;
    t.push({
      what: "other kind's changes during a full relist",
      target: 'p99 < 500 ms',
      measured: fig(r.otherKind),
      met: r.otherKind.inWindow > 0 && r.otherKind.missing === 0 && r.otherKind.p99Ms < 500 && r.vmListRequests === 0,
      note,
    });
    // "Not delayed beyond one batch": the steady-state bound of one batch, the 50 ms latency target.
    t.push({
      what: "relisting kind's own changes during it",
      target: 'one batch (p99 < 50 ms)',
      measured: fig(r.ownKind),
      met: r.ownKind.inWindow > 0 && r.ownKind.missing === 0 && r.ownKind.p99Ms < 50,
      note,
    });
  }
  const mem = pick(results, 'memory');
  if (mem) {
    const m = mem.s.memory!;
    t.push({ what: 'watcher peak RSS', target: '< 150 MB', measured: `${f1(m.watcherPeakRssMb)} MB`, met: m.watcherPeakRssMb < 150, note: mem.note });
    if (m.informerPeakRssMb !== undefined) {
      t.push({
        what: 'watcher RSS / informer RSS',
        target: '< 0.20',
        measured: f2(m.watcherPeakRssMb / m.informerPeakRssMb),
        met: m.watcherPeakRssMb / m.informerPeakRssMb < 0.2,
        note: mem.note,
      });
    }
  }
  const noop = pick(results, 'noop');
  if (noop) {
    const r = noop.s.noop!.replay;
    t.push({
      what: 'no-op replay',
      target: '0 rows, 0 notifications',
      measured: `${r.rowsWritten} rows, ${r.notifications} notifications`,
      met: r.rowsWritten === 0 && r.notifications === 0 && r.changesAppended === 0,
      note: noop.note,
    });
    const first = noop.s.noop!.reconcileSeconds[0] ?? null;
    const measured = first === null ? `> ${noop.s.noop!.reconcileTimeoutSeconds} s (timeout)` : ms1(first);
    t.push({ what: 'no-op reconcile()', target: '< 1 s', measured, met: first !== null && first < 1, note: noop.note });
  }
  return t;
}
