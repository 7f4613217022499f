// The per-object baseline the seed describes: what a reconcile loop costs when it handles each
// watch event on its own. Per event: one SELECT for the vms row, the change check in TypeScript,
// one UPDATE when a value changed. It gets prepared statements and one transaction per batch (not
// one commit per event), so the ratio against set-based ingest is conservative. It runs twice: on
// vms as SSVirt ships it (primary key only, so each lookup scans the table) and with an index on
// vms (namespace, vm_name) that only the benchmark adds (the sync may not add one).
import type pg from 'pg';
// The contract's values in TypeScript: the convergence checker's rules, the one TypeScript copy of them.
import { deriveVm, deriveVmi, type Derived, type JsonObject } from '../test/helpers/convergence.js';
import type { WatchEvent } from './fixtures.js';

export interface ContenderResult {
  /** Events pushed through in the timed window. */
  events: number;
  seconds: number;
  eventsPerSec: number;
  /** True when a time budget stopped it before the last event (its rate is over the events it did). */
  capped?: boolean;
  /** vms rows written (baseline) or reported by ingest (set-based). */
  rowsWritten?: number;
}

interface Row {
  id: string;
  status: string | null;
  cpu_count: number | null;
  memory_mb: number | null;
  guest_os: string | null;
}

const FIND = {
  name: 'bench_baseline_find',
  text: `select id, status, cpu_count, memory_mb, guest_os from public.vms
          where namespace = $1 and vm_name = $2 and deleted_at is null`,
};
const UPDATE = {
  name: 'bench_baseline_update',
  text: `update public.vms set status = $2, cpu_count = $3, memory_mb = $4, guest_os = $5, updated_at = now() where id = $1`,
};

/** The row's values after one event, per the contract's priorities (a VMI's report beats the VM's spec). */
function nextValues(row: Row, kind: string, d: Derived, deleted: boolean): Row {
  if (kind === 'VirtualMachine') {
    return {
      id: row.id,
      status: deleted ? 'DELETED' : (d.status ?? row.status),
      // Without the VMI at hand, the VM's spec only fills what no VMI reported yet.
      cpu_count: deleted ? row.cpu_count : (row.cpu_count ?? d.cpu ?? null),
      memory_mb: deleted ? row.memory_mb : (row.memory_mb ?? d.memoryMb ?? null),
      guest_os: row.guest_os || (deleted ? row.guest_os : (d.hint ?? row.guest_os)),
    };
  }
  if (deleted) return row;
  return {
    id: row.id,
    status: row.status,
    cpu_count: d.cpu ?? row.cpu_count,
    memory_mb: d.memoryMb ?? row.memory_mb,
    guest_os: d.guestOs ?? row.guest_os,
  };
}

function changed(a: Row, b: Row): boolean {
  return a.status !== b.status || a.cpu_count !== b.cpu_count || a.memory_mb !== b.memory_mb || a.guest_os !== b.guest_os;
}

/** Handles one event the per-object way; returns whether it wrote the row. */
async function applyOne(client: pg.Client, ev: WatchEvent): Promise<boolean> {
  const obj = ev.object as JsonObject;
  const kind = obj.kind as string;
  const deleted = ev.type === 'DELETED';
  const d = kind === 'VirtualMachine' ? deriveVm(obj) : deriveVmi(obj);
  const found = await client.query<Row>({ ...FIND, values: [d.namespace, d.vmName] });
  let wrote = false;
  for (const row of found.rows) {
    const next = nextValues(row, kind, d, deleted);
    if (!changed(row, next)) continue;
    await client.query({ ...UPDATE, values: [row.id, next.status, next.cpu_count, next.memory_mb, next.guest_os] });
    wrote = true;
  }
  return wrote;
}

/** Creates the lookup index the baseline gets (and drops it after), so it is not a straw man. */
export async function withBaselineIndex<T>(client: pg.Client, fn: () => Promise<T>): Promise<T> {
  await client.query('create index bench_baseline_vms_ns_name on public.vms (namespace, vm_name)');
  await client.query('analyze public.vms');
  try {
    return await fn();
  } finally {
    await client.query('drop index if exists public.bench_baseline_vms_ns_name');
  }
}

/** Runs the baseline over the batches until they run out or `budgetMs` of timed work has passed. */
export async function runBaseline(client: pg.Client, batches: Iterable<WatchEvent[]>, budgetMs: number): Promise<ContenderResult> {
  let events = 0;
  let rowsWritten = 0;
  let ms = 0;
  let capped = false;
  for (const batch of batches) {
    if (ms >= budgetMs) {
      capped = true;
      break;
    }
    const t0 = performance.now();
    await client.query('begin');
    for (const ev of batch) if (await applyOne(client, ev)) rowsWritten++;
    await client.query('commit');
    ms += performance.now() - t0;
    events += batch.length;
  }
  return { events, seconds: ms / 1000, eventsPerSec: events / (ms / 1000), capped, rowsWritten };
}
