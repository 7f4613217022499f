// The heartbeat never queues behind a write (issue 16, item 4): the lease is renewed on a connection
// of its own. A DBA's transaction holds the writer row lock for longer than the leader's 15 s
// answer bound; the watcher's writes wait (and retry after lock_timeout), its lease stays renewed,
// the term is not lost, and the change lands once the lock is released.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm } from '../helpers/vms.js';
import { startWatcher, stopAllWatchers, tempDir } from '../helpers/watcher.js';

const NS = 'vdc-heartbeat';
const GUARD_MS = 180_000;

let db: TestDatabase;
let sim: Simulator;

before(async () => {
  db = await createTestDatabase('watcher_heartbeat');
  sim = await startSimulator({ bookmarkIntervalMs: 200 });
});

after(async () => {
  await stopAllWatchers();
  await sim?.close();
  await db?.drop();
});

test('a write blocked for longer than the answer bound does not cost the lease or the term', { timeout: GUARD_MS * 2 }, async () => {
  const kubeconfig = path.join(tempDir('heartbeat'), 'kubeconfig');
  await sim.writeKubeconfig(kubeconfig);
  await sim.createVM(NS, 'h-1', { running: true, cpu: { cores: 1 }, memory: '1Gi' });
  await insertVmRow(db, { vmName: 'h-1', namespace: NS });
  const watcher = startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'heartbeat', env: { PG_LOCK_TIMEOUT_MS: '30000' } });
  await expectVm(db, NS, 'h-1', { status: 'POWERED_ON', cpu_count: 1 }, 'cold start', GUARD_MS);
  const [{ term }] = await db.query<{ term: string }>('select term::text from vm_sync.leader');

  const blocker = await db.pool.connect();
  try {
    await blocker.query('begin');
    await blocker.query('select 1 from vm_sync.writer where id = 1 for update');
    await sim.hotplugCPU(NS, 'h-1', 3);
    // The leader's write is waiting for the row lock...
    await eventually(async () => (await db.query(`select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid = (select pid from vm_sync.leader)`)).length === 1, GUARD_MS, 'a write waiting');
    // ...for longer than the 15 s bound that used to declare the session lost, while renewals go on.
    const [{ before: beat }] = await db.query<{ before: Date }>('select heartbeat_at as before from vm_sync.leader');
    await eventually(async () => {
      const [r] = await db.query<{ waited: number }>(`select extract(epoch from now() - query_start)::float8 as waited from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid = (select pid from vm_sync.leader)`);
      return (r?.waited ?? 0) >= 20;
    }, GUARD_MS, 'the write waited 20 s');
    const [now] = await db.query<{ heartbeat_at: Date; connected: boolean }>('select l.heartbeat_at, s.leader_connected as connected from vm_sync.leader l, vm_sync.sync_status s');
    assert.ok(now!.heartbeat_at > beat, 'the lease was renewed while the write waited');
    assert.equal(now!.connected, true);
  } finally {
    await blocker.query('rollback');
    blocker.release();
  }
  await expectVm(db, NS, 'h-1', { cpu_count: 3 }, 'the change lands', GUARD_MS);
  const [{ term: after }] = await db.query<{ term: string }>('select term::text from vm_sync.leader');
  assert.equal(after, term, 'the same term');
  assert.ok(!watcher.hasLogged('no longer leading'), watcher.tail());
});
