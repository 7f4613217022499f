// Small, explicit helpers for talking to the sync engine in tests.
import crypto from 'node:crypto';
import pg from 'pg';
import type { TestDatabase } from './db.js';
import type { WatchEvent } from './objects.js';

export interface VmRow {
  id: string;
  name: string;
  vm_name: string | null;
  namespace: string | null;
  status: string | null;
  cpu_count: number | null;
  memory_mb: number | null;
  guest_os: string | null;
  updated_at: Date;
  deleted_at: Date | null;
  xmin: string;
}

export interface Summary {
  events: number;
  staged: number;
  unchanged: number;
  ignored: number;
  bookmarks: number;
  rejected: number;
  vms_updated: number;
  notifications: number;
  field_updates: { namespace: string; field: string; result: string; count: number }[];
}

/** Inserts an SSVirt vms row, as the SSVirt API would when a user creates a VM. */
export async function insertVmRow(
  db: TestDatabase,
  row: { vmName: string; namespace?: string; id?: string; cpu?: number | null; memory?: number | null; guestOs?: string | null; status?: string | null; deleted?: boolean },
): Promise<string> {
  const id = row.id ?? `urn:vcloud:vm:${crypto.randomUUID()}`;
  await db.query(
    `insert into public.vms (id, name, vapp_id, vm_name, namespace, status, cpu_count, memory_mb, guest_os, deleted_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, case when $10 then now() end)`,
    [id, `display ${row.vmName}`, `urn:vcloud:vapp:${crypto.randomUUID()}`, row.vmName, row.namespace ?? 'vdc-clowns-east1',
     row.status ?? null, row.cpu ?? null, row.memory ?? null, row.guestOs ?? null, row.deleted ?? false],
  );
  return id;
}

export async function ingest(db: TestDatabase | pg.ClientBase, events: unknown[]): Promise<Summary> {
  const rows = 'pool' in db
    ? await db.query<{ s: Summary }>('select vm_sync.ingest($1::jsonb) as s', [JSON.stringify(events)])
    : (await db.query<{ s: Summary }>('select vm_sync.ingest($1::jsonb) as s', [JSON.stringify(events)])).rows;
  return rows[0]!.s;
}

export async function vmRow(db: TestDatabase, id: string): Promise<VmRow> {
  const rows = await db.query<VmRow>(`select *, xmin::text as xmin from public.vms where id = $1`, [id]);
  if (!rows[0]) throw new Error(`no vms row ${id}`);
  return rows[0];
}

/** The four synced values of a row, for compact assertions. */
export async function synced(db: TestDatabase, id: string) {
  const r = await vmRow(db, id);
  return { status: r.status, cpu_count: r.cpu_count, memory_mb: r.memory_mb, guest_os: r.guest_os };
}

export interface Reject {
  kind: string | null;
  namespace: string | null;
  name: string | null;
  field: string;
  value: unknown;
  reason: string;
}

export async function rejects(db: TestDatabase): Promise<Reject[]> {
  return db.query<Reject>('select kind, namespace, name, field, value, reason from vm_sync.rejects order by id');
}

/** A real LISTEN connection collecting vm_changed payloads. */
export async function listen(url: string): Promise<{ payloads: any[]; close(): Promise<void>; drain(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const payloads: any[] = [];
  client.on('notification', (n) => {
    if (n.channel === 'vm_changed') payloads.push(JSON.parse(n.payload ?? 'null'));
  });
  await client.query('listen vm_changed');
  return {
    payloads,
    // A round trip on the listening connection after the writer committed: every notification sent
    // before that commit has been delivered on this connection by the time the reply arrives.
    async drain() {
      await client.query('select 1');
    },
    async close() {
      await client.end();
    },
  };
}

export function ev(type: string, object: unknown): WatchEvent {
  return { type, object: object as WatchEvent['object'] };
}
