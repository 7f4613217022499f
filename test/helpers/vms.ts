// Waiting for SSVirt's vms rows to reach expected values (end-to-end watcher tests).
import assert from 'node:assert/strict';
import type { TestDatabase } from './db.js';
import { eventually } from './eventually.js';
import type { VmRow } from './sync.js';

export type VmValues = Partial<Record<'status' | 'cpu_count' | 'memory_mb' | 'guest_os', unknown>>;

/** The live vms row of namespace/vmName. */
export async function liveVmRow(db: TestDatabase, namespace: string, vmName: string): Promise<VmRow> {
  const rows = await db.query<VmRow>(
    'select *, xmin::text as xmin from public.vms where namespace = $1 and vm_name = $2 and deleted_at is null',
    [namespace, vmName],
  );
  assert.ok(rows[0], `no live vms row for ${namespace}/${vmName}`);
  return rows[0];
}

/** Polls until the row has every value of `want`; fails with the last mismatch after timeoutMs. */
export function expectVm(db: TestDatabase, namespace: string, vmName: string, want: VmValues, what: string, timeoutMs = 15_000): Promise<VmRow> {
  return eventually(
    async () => {
      const row = await liveVmRow(db, namespace, vmName);
      for (const [k, v] of Object.entries(want)) assert.equal((row as unknown as Record<string, unknown>)[k], v, `${k} of ${namespace}/${vmName}`);
      return row;
    },
    timeoutMs,
    what,
  );
}

/** Relists recorded in vm_sync.watch_state, per kind. */
export async function relists(db: TestDatabase): Promise<Record<string, number>> {
  const rows = await db.query<{ kind: string; relists: string }>('select kind, sum(relists)::text as relists from vm_sync.watch_state group by kind');
  return Object.fromEntries(rows.map((r) => [r.kind, Number(r.relists)]));
}
