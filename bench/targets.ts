// The targets, checked against what this run measured. Each names the scale it is about
// (100,000 VMs); when that scale was not run, the largest one measured stands in and says so.
import { f1, f2, ms1, n0, type Results, type ScaleResults, type Target } from './report.js';

const TARGET_SCALE = 100_000;

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
    // The watcher's batch size is the largest one; that row carries the targets.
    const row = [...ing.s.ingest!.rows].sort((a, b) => b.batchSize - a.batchSize)[0]!;
    const note = [ing.note, `batch ${row.batchSize}`].filter(Boolean).join(', ');
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
    t.push({ what: 'cold start VMs + VMIs', target: '< 20 s', measured: `${f1(c.coldStartSeconds)} s`, met: c.coldStartSeconds < 20, note: cold.note });
    if (c.resumeSeconds !== undefined) {
      t.push({ what: 'resume after restart', target: '< 1 s', measured: `${f2(c.resumeSeconds)} s`, met: c.resumeSeconds < 1, note: cold.note });
      t.push({ what: 'relists on resume', target: '0', measured: String(c.relistsOnResume), met: c.relistsOnResume === 0, note: cold.note });
    }
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
