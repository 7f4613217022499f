// The database's own boundaries (issue 16, items 2 and 4), with the real watcher logged in as a
// vm_sync_writer role: a vm_sync_reader holding everything it can take does not stop the sync; a
// server-wide statement_timeout of 150 ms does not either (the watcher's sessions set their own).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { createLoginRole, dropLoginRoles } from '../helpers/roles.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm } from '../helpers/vms.js';
import { startWatcher, stopAllWatchers, tempDir } from '../helpers/watcher.js';

const GUARD_MS = 180_000;

/** Every advisory lock key in the source, old and new: the leader and ingest keys of 0.1, node-pg-migrate's. */
const ADVISORY_KEYS = ['7358200110000000001', '7358200110000000002', '7241865325823964'];

describe('a reader cannot stop the sync', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let reader: pg.Client;
  const NS = 'vdc-boundaries';

  before(async () => {
    db = await createTestDatabase('rel_boundaries');
    sim = await startSimulator({ bookmarkIntervalMs: 200 });
  });

  after(async () => {
    await stopAllWatchers();
    await reader?.end().catch(() => undefined);
    await sim?.close();
    await dropLoginRoles(db).catch(() => undefined);
    await db?.drop();
  });

  test('a vm_sync_reader holding every advisory key, every lock it may take and an open transaction does not stop the sync', { timeout: GUARD_MS * 2 }, async () => {
    const readerRole = await createLoginRole(db, 'vm_sync_reader');
    const writerRole = await createLoginRole(db, 'vm_sync_writer');
    reader = new pg.Client({ connectionString: readerRole.url });
    await reader.connect();
    const held: string[] = [];
    for (const key of ADVISORY_KEYS) {
      if ((await reader.query<{ ok: boolean }>('select pg_try_advisory_lock($1::bigint) as ok', [key])).rows[0]!.ok) held.push(`advisory ${key}`);
    }
    assert.equal(held.length, ADVISORY_KEYS.length, 'the reader holds every advisory key');
    // Row locks: a locking clause needs UPDATE privilege, which the reader has on nothing.
    for (const view of ['vm_sync.sync_status', 'vm_sync.change_feed', 'vm_sync.snapshot_overview', 'vm_sync.recent_rejects']) {
      await assert.rejects(reader.query(`select 1 from ${view} for share`), { code: '42501' }, `${view} for share`);
    }
    for (const table of ['vm_sync.leader', 'vm_sync.writer', 'vm_sync.snapshots', 'vm_sync.settings']) {
      await assert.rejects(reader.query(`select 1 from ${table} for update`), { code: '42501' }, `${table} for update`);
    }
    // Table locks: the strongest it may take, held in a transaction left open for the whole test.
    await reader.query('begin');
    for (const view of ['vm_sync.sync_status', 'vm_sync.change_feed', 'vm_sync.snapshot_overview', 'vm_sync.recent_rejects']) {
      await reader.query(`lock table ${view} in access share mode`);
      await reader.query('savepoint s');
      await assert.rejects(reader.query(`lock table ${view} in exclusive mode`), { code: '42501' });
      await reader.query('rollback to savepoint s');
    }
    await reader.query('select * from vm_sync.sync_status');

    const kubeconfig = path.join(tempDir('boundaries'), 'kubeconfig');
    await sim.writeKubeconfig(kubeconfig);
    for (const name of ['b-1', 'b-2']) {
      await sim.createVM(NS, name, { running: true, cpu: { cores: 1 }, memory: '1Gi' });
      await insertVmRow(db, { vmName: name, namespace: NS });
    }
    const watcher = startWatcher({ databaseUrl: writerRole.url, kubeconfig, holder: 'boundaries' });
    await expectVm(db, NS, 'b-2', { status: 'POWERED_ON', cpu_count: 1 }, 'cold start while the reader holds its locks', GUARD_MS);
    await sim.hotplugCPU(NS, 'b-1', 3);
    await expectVm(db, NS, 'b-1', { cpu_count: 3 }, 'a change while the reader holds its locks', GUARD_MS);
    assert.ok(watcher.alive, watcher.tail());
    await reader.query('rollback');
    // What the reader sees of the leader is the truth: its session, connected, with a current lease.
    // (Read after the transaction: pg_stat_activity is a snapshot taken once per transaction.)
    const status = (await reader.query<{ holder: string; leader_connected: boolean }>('select holder, leader_connected from vm_sync.sync_status')).rows[0]!;
    assert.deepEqual(status, { holder: 'boundaries', leader_connected: true });
  });

  test('statement_timeout = 150ms for the whole database: the watcher sets its own and converges', { timeout: GUARD_MS * 2 }, async () => {
    await stopAllWatchers();
    await db.query(`alter database ${db.name} set statement_timeout = '150ms'`);
    try {
      const kubeconfig = path.join(tempDir('boundaries-st'), 'kubeconfig');
      await sim.writeKubeconfig(kubeconfig);
      const names = Array.from({ length: 300 }, (_, i) => `st-${String(i).padStart(3, '0')}`);
      for (const name of names) {
        await sim.createVM(NS, name, { running: true, cpu: { sockets: 2 }, memory: '2Gi' });
        await insertVmRow(db, { vmName: name, namespace: NS });
      }
      // A fresh session sees the setting, as the watcher's will.
      const probe = new pg.Client({ connectionString: db.url });
      await probe.connect();
      assert.equal((await probe.query<{ statement_timeout: string }>('show statement_timeout')).rows[0]!.statement_timeout, '150ms');
      await probe.end();
      const watcher = startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'short-timeout' });
      for (const name of names) await expectVm(db, NS, name, { status: 'POWERED_ON', cpu_count: 2, memory_mb: 2048 }, `${name} under a 150 ms server-wide statement_timeout`, GUARD_MS);
      await sim.hotplugCPU(NS, names[0]!, 4);
      await expectVm(db, NS, names[0]!, { cpu_count: 4 }, 'and later changes', GUARD_MS);
      const terms = watcher.logs().filter((l) => l.msg === 'leading').length;
      assert.equal(terms, 1, `one term, never ended by a timeout:\n${watcher.tail()}`);
    } finally {
      await db.query(`alter database ${db.name} reset statement_timeout`);
    }
  });
});
