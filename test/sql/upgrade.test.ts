// An upgrade ends where a fresh install starts. A database migrated with the first landed release
// (test/fixtures/release-0.1.0, the migrations and sql/ of commit 6a7d09c) and then migrated by HEAD
// must be identical to a fresh HEAD database in every function, aggregate, view, type, table, index,
// constraint and grant, and the rows it staged before the upgrade must still merge.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { migrate, readSqlFiles } from '../../src/pg/migrate.js';
import { packageRoot } from '../../src/lib/paths.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { vm, vmi } from '../helpers/objects.js';
import { diffShapes, schemaShape } from '../helpers/schema-shape.js';
import { withDatabase } from '../helpers/server.js';
import { ev } from '../helpers/sync.js';

const releaseMigrations = path.join(packageRoot, 'test', 'fixtures', 'release-0.1.0', 'migrations');
const server = process.env.VM_SYNC_TEST_SERVER ?? process.env.DATABASE_URL!;
const created: string[] = [];

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function query<R extends pg.QueryResultRow = any>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  return withClient(url, async (c) => (await c.query<R>(sql, params)).rows);
}

async function emptyDatabase(): Promise<string> {
  const name = `vmsync_t_upgr_${crypto.randomBytes(4).toString('hex')}`;
  await query(server, `create database ${name}`);
  created.push(name);
  return withDatabase(server, name);
}

/** What `ssvirt-vm-sync migrate` did at release 0.1.0 (src/migrate.ts of 6a7d09c), with its migrations. */
async function migrateAsRelease(url: string): Promise<string[]> {
  return withClient(url, async (client) => {
    await client.query(`set lock_timeout = '60s'`);
    await client.query(`set client_min_messages = warning`);
    const ran = await runner({
      dbClient: client,
      dir: releaseMigrations,
      migrationsTable: 'migrations',
      migrationsSchema: 'vm_sync',
      createMigrationsSchema: true,
      direction: 'up',
      checkOrder: true,
      singleTransaction: true,
      advisoryLockMode: 'wait',
      logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    return ran.map((m) => m.name);
  });
}

interface Row { id: string; status: string | null; cpu_count: number | null; memory_mb: number | null }

async function vmsRow(url: string, id: string): Promise<Row> {
  const [row] = await query<Row>(url, 'select id, status, cpu_count, memory_mb from public.vms where id = $1', [id]);
  assert.ok(row, `no vms row ${id}`);
  return row;
}

const namespace = 'vdc-upgrade';
let upgraded: string;
let fresh: TestDatabase;
let upgradeResult: Awaited<ReturnType<typeof migrate>>;
let releaseDiff: string[];
const ids = { staged: 'urn:vcloud:vm:staged-before', merged: 'urn:vcloud:vm:merged-before' };
const stagedVmUid = crypto.randomUUID();

before(async () => {
  upgraded = await emptyDatabase();
  const release = await migrateAsRelease(upgraded);
  assert.equal(release.length, 5, 'the release has five migrations');

  // The release at work: one VM merged, another staged only (a cold start that stopped before its
  // reconcile), both with vms rows of their own.
  for (const [id, name] of [[ids.staged, 'staged-before'], [ids.merged, 'merged-before']] as const) {
    await query(upgraded, `insert into public.vms (id, name, vapp_id, vm_name, namespace) values ($1, $2, 'urn:vcloud:vapp:1', $2, $3)`,
      [id, name, namespace]);
  }
  await query(upgraded, 'select vm_sync.ingest($1::jsonb)',
    [JSON.stringify([ev('ADDED', vm({ namespace, name: 'merged-before', cores: 4, memory: '8Gi', printableStatus: 'Running' }))])]);
  await query(upgraded, 'select vm_sync.stage($1::jsonb)', [JSON.stringify([
    ev('ADDED', vm({ namespace, name: 'staged-before', uid: stagedVmUid, cores: 2, memory: '4Gi', printableStatus: 'Stopped' })),
    ev('ADDED', vmi({ namespace, name: 'staged-before', owner: { name: 'staged-before' }, cores: 2, memory: '4Gi' })),
  ])]);
  assert.equal((await vmsRow(upgraded, ids.staged)).cpu_count, null, 'staged, not merged yet');

  fresh = await createTestDatabase('upgrade_fresh');
  // The comparison sees the release for what it is: its own functions, none of HEAD's bookkeeping.
  releaseDiff = diffShapes(await schemaShape(upgraded), await schemaShape(fresh.url));
  upgradeResult = await migrate(upgraded);
});

after(async () => {
  await fresh?.drop();
  for (const name of created) await query(server, `drop database if exists ${name} with (force)`);
});

describe('upgrade from the first release (0.1.0) to HEAD', () => {
  it('applies the migrations added since and re-applies every sql/ file, reporting which changed', () => {
    assert.ok(upgradeResult.applied.includes('1732600000006_upgrade-foundation'), upgradeResult.applied.join(', '));
    assert.ok(upgradeResult.applied.every((m) => m > '1732600000005'), 'the release\'s own migrations do not run again');
    const files = readSqlFiles().map((f) => f.file);
    assert.deepEqual(upgradeResult.reappliedSqlFiles, files);
    assert.deepEqual(upgradeResult.changedSqlFiles, files, 'nothing was recorded before the upgrade');
  });

  it('before the upgrade, the release differs from HEAD (the comparison can fail)', () => {
    const text = releaseDiff.join('\n');
    assert.match(text, /only in upgraded: function vm_sync\.rv_lower\(text,text\)/, text);
    assert.match(text, /only in fresh: relation vm_sync\.sql_files/, text);
  });

  it('ends identical to a fresh HEAD database: functions, aggregates, views, types, tables, indexes, constraints, grants', async () => {
    const diff = diffShapes(await schemaShape(upgraded), await schemaShape(fresh.url));
    assert.deepEqual(diff, [], diff.join('\n'));
  });

  it('merges the rows staged before the upgrade, and ingests after it', async () => {
    await query(upgraded, 'select vm_sync.reconcile()');
    assert.deepEqual(await vmsRow(upgraded, ids.staged), { id: ids.staged, status: 'POWERED_OFF', cpu_count: 2, memory_mb: 4096 });
    assert.deepEqual(await vmsRow(upgraded, ids.merged), { id: ids.merged, status: 'POWERED_ON', cpu_count: 4, memory_mb: 8192 });
    await query(upgraded, 'select vm_sync.ingest($1::jsonb)', [JSON.stringify([
      ev('MODIFIED', vm({ namespace, name: 'staged-before', uid: stagedVmUid, cores: 2, memory: '4Gi', printableStatus: 'Running' })),
    ])]);
    assert.equal((await vmsRow(upgraded, ids.staged)).status, 'POWERED_ON');
  });

  it('a second migrate re-applies nothing', async () => {
    const again = await migrate(upgraded);
    assert.deepEqual([again.applied, again.changedSqlFiles, again.reappliedSqlFiles], [[], [], []]);
  });
});

describe('the comparison and the hashes catch a function file that was not re-applied', () => {
  it('a stale function body, a leftover function or a lost grant is a difference', async () => {
    const db = await emptyDatabase();
    await migrate(db);
    assert.deepEqual(diffShapes(await schemaShape(db), await schemaShape(fresh.url)), []);
    // What a database looks like when sql/030_status.sql changed and migrate did not apply it.
    await query(db, `create or replace function vm_sync.map_printable_status(printable_status text)
                     returns text language sql immutable strict parallel safe as $$ select 'UNKNOWN' $$`);
    await query(db, `create function vm_sync.removed_upstream() returns int language sql as $$ select 1 $$`);
    await query(db, `revoke execute on function vm_sync.reconcile() from vm_sync_writer`);
    const diff = diffShapes(await schemaShape(db), await schemaShape(fresh.url));
    assert.equal(diff.length, 3, diff.join('\n'));
    assert.match(diff.join('\n'), /differs: function vm_sync\.map_printable_status\(text\)/);
    assert.match(diff.join('\n'), /only in upgraded: function vm_sync\.removed_upstream\(\)/);
    assert.match(diff.join('\n'), /differs: function vm_sync\.reconcile\(\)/);

    // The recorded hashes still match the files, so migrate sees nothing to do...
    assert.deepEqual((await migrate(db)).reappliedSqlFiles, []);
    // ...until the record says the file changed (as it does after a real edit of sql/030_status.sql).
    await query(db, `update vm_sync.sql_files set sha256 = 'before-the-edit' where file = '030_status.sql'`);
    const result = await migrate(db);
    assert.deepEqual(result.changedSqlFiles, ['030_status.sql']);
    assert.deepEqual(result.reappliedSqlFiles, readSqlFiles().map((f) => f.file), 'every file, in order');
    // The function and the grant are back; the leftover is for a migration to drop, and stays a difference.
    assert.deepEqual(diffShapes(await schemaShape(db), await schemaShape(fresh.url)), ['only in upgraded: function vm_sync.removed_upstream()']);
  });
});
