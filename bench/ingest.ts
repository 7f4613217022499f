// Section 1: events/s through vm_sync.ingest, side by side with the per-object baseline and the
// raw-insert floor, on the same events, at each batch size. Each contender starts from the same
// state (vms rows seeded with NULL values, nothing staged) in one fresh database.
import type pg from 'pg';
import { runBaseline, withBaselineIndex, type ContenderResult } from './baseline.js';
import { batchesOf, coldStartEvents, type WatchEvent } from './fixtures.js';
import { connect, createBenchDatabase, filledRows, resetSyncState, seedVmsRows } from './pg.js';

export const BATCH_SIZES = [100, 500, 2000];

export interface IngestRow {
  batchSize: number;
  setBased: ContenderResult & { filledRows: number };
  /** Per-object on vms as SSVirt ships it (primary key only): each lookup scans vms. */
  baseline: ContenderResult & { filledRows: number };
  /** The same with an index on vms (namespace, vm_name) it is given for the run (the sync may not add one). */
  baselineIndexed: ContenderResult & { filledRows: number };
  floor: ContenderResult;
  /** set-based events/s divided by the other contender's. */
  ratioVsBaseline: number;
  ratioVsBaselineIndexed: number;
  ratioVsFloor: number;
}

export interface IngestResult {
  vms: number;
  events: number;
  /** Average JSON size of one event, in bytes (VM and VMI alike). */
  avgEventBytes: number;
  baselineBudgetSeconds: number;
  setBasedBudgetSeconds: number;
  rows: IngestRow[];
}

function rate(events: number, ms: number, extra: Partial<ContenderResult> = {}): ContenderResult {
  return { events, seconds: ms / 1000, eventsPerSec: events / (ms / 1000), ...extra };
}

/** The project's set-based path: one vm_sync.ingest() call per batch. */
export async function runSetBased(
  client: pg.Client,
  events: readonly WatchEvent[],
  batchSize: number,
  budgetMs = Infinity,
): Promise<ContenderResult> {
  let ms = 0;
  let written = 0;
  let done = 0;
  for (const batch of batchesOf(events, batchSize)) {
    if (ms >= budgetMs) break;
    const t0 = performance.now();
    // Serialising the batch is part of the cost: the watcher has to do it too.
    const r = await client.query<{ r: { vms_updated: number } }>('select vm_sync.ingest($1::jsonb) as r', [JSON.stringify(batch)]);
    ms += performance.now() - t0;
    written += Number(r.rows[0]!.r.vms_updated);
    done += batch.length;
  }
  return rate(done, ms, { rowsWritten: written, capped: done < events.length });
}

/** The floor: the same bytes into an unlogged table, one INSERT ... SELECT per batch, no merge. */
async function runFloor(client: pg.Client, events: readonly WatchEvent[], batchSize: number, budgetMs: number): Promise<ContenderResult> {
  await client.query('create unlogged table if not exists public.bench_floor (ev jsonb)');
  await client.query('truncate public.bench_floor');
  await client.query('checkpoint').catch(() => undefined);
  let ms = 0;
  let done = 0;
  for (const batch of batchesOf(events, batchSize)) {
    if (ms >= budgetMs) break;
    const t0 = performance.now();
    await client.query('insert into public.bench_floor (ev) select e from jsonb_array_elements($1::jsonb) as e', [JSON.stringify(batch)]);
    ms += performance.now() - t0;
    done += batch.length;
  }
  await client.query('drop table public.bench_floor');
  return rate(done, ms, { capped: done < events.length });
}

export async function benchIngest(
  vms: number,
  opts: { batchSizes?: number[]; baselineBudgetMs: number; setBudgetMs: number; progress?: (msg: string) => void },
): Promise<IngestResult> {
  const events = coldStartEvents(vms);
  const sample = events.slice(0, Math.min(200, events.length));
  const avgEventBytes = Math.round(sample.reduce((s, e) => s + JSON.stringify(e).length, 0) / sample.length);
  const db = await createBenchDatabase(`ingest_${vms}`);
  let client = await connect(db.url);
  // Each contender gets a new session after the reset: plans cached by the previous one (made right
  // after TRUNCATE, when the tables looked empty) would otherwise slow it down as the tables grow.
  const reset = async () => {
    await resetSyncState(client);
    await client.end();
    client = await connect(db.url);
  };
  const rows: IngestRow[] = [];
  try {
    await seedVmsRows(client, vms);
    for (const batchSize of opts.batchSizes ?? BATCH_SIZES) {
      opts.progress?.(`ingest ${vms} VMs, batch ${batchSize}: set-based`);
      await reset();
      const setBased = { ...(await runSetBased(client, events, batchSize, opts.setBudgetMs)), filledRows: await filledRows(client) };

      opts.progress?.(`ingest ${vms} VMs, batch ${batchSize}: per-object baseline`);
      await reset();
      const base = await runBaseline(client, batchesOf(events, batchSize), opts.baselineBudgetMs);
      const baseline = { ...base, filledRows: await filledRows(client) };

      opts.progress?.(`ingest ${vms} VMs, batch ${batchSize}: per-object baseline with a (namespace, vm_name) index`);
      await reset();
      const baseIdx = await withBaselineIndex(client, () => runBaseline(client, batchesOf(events, batchSize), opts.baselineBudgetMs));
      const baselineIndexed = { ...baseIdx, filledRows: await filledRows(client) };

      opts.progress?.(`ingest ${vms} VMs, batch ${batchSize}: raw-insert floor`);
      await reset();
      const floor = await runFloor(client, events, batchSize, opts.setBudgetMs);
      rows.push({
        batchSize,
        setBased,
        baseline,
        baselineIndexed,
        floor,
        ratioVsBaseline: setBased.eventsPerSec / baseline.eventsPerSec,
        ratioVsBaselineIndexed: setBased.eventsPerSec / baselineIndexed.eventsPerSec,
        ratioVsFloor: setBased.eventsPerSec / floor.eventsPerSec,
      });
    }
  } finally {
    await client.end();
    await db.drop();
  }
  return { vms, events: events.length, avgEventBytes, baselineBudgetSeconds: opts.baselineBudgetMs / 1000, setBasedBudgetSeconds: opts.setBudgetMs / 1000, rows };
}
