// A DBA's TRUNCATE vm_sync.snapshots under the running watcher (issue 16, item 6): checkpoints
// present, snapshots gone. The watcher notices (a cheap check before each reconcile, and at every
// term's start), says so, and relists everything; a vms row created afterwards is filled.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm } from '../helpers/vms.js';
import { startWatcher, stopAllWatchers, tempDir } from '../helpers/watcher.js';

const NS = 'vdc-truncate';
const GUARD_MS = 180_000;
const LOG = 'staging emptied under the watcher (checkpoints present, snapshots gone): relisting everything';

let db: TestDatabase;
let sim: Simulator;

before(async () => {
  db = await createTestDatabase('watcher_truncate');
  sim = await startSimulator({ bookmarkIntervalMs: 200 });
});

after(async () => {
  await stopAllWatchers();
  await sim?.close();
  await db?.drop();
});

test('TRUNCATE vm_sync.snapshots under the watcher is detected and repaired by a relist', { timeout: GUARD_MS * 2 }, async () => {
  const kubeconfig = path.join(tempDir('truncate'), 'kubeconfig');
  await sim.writeKubeconfig(kubeconfig);
  for (const name of ['t-1', 't-2']) await sim.createVM(NS, name, { running: true, cpu: { cores: 2 }, memory: '2Gi' });
  await insertVmRow(db, { vmName: 't-1', namespace: NS });
  const watcher = startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'truncate' });
  await expectVm(db, NS, 't-1', { status: 'POWERED_ON', cpu_count: 2 }, 'cold start', GUARD_MS);
  const listsBefore = sim.counters().lists;

  await db.query('truncate vm_sync.snapshots');
  // Created after the truncate: only a staged snapshot (so a relist) can fill it.
  await insertVmRow(db, { vmName: 't-2', namespace: NS });
  await expectVm(db, NS, 't-2', { status: 'POWERED_ON', cpu_count: 2, memory_mb: 2048 }, 'the row created after the truncate', GUARD_MS);
  await eventually(() => watcher.hasLogged(LOG), GUARD_MS, 'the log line');
  const lists = sim.counters().lists;
  assert.ok(lists.virtualmachines > listsBefore.virtualmachines && lists.virtualmachineinstances > listsBefore.virtualmachineinstances, 'both kinds relisted');
  const [{ n }] = await db.query<{ n: number }>(`select count(*)::int as n from vm_sync.snapshots where namespace = $1`, [NS]);
  assert.ok(n >= 4, `restaged (${n} snapshots)`);
  // Once repaired, nothing to repair: no relist storm.
  const [{ lost }] = await db.query<{ lost: boolean }>('select vm_sync.staging_lost() as lost');
  assert.equal(lost, false);
  assert.ok(watcher.alive, watcher.tail());
});
