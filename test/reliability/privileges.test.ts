// Least privilege: vm_sync_writer can only call the entry functions, vm_sync_reader can only read
// the views and call pure functions, nothing in vm_sync is executable by PUBLIC, and the
// SECURITY DEFINER functions cannot be steered by the caller's search_path.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { createLoginRole, dropLoginRoles } from '../helpers/roles.js';
import { ev, vm, vmi, vmsRowsSql } from './objects.js';

const WRITER_FUNCTIONS = [
  'vm_sync.apply_batch(jsonb,jsonb,boolean)',
  'vm_sync.assert_leader()',
  'vm_sync.begin_term(text,text,jsonb)',
  'vm_sync.checkpoints()',
  'vm_sync.current_leader()',
  'vm_sync.finish_list(text,text,text[],text,boolean)',
  'vm_sync.ingest(jsonb)',
  'vm_sync.leader_reconcile()',
  'vm_sync.populated_ratio()',
  'vm_sync.reconcile()',
  'vm_sync.record_api(text,text,boolean)',
  'vm_sync.reconcile_summary()',
  'vm_sync.report_watches(text[],double precision)',
  'vm_sync.renew_lease(bigint)',
  'vm_sync.resign()',
  'vm_sync.save_checkpoints(jsonb)',
  'vm_sync.staging_lost()',
  'vm_sync.save_list_progress(jsonb)',
  'vm_sync.schema_version()',
  'vm_sync.record_rejects(jsonb)',
  'vm_sync.stage(jsonb)',
  'vm_sync.status_report(integer)',
  'vm_sync.sweep(text,text[],text[],boolean)',
  'vm_sync.try_lead(text)',
];
const READER_VIEWS = ['vm_sync.snapshot_overview', 'vm_sync.recent_rejects', 'vm_sync.change_feed', 'vm_sync.sync_status'];

let db: TestDatabase;
const clients: pg.Client[] = [];

/** A connection as a LOGIN member of `group` (its own password), unique to this run; dropped in after(). */
async function loginAs(group: string): Promise<pg.Client> {
  const { url } = await createLoginRole(db, group);
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  clients.push(client);
  return client;
}

async function denied(client: pg.Client, sql: string, params: unknown[] = []): Promise<void> {
  await assert.rejects(client.query(sql, params), (err: any) => {
    assert.equal(err.code, '42501', `${sql}: expected permission denied, got ${err.code} ${err.message}`);
    return true;
  });
}

const json = (v: unknown) => JSON.stringify(v);

before(async () => {
  db = await createTestDatabase('privileges');
  const rows = vmsRowsSql([
    { namespace: 'default', name: 'alpha' },
    { namespace: 'default', name: 'beta' },
    { namespace: 'default', name: 'gamma' },
  ]);
  await db.query(rows.sql, rows.params);
});

after(async () => {
  for (const c of clients) await c.end().catch(() => undefined);
  await dropLoginRoles(db);
  await db.drop();
});

describe('roles', () => {
  test('both group roles exist and cannot log in', async () => {
    const rows = await db.query(`select rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls
                                   from pg_roles where rolname in ('vm_sync_writer', 'vm_sync_reader') order by 1`);
    assert.deepEqual(
      rows.map((r) => [r.rolname, r.rolcanlogin, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls]),
      [
        ['vm_sync_reader', false, false, false, false, false],
        ['vm_sync_writer', false, false, false, false, false],
      ],
    );
  });

  test('no vm_sync routine is executable by PUBLIC', async () => {
    const rows = await db.query(`
      select p.oid::regprocedure::text as fn
        from pg_proc p
       where p.pronamespace = 'vm_sync'::regnamespace
         and (p.proacl is null or exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0))`);
    assert.deepEqual(rows.map((r) => r.fn), []);
  });

  test('PUBLIC has no privilege on the schema or its tables', async () => {
    const [schema] = await db.query(`select has_schema_privilege('public', 'vm_sync', 'usage') as usage`);
    assert.equal(schema.usage, false);
    const tables = await db.query(`
      select c.oid::regclass::text as rel from pg_class c
       where c.relnamespace = 'vm_sync'::regnamespace and c.relkind in ('r', 'v', 'p')
         and c.relacl is not null and exists (select 1 from aclexplode(c.relacl) a where a.grantee = 0)`);
    assert.deepEqual(tables.map((r) => r.rel), []);
  });

  test('the writer may execute exactly the entry functions', async () => {
    const rows = await db.query(`
      select p.oid::regprocedure::text as fn
        from pg_proc p
       where p.pronamespace = 'vm_sync'::regnamespace
         and has_function_privilege('vm_sync_writer', p.oid, 'execute')
       order by 1`);
    assert.deepEqual(rows.map((r) => r.fn.replace(/, /g, ',')).sort(), [...WRITER_FUNCTIONS].sort());
  });

  test('the writer has no privilege on any table or view, the reader only SELECT on the views', async () => {
    const rows = await db.query(`
      select r.rolname, c.oid::regclass::text as rel, p.priv
        from pg_class c
       cross join (values ('vm_sync_writer'), ('vm_sync_reader')) as r(rolname)
       cross join unnest(array['select', 'insert', 'update', 'delete', 'truncate', 'references', 'trigger']) as p(priv)
       where c.relnamespace in ('vm_sync'::regnamespace, 'public'::regnamespace)
         and c.relkind in ('r', 'v', 'm', 'p', 'f')
         and has_table_privilege(r.rolname, c.oid, p.priv)
       order by 1, 2, 3`);
    assert.deepEqual(
      rows.map((r) => `${r.rolname} ${r.priv} ${r.rel}`),
      READER_VIEWS.map((v) => `vm_sync_reader select ${v}`).sort(),
    );
  });

  test('functions created later by the migrating role are not public', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      await client.query(`create function vm_sync.later_function() returns int language sql as 'select 1'`);
      const [row] = (
        await client.query(`select has_function_privilege('vm_sync_reader', 'vm_sync.later_function()', 'execute') as reader,
                                   exists (select 1 from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                                            where p.oid = 'vm_sync.later_function()'::regprocedure and a.grantee = 0) as public`)
      ).rows;
      assert.deepEqual(row, { reader: false, public: false });
    } finally {
      await client.query('rollback');
      client.release();
    }
  });
});

describe('vm_sync_writer', () => {
  test('calls ingest and apply_batch; the rows change', async () => {
    const w = await loginAs('vm_sync_writer');
    const r1 = await w.query('select vm_sync.ingest($1::jsonb) as s', [
      json([ev('ADDED', vm({ name: 'alpha', cpu: { sockets: 2 }, memory: '4Gi', printableStatus: 'Running' }))]),
    ]);
    assert.equal(r1.rows[0].s.vms_updated, 1);
    const term = (await w.query(`select vm_sync.try_lead('privileges-test') as t`)).rows[0].t;
    assert.ok(term !== null, 'the writer can take the leader lease');
    const r2 = await w.query('select vm_sync.apply_batch($1::jsonb, $2::jsonb) as s', [
      json([ev('ADDED', vm({ name: 'beta', memory: '1Gi', printableStatus: 'Stopped' }))]),
      json([{ kind: 'VirtualMachine', scope: '', resourceVersion: '42' }]),
    ]);
    assert.equal(r2.rows[0].s.vms_updated, 1);
    const checkpoints = (await w.query('select kind, resource_version from vm_sync.checkpoints()')).rows;
    assert.deepEqual(checkpoints, [{ kind: 'VirtualMachine', resource_version: '42' }]);
    await w.query('select vm_sync.reconcile()');
    await w.query('select * from vm_sync.populated_ratio()');
    await w.query('select vm_sync.resign()');
    const rows = await db.query(`select vm_name, status, cpu_count, memory_mb from public.vms where vm_name in ('alpha', 'beta') order by 1`);
    assert.deepEqual(rows, [
      { vm_name: 'alpha', status: 'POWERED_ON', cpu_count: 2, memory_mb: 4096 },
      { vm_name: 'beta', status: 'POWERED_OFF', cpu_count: null, memory_mb: 1024 },
    ]);
  });

  test('is denied every table, internal function and view', async () => {
    const w = await loginAs('vm_sync_writer');
    await denied(w, `update public.vms set cpu_count = 64 where vm_name = 'alpha'`);
    await denied(w, 'select * from public.vms');
    await denied(w, `insert into public.vms (id, name, vapp_id) values ('x', 'x', 'x')`);
    await denied(w, 'select * from vm_sync.snapshots');
    await denied(w, 'select * from vm_sync.changes');
    await denied(w, 'select * from vm_sync.rejects');
    await denied(w, 'select * from vm_sync.watch_state');
    await denied(w, 'delete from vm_sync.leader');
    await denied(w, `update vm_sync.settings set value = '1 second'`);
    await denied(w, 'select * from vm_sync.change_feed');
    await denied(w, `select vm_sync.merge(array['default'], array['alpha'])`);
    await denied(w, `select vm_sync.stage_events('[]'::jsonb)`);
    await denied(w, 'select vm_sync.prune()');
    await denied(w, `select vm_sync.parse_quantity('1Gi')`);
    await denied(w, 'create table vm_sync.mine (x int)');
    const rows = await db.query(`select cpu_count from public.vms where vm_name = 'alpha'`);
    assert.equal(rows[0].cpu_count, 2);
  });

  test('a writer that is not the leader cannot apply a batch', async () => {
    const leader = await loginAs('vm_sync_writer');
    const other = await loginAs('vm_sync_writer');
    assert.notEqual((await leader.query(`select vm_sync.try_lead('a') as t`)).rows[0].t, null);
    assert.equal((await other.query(`select vm_sync.try_lead('b') as t`)).rows[0].t, null);
    await assert.rejects(
      other.query('select vm_sync.apply_batch($1::jsonb, $2::jsonb)', [json([]), json([])]),
      (err: any) => err.code === 'VS001',
    );
    await leader.query('select vm_sync.resign()');
  });
});

describe('vm_sync_reader', () => {
  test('selects the views, calls pure functions, and hears notifications', async () => {
    const r = await loginAs('vm_sync_reader');
    for (const view of READER_VIEWS) await r.query(`select * from ${view} limit 5`);
    assert.equal((await r.query(`select vm_sync.parse_quantity('1.5Gi')::text as q`)).rows[0].q, '1610612736.0');
    const derived = (await r.query(`select (vm_sync.derive_vm($1::jsonb)).memory_mb as mb`, [json(vm({ name: 'x', memory: '3Gi' }))])).rows[0];
    assert.equal(derived.mb, 3072);

    await r.query('listen vm_changed');
    const heard = new Promise<any>((resolve) => r.once('notification', (n) => resolve(JSON.parse(n.payload ?? '{}'))));
    await db.query('select vm_sync.ingest($1::jsonb)', [json([ev('ADDED', vmi({ name: 'gamma', cpu: { cores: 3 }, memory: '6Gi' }))])]);
    const note = await heard;
    assert.equal(note.vm_name, 'gamma');
    const feed = (await r.query('select vm_name, changes from vm_sync.change_feed where seq = $1', [note.seq])).rows;
    assert.equal(feed.length, 1);
    assert.deepEqual(feed[0].changes.cpu_count, { old: null, new: 3 });

    const overview = (await r.query(`select * from vm_sync.snapshot_overview where name = 'gamma'`)).rows[0];
    assert.equal(overview.memory_mb, 6144);
    assert.ok(!('object' in overview), 'the raw object is not exposed');
    const [status] = (await r.query('select * from vm_sync.sync_status')).rows;
    assert.ok(Number(status.last_change_seq) >= Number(note.seq));
  });

  test('shows rejected objects by type only', async () => {
    const r = await loginAs('vm_sync_reader');
    await db.query('select vm_sync.ingest($1::jsonb)', [json([{ type: 'ADDED', object: 'not an object' }, { type: 'ADDED', object: { kind: 'VirtualMachine', metadata: { name: 'n', namespace: 'default' }, spec: { template: { spec: { domain: { resources: { requests: { memory: { secret: 'hunter2' } } } } } } } } }])]);
    const rows = (await r.query(`select field, value, reason from vm_sync.recent_rejects order by id`)).rows;
    assert.ok(rows.some((x) => x.field === 'object'));
    assert.ok(!JSON.stringify(rows).includes('hunter2'), 'an object value is not shown');
  });

  test('is denied tables and the writing functions', async () => {
    const r = await loginAs('vm_sync_reader');
    await denied(r, 'select * from vm_sync.snapshots');
    await denied(r, 'select * from vm_sync.changes');
    await denied(r, 'select * from public.vms');
    await denied(r, `select vm_sync.ingest('[]'::jsonb)`);
    await denied(r, `select vm_sync.apply_batch('[]'::jsonb, '[]'::jsonb)`);
    await denied(r, `select vm_sync.try_lead('reader')`);
    await denied(r, 'select vm_sync.reconcile()');
    await denied(r, `insert into vm_sync.settings values ('x', 'y')`);
    // Views are not updatable through the reader.
    await denied(r, 'delete from vm_sync.change_feed');
  });
});

describe('SECURITY DEFINER functions', () => {
  test('every one pins a search_path of pg_catalog, with pg_temp last', async () => {
    const rows = await db.query(`
      select p.oid::regprocedure::text as fn,
             (select c from unnest(p.proconfig) c where c like 'search_path=%') as path
        from pg_proc p
       where p.pronamespace = 'vm_sync'::regnamespace and p.prosecdef
       order by 1`);
    assert.ok(rows.length >= WRITER_FUNCTIONS.length, 'the entry functions are SECURITY DEFINER');
    for (const { fn, path } of rows) {
      assert.ok(path, `${fn} has no pinned search_path`);
      const parts = String(path).slice('search_path='.length).split(',').map((s) => s.trim().replace(/"/g, ''));
      assert.equal(parts[0], 'pg_catalog', `${fn}: search_path ${path} must start with pg_catalog`);
      assert.equal(parts.at(-1), 'pg_temp', `${fn}: search_path ${path} must end with pg_temp`);
      for (const p of parts) assert.ok(['pg_catalog', 'pg_temp', 'vm_sync'].includes(p), `${fn}: ${p} in search_path`);
    }
    // The internals they call carry no SET of their own (a SET costs a GUC save/restore per call and
    // blocks inlining on the hot path); inside a definer they run under its pinned search_path, which
    // the hostile search_path test below proves. So they must be neither definers nor callable by PUBLIC.
    const unpinned = await db.query(`
      select p.oid::regprocedure::text as fn from pg_proc p
       where p.pronamespace = 'vm_sync'::regnamespace and p.prokind = 'f'
         and not exists (select 1 from unnest(p.proconfig) c where c like 'search_path=%')
         and (p.prosecdef or has_function_privilege('public', p.oid, 'execute'))`);
    assert.deepEqual(unpinned.map((r) => r.fn), []);
  });

  test('ignore a hostile search_path: shadow functions, operators and tables are never used', async () => {
    const w = await loginAs('vm_sync_writer');
    const evil = `evil_${crypto.randomBytes(3).toString('hex')}`;
    // The attacker owns a schema full of look-alikes, and records any call into them.
    await db.query(`
      create schema ${evil};
      create table ${evil}.calls (what text);
      grant usage on schema ${evil} to public;
      grant insert, select on ${evil}.calls to public;
      create function ${evil}.jsonb_array_elements(jsonb) returns setof jsonb language plpgsql as $$
        begin insert into ${evil}.calls values ('jsonb_array_elements'); return; end $$;
      create function ${evil}.jsonb_typeof(jsonb) returns text language plpgsql as $$
        begin insert into ${evil}.calls values ('jsonb_typeof'); return 'object'; end $$;
      create function ${evil}.now() returns timestamptz language plpgsql as $$
        begin insert into ${evil}.calls values ('now'); return '2000-01-01'; end $$;
      create function ${evil}.arrow(a jsonb, b text) returns jsonb language plpgsql as $$
        begin insert into ${evil}.calls values ('->'); return '"evil"'::jsonb; end $$;
      create operator ${evil}.-> (leftarg = jsonb, rightarg = text, function = ${evil}.arrow);
      create function ${evil}.arrow2(a jsonb, b text) returns text language plpgsql as $$
        begin insert into ${evil}.calls values ('->>'); return 'evil'; end $$;
      create operator ${evil}.->> (leftarg = jsonb, rightarg = text, function = ${evil}.arrow2);
      create table ${evil}.vms (like public.vms);
      create table ${evil}.snapshots (like vm_sync.snapshots);
      create table ${evil}.changes (like vm_sync.changes);
      grant all on ${evil}.vms, ${evil}.snapshots, ${evil}.changes to public;
      grant execute on all functions in schema ${evil} to public;
    `);
    try {
      // The shadows work for a plain query on that path: the trap is armed.
      await w.query(`set search_path = ${evil}, pg_catalog, public`);
      const trap = await w.query(`select '{"a": 1}'::jsonb -> 'a' as v`);
      assert.equal(trap.rows[0].v, 'evil');
      await db.query(`truncate ${evil}.calls`);
      // Temporary look-alikes too (pg_temp is searched first unless a function pins it last).
      await w.query('create temp table vms (id text, vm_name text, namespace text, status text, cpu_count int, memory_mb int, guest_os text, updated_at timestamptz, deleted_at timestamptz)');
      await w.query('create temp table snapshots (id int)');

      const summary = (
        await w.query('select vm_sync.ingest($1::jsonb) as s', [
          json([
            ev('ADDED', vm({ name: 'gamma', cpu: { sockets: 2, cores: 2 }, memory: '8Gi', printableStatus: 'Running', rv: 10 })),
            ev('ADDED', vmi({ name: 'gamma', cpu: { sockets: 1, cores: 4, threads: 2 }, memory: '7Gi', guestOS: { prettyName: 'Fedora Linux 41' }, rv: 11 })),
          ]),
        ])
      ).rows[0].s;
      assert.equal(summary.events, 2);
      assert.equal(summary.staged, 2);
      await w.query(`select vm_sync.try_lead('evil-path')`);
      await w.query('select vm_sync.apply_batch($1::jsonb, $2::jsonb)', [
        json([ev('MODIFIED', vm({ name: 'beta', memory: '512Mi', printableStatus: 'Paused', rv: 12 }))]),
        json([{ kind: 'VirtualMachine', scope: '', resourceVersion: '12' }]),
      ]);
      await w.query('select vm_sync.reconcile()');
      await w.query('select vm_sync.resign()');

      assert.deepEqual(await db.query(`select what from ${evil}.calls`), [], 'no shadow was called');
      for (const t of ['vms', 'snapshots', 'changes']) {
        assert.deepEqual(await db.query(`select * from ${evil}.${t}`), [], `${evil}.${t} untouched`);
      }
      assert.equal((await w.query('select count(*)::int as n from pg_temp.vms')).rows[0].n, 0);
      const rows = await db.query(`select vm_name, status, cpu_count, memory_mb, guest_os, updated_at > now() - interval '1 hour' as fresh
                                     from public.vms where vm_name in ('beta', 'gamma') order by 1`);
      assert.deepEqual(rows, [
        { vm_name: 'beta', status: 'SUSPENDED', cpu_count: null, memory_mb: 512, guest_os: null, fresh: true },
        { vm_name: 'gamma', status: 'POWERED_ON', cpu_count: 8, memory_mb: 7168, guest_os: 'Fedora Linux 41', fresh: true },
      ]);
    } finally {
      await w.query('reset search_path').catch(() => undefined);
      await db.query(`drop schema ${evil} cascade`);
    }
  });
});
