// A watcher killed with SIGKILL and started again resumes its watches from the resourceVersions
// saved in vm_sync.watch_state: no relist, and what changed meanwhile still lands.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm, relists } from '../helpers/vms.js';
import { startWatcher, stopAllWatchers, tempDir } from '../helpers/watcher.js';

const NS = 'vdc-restart';

describe('watcher restart', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let kubeconfig: string;

  before(async () => {
    db = await createTestDatabase('watcher_restart');
    sim = await startSimulator({ bookmarkIntervalMs: 200 });
    kubeconfig = path.join(tempDir('restart'), 'kubeconfig');
    await sim.writeKubeconfig(kubeconfig);
    await sim.createVM(NS, 'r-1', { running: true, cpu: { cores: 2 }, memory: '2Gi' });
    await sim.createVM(NS, 'r-2', { cpu: { cores: 1 }, memory: '1Gi' });
    await insertVmRow(db, { vmName: 'r-1', namespace: NS });
    await insertVmRow(db, { vmName: 'r-2', namespace: NS });
  });

  after(async () => {
    await stopAllWatchers();
    await sim?.close();
    await db?.drop();
  });

  test('after SIGKILL, a new process resumes without relisting', async () => {
    const first = startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'first' });
    await expectVm(db, NS, 'r-1', { status: 'POWERED_ON', cpu_count: 2, memory_mb: 2048 }, 'first process synced');
    await expectVm(db, NS, 'r-2', { status: 'POWERED_OFF', cpu_count: 1 }, 'first process synced r-2');
    await sim.until((c) => c.activeWatches.virtualmachines === 1 && c.activeWatches.virtualmachineinstances === 1);
    const saved = await db.query<{ kind: string; resource_version: string }>('select kind, resource_version from vm_sync.watch_state order by kind');
    const kinds = saved.map((r) => r.kind);
    assert.ok(kinds.includes('VirtualMachine') && kinds.includes('VirtualMachineInstance'), `VMs and VMIs checkpointed: ${kinds.join(', ')}`);

    const exit = await first.kill('SIGKILL');
    assert.equal(exit.signal, 'SIGKILL');
    // Changes while nobody watches.
    await sim.hotplugCPU(NS, 'r-1', 4);
    await sim.startVM(NS, 'r-2');
    const countersBefore = sim.counters();
    const relistsBefore = await relists(db);

    const second = startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'second' });
    // 4 sockets x 2 cores.
    await expectVm(db, NS, 'r-1', { cpu_count: 8 }, 'change made while down');
    await expectVm(db, NS, 'r-2', { status: 'POWERED_ON', cpu_count: 1, memory_mb: 1024 }, 'start made while down');
    await eventually(async () => (await db.query(`select 1 from vm_sync.leader where holder = 'second'`)).length === 1, 10_000, 'second leads');

    const countersAfter = sim.counters();
    assert.equal(countersAfter.lists.virtualmachines, countersBefore.lists.virtualmachines, 'no VM list');
    assert.equal(countersAfter.lists.virtualmachineinstances, countersBefore.lists.virtualmachineinstances, 'no VMI list');
    assert.ok(countersAfter.watches.virtualmachines > countersBefore.watches.virtualmachines, 'watched again');
    assert.deepEqual(await relists(db), relistsBefore, 'no relist recorded');
    assert.ok(second.hasLogged('resuming watches from saved resourceVersions'), second.tail());
  });
});
