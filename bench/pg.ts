// The PostgreSQL side of the harness: which server, a fresh migrated database per benchmark,
// and the SSVirt rows the sync fills in. Every benchmark starts from an empty, just-migrated
// database so one section's leftovers (dead tuples, a warm cache of rows) never flatter the next.
import crypto from 'node:crypto';
import pg from 'pg';
import { migrate } from '../src/pg/migrate.js';

export const LOCAL_DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** VMs are spread round robin over this many namespaces, like the simulator's seed() does. */
export const NAMESPACES = 50;

export function serverUrl(): string {
  return process.env.DATABASE_URL || LOCAL_DEFAULT_URL;
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

export interface BenchDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates and migrates `vmsync_bench_<label>_<random>`; drop() removes it (forcefully: watchers may linger). */
export async function createBenchDatabase(label: string): Promise<BenchDatabase> {
  const name = `vmsync_bench_${label.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 30)}_${crypto.randomBytes(3).toString('hex')}`;
  await admin((c) => c.query(`create database ${name}`));
  const url = withDatabase(serverUrl(), name);
  await migrate(url);
  return {
    url,
    name,
    drop: () => admin(async (c) => void (await c.query(`drop database if exists ${name} with (force)`))),
  };
}

export async function connect(url: string, applicationName = 'ssvirt-vm-sync bench'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  await client.connect();
  // An idle client whose database is dropped under it must not crash the harness.
  client.on('error', () => undefined);
  return client;
}

/** The namespace of VM number i (1-based), matching Cluster.seed({ namespaces: benchNamespaces() }). */
export function namespaceOf(i: number): string {
  return `tenant-${String((i - 1) % NAMESPACES).padStart(2, '0')}`;
}

export function vmNameOf(i: number): string {
  return `vm-${String(i).padStart(6, '0')}`;
}

export function benchNamespaces(): string[] {
  return Array.from({ length: NAMESPACES }, (_, k) => `tenant-${String(k).padStart(2, '0')}`);
}

/**
 * One SSVirt row per VM, as the SSVirt API creates them before KubeVirt reports anything:
 * status, cpu_count, memory_mb and guest_os NULL. Set-based so 100,000 rows take a second.
 */
export async function seedVmsRows(client: pg.Client, n: number): Promise<void> {
  await client.query(
    `insert into public.vms (id, name, vapp_id, vm_name, namespace, created_at, updated_at)
     select 'urn:vcloud:vm:' || md5('bench-vm-' || i)::uuid,
            'VM ' || i,
            'urn:vcloud:vapp:' || md5('bench-vapp-' || (i / 10))::uuid,
            'vm-' || lpad(i::text, 6, '0'),
            'tenant-' || lpad(((i - 1) % $2)::text, 2, '0'),
            now(), now()
       from generate_series(1, $1::int) as i`,
    [n, NAMESPACES],
  );
  await client.query('vacuum (analyze) public.vms');
}

/**
 * Puts the database back to "nothing synced yet" so each contender does the same work:
 * no snapshots, no change feed, no rejects, vms values NULL again; then vacuums and
 * checkpoints so one contender's dead tuples and dirty pages do not slow the next.
 */
export async function resetSyncState(client: pg.Client): Promise<void> {
  await client.query('truncate vm_sync.snapshots, vm_sync.changes, vm_sync.rejects');
  await client.query(
    `update public.vms set status = null, cpu_count = null, memory_mb = null, guest_os = null, updated_at = created_at
      where status is not null or cpu_count is not null or memory_mb is not null or guest_os is not null`,
  );
  await client.query('vacuum (analyze) public.vms');
  await client.query('checkpoint').catch(() => undefined);
}

/** Rows whose four synced values are all filled (the state a full sync reaches). */
export async function filledRows(client: pg.Client): Promise<number> {
  const r = await client.query<{ n: string }>(
    `select count(*) as n from public.vms
      where deleted_at is null and status is not null and cpu_count is not null and memory_mb is not null and guest_os is not null`,
  );
  return Number(r.rows[0]!.n);
}
