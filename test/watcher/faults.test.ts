// End to end under faults: streams dropped, stalled, answered 410 (in-stream and as HTTP status),
// a server refusing requests. The vms table still converges, and relists are counted.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm, relists } from '../helpers/vms.js';
import { startWatcher, stopAllWatchers, tempDir, type WatcherProcess } from '../helpers/watcher.js';

const NS = 'vdc-faults';
const total = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);

describe('watcher under faults', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let watcher: WatcherProcess;

  before(async () => {
    db = await createTestDatabase('watcher_faults');
    sim = await startSimulator({ bookmarkIntervalMs: 200 });
    const kubeconfig = path.join(tempDir('faults'), 'kubeconfig');
    await sim.writeKubeconfig(kubeconfig);
    for (const name of ['f-drop', 'f-stall', 'f-410e', 'f-410h', 'f-gone', 'f-5xx']) {
      await sim.createVM(NS, name, { running: true, cpu: { cores: 1 }, memory: '1Gi' });
      await insertVmRow(db, { vmName: name, namespace: NS });
    }
    watcher = startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'faults' });
    await expectVm(db, NS, 'f-5xx', { status: 'POWERED_ON', cpu_count: 1 }, 'cold start');
    await sim.until((c) => c.activeWatches.virtualmachines === 1 && c.activeWatches.virtualmachineinstances === 1);
  });

  after(async () => {
    await stopAllWatchers();
    await sim?.close();
    await db?.drop();
  });

  test('dropped streams reconnect from their resourceVersion, without a relist', async () => {
    const before = sim.counters();
    assert.ok(sim.dropStreams() >= 2);
    await sim.hotplugCPU(NS, 'f-drop', 3);
    await expectVm(db, NS, 'f-drop', { cpu_count: 3 }, 'change after drop');
    const now = sim.counters();
    assert.equal(now.lists.virtualmachines, before.lists.virtualmachines, 'no VM relist');
    assert.equal(now.lists.virtualmachineinstances, before.lists.virtualmachineinstances, 'no VMI relist');
    assert.ok(now.watches.virtualmachineinstances > before.watches.virtualmachineinstances, 'watched again');
  });

  test('a silent (stalled) stream is restarted by the idle timeout', async () => {
    // Open streams go silent with their connections kept; new ones are served normally.
    sim.stallStreams({ newStreams: false });
    await sim.hotplugMemory(NS, 'f-stall', '2Gi');
    await expectVm(db, NS, 'f-stall', { memory_mb: 2048 }, 'change during a stall');
    assert.ok(watcher.hasLogged('watch stream silent; restarting it'), watcher.tail());
    sim.resume();
  });

  test('410 as an in-stream ERROR event: relist, counted, converges', async () => {
    const before = { db: await relists(db), sim: sim.counters() };
    sim.fail410OnNextWatch('event', 2);
    sim.dropStreams();
    await sim.hotplugCPU(NS, 'f-410e', 2);
    await expectVm(db, NS, 'f-410e', { cpu_count: 2 }, 'change after 410 event');
    // The two 410s go to whichever two watches reconnect first, of any watched kind.
    const after = await eventually(async () => {
      const r = await relists(db);
      return total(r) >= total(before.db) + 2 ? r : false;
    }, 10_000, 'relists counted');
    assert.ok(after);
    const c = sim.counters();
    assert.equal(c.watchesExpired, before.sim.watchesExpired + 2, 'both forced 410s were served');
    assert.equal(total(c.lists), total(before.sim.lists) + 2, 'one relist per 410');
  });

  test('410 as an HTTP status: relist, converges', async () => {
    const before = sim.counters();
    sim.fail410OnNextWatch('http', 2);
    sim.dropStreams();
    await sim.hotplugMemory(NS, 'f-410h', '4Gi');
    await expectVm(db, NS, 'f-410h', { memory_mb: 4096 }, 'change after HTTP 410');
    const c = await sim.until((c) => total(c.lists) >= total(before.lists) + 2);
    assert.equal(c.watchesExpired, before.watchesExpired + 2, 'both forced 410s were served');
  });

  test('a deletion missed while away is found by the relist after compaction (sweep)', async () => {
    const before = await relists(db);
    await sim.goOffline();
    await sim.deleteVM(NS, 'f-gone');
    sim.compact();
    await sim.goOnline();
    await expectVm(db, NS, 'f-gone', { status: 'DELETED' }, 'missed deletion swept');
    await eventually(async () => {
      const after = await relists(db);
      assert.ok((after.VirtualMachine ?? 0) > (before.VirtualMachine ?? 0), 'VM relist counted');
      assert.ok((after.VirtualMachineInstance ?? 0) > (before.VirtualMachineInstance ?? 0), 'VMI relist counted');
      const snap = await db.query<{ deleted: boolean }>(`select deleted from vm_sync.snapshots where namespace = $1 and name = 'f-gone' and kind = 'VirtualMachineInstance'`, [NS]);
      assert.deepEqual(snap.map((s) => s.deleted), [true]);
      return true;
    }, 10_000, 'both kinds relisted');
  });

  test('a server answering 503 is retried with backoff, and converges', async () => {
    const before = sim.counters();
    const failuresLogged = watcher.logs().filter((l) => l.msg === 'watch failed').length;
    // Three times as many 503s as watched kinds: some kind fails at least three times in a row.
    const kinds = Object.keys(before.activeWatches).filter((k) => before.activeWatches[k as keyof typeof before.activeWatches] > 0).length;
    const failures503 = 3 * kinds;
    sim.failRequests({ status: 503, count: failures503, only: 'watch' });
    sim.dropStreams();
    await sim.stopVM(NS, 'f-5xx');
    await expectVm(db, NS, 'f-5xx', { status: 'POWERED_OFF' }, 'change after 503s');
    const c = await sim.until((c) => c.injectedFailures >= before.injectedFailures + failures503);
    assert.equal(c.injectedFailures, before.injectedFailures + failures503, 'every 503 was served');
    // Each failure is followed by a longer backoff than the one before (the pacer's attempt grows;
    // it resets only after a healthy stream): a kind that failed three times in a row says so.
    const failures = watcher.logs().filter((l) => l.msg === 'watch failed').slice(failuresLogged);
    assert.ok(failures.length >= failures503, watcher.tail());
    assert.ok(Math.max(...failures.map((l) => Number(l.consecutiveFailures))) >= 3, JSON.stringify(failures.map((l) => l.consecutiveFailures)));
    assert.ok(watcher.alive, 'still running');
  });
});
