// The migrations against the databases SSVirt users actually have: none yet, the application's own
// vms table (never touched), and a vms table too old for the sync (a clear refusal).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { migrate } from '../../src/pg/migrate.js';
import { withDatabase } from '../helpers/server.js';

const server = process.env.VM_SYNC_TEST_SERVER ?? process.env.DATABASE_URL!;
const created: string[] = [];

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: server });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** An empty database of its own (not the migrated template): these tests are about migrating. */
async function emptyDatabase(): Promise<string> {
  const name = `vmsync_t_migr_${crypto.randomBytes(4).toString('hex')}`;
  await admin(`create database ${name}`);
  created.push(name);
  return withDatabase(server, name);
}

async function query<R extends pg.QueryResultRow = any>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Everything about public.vms a migration could change: columns, constraints, indexes, triggers, rows. */
async function shapeOfVms(url: string): Promise<unknown> {
  return query(url, `
    select (select json_agg(json_build_object('c', attname, 't', format_type(atttypid, atttypmod), 'n', attnotnull) order by attnum)
              from pg_attribute where attrelid = 'public.vms'::regclass and attnum > 0 and not attisdropped) as columns,
           (select json_agg(pg_get_constraintdef(oid) order by conname) from pg_constraint where conrelid = 'public.vms'::regclass) as constraints,
           (select json_agg(indexdef order by indexname) from pg_indexes where schemaname = 'public' and tablename = 'vms') as indexes,
           (select count(*) from pg_trigger where tgrelid = 'public.vms'::regclass) as triggers,
           (select json_agg(v order by id) from public.vms v) as rows`);
}

after(async () => {
  for (const name of created) await admin(`drop database if exists ${name} with (force)`);
});

describe('migrations', () => {
  it('on an empty database create vms with SSVirt\'s shape, and the vm_sync schema', async () => {
    const url = await emptyDatabase();
    const { applied } = await migrate(url);
    assert.ok(applied.length >= 4);
    const cols = await query<{ column_name: string; data_type: string }>(url,
      `select column_name, data_type from information_schema.columns where table_schema = 'public' and table_name = 'vms' order by ordinal_position`);
    assert.deepEqual(cols.map((c) => c.column_name), [
      'id', 'name', 'description', 'vapp_id', 'vm_name', 'namespace', 'status', 'cpu_count', 'memory_mb', 'guest_os',
      'created_at', 'updated_at', 'deleted_at']);
    await assert.rejects(query(url, `insert into public.vms (id, name, vapp_id, cpu_count) values ('x', 'n', 'v', 0)`), /check constraint/);
    const fns = await query<{ n: number }>(url, `select count(*)::int as n from pg_proc where pronamespace = 'vm_sync'::regnamespace`);
    assert.ok(fns[0]!.n > 10);
    assert.deepEqual((await migrate(url)).applied, [], 'a second run has nothing to do');
  });

  it('leave an existing SSVirt vms table exactly as it is: columns, constraints, indexes, triggers and rows', async () => {
    const url = await emptyDatabase();
    await query(url, `
      create table public.vms (
        id varchar(255) primary key, name text not null, description text, vapp_id varchar(255) not null,
        vm_name text, namespace text, status text default 'UNKNOWN', cpu_count integer check (cpu_count > 0),
        memory_mb integer check (memory_mb > 0), guest_os text, created_at timestamptz, updated_at timestamptz,
        deleted_at timestamptz, owner_id text);
      create index idx_vms_vapp_id on public.vms (vapp_id);
      create index idx_vms_deleted_at on public.vms (deleted_at);
      create function public.touch() returns trigger language plpgsql as $$ begin return new; end $$;
      create trigger vms_touch before update on public.vms for each row execute function public.touch();
      insert into public.vms (id, name, vapp_id, vm_name, namespace, cpu_count) values ('urn:vcloud:vm:1', 'a', 'v', 'a', 'ns', 2);`);
    const before = await shapeOfVms(url);
    await migrate(url);
    assert.deepEqual(await shapeOfVms(url), before);
  });

  it('refuse, with a message naming the missing columns, a vms table that lacks what the sync needs', async () => {
    const url = await emptyDatabase();
    await query(url, `create table public.vms (id varchar(255) primary key, name text not null, vapp_id varchar(255) not null,
                                              vm_name text, namespace text, status text, updated_at timestamptz, deleted_at timestamptz)`);
    await assert.rejects(migrate(url), (err: Error) => {
      assert.match(err.message, /public\.vms lacks column\(s\) cpu_count, guest_os, memory_mb/);
      return true;
    });
    const schema = await query(url, `select 1 from pg_namespace where nspname = 'vm_sync' and exists (select 1 from pg_proc where pronamespace = oid)`);
    assert.equal(schema.length, 0, 'nothing of the sync is left behind: the migrations run in one transaction');
  });

  it('two migrators at once: one applies, the other waits and finds nothing to do', async () => {
    const url = await emptyDatabase();
    const [a, b] = await Promise.all([migrate(url), migrate(url)]);
    assert.equal(Math.min(a.applied.length, b.applied.length), 0);
    assert.ok(Math.max(a.applied.length, b.applied.length) >= 4);
  });
});
