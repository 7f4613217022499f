// Production-sized objects through the real watcher process, run with the Deployment's own
// NODE_OPTIONS (its heap cap): one watch per namespace, a 1.4 MB VM and VMI in the first list
// page, a cold start, then every stream's resourceVersion expired at once (a mass 410) and
// relisted while the API server answers 429 with Retry-After. The rows converge and the process
// stays up throughout. No timing assertions: the benchmark measures speed.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { deployedNodeOptions } from '../helpers/deployment.js';
import { eventually } from '../helpers/eventually.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm } from '../helpers/vms.js';
import { startWatcher, stopAllWatchers, tempDir, type WatcherProcess } from '../helpers/watcher.js';

const NAMESPACES = ['big-a', 'big-b', 'big-c', 'big-d'];
const PER_NAMESPACE = 60;

describe('production-sized objects, a giant in the first page, a mass 410 under 429s', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let watcher: WatcherProcess;
  let keys: string[];

  before(async () => {
    db = await createTestDatabase('watcher_big_objects');
    sim = await startSimulator({ bookmarkIntervalMs: 200, objectSize: 'realistic' });
    const kubeconfig = path.join(tempDir('big'), 'kubeconfig');
    await sim.writeKubeconfig(kubeconfig);
    // "a-giant" sorts first in big-a: the first page of both lists carries it.
    await sim.createVM('big-a', 'a-giant', { running: true, guestAgent: true, cpu: { sockets: 3 }, memory: '6Gi', shape: { padToBytes: 1_400_000 } });
    keys = ['big-a/a-giant', ...sim.seed(NAMESPACES.length * PER_NAMESPACE, { namespaces: NAMESPACES, runningRatio: 0.8 })];
    for (const key of keys) {
      const [namespace, vmName] = key.split('/') as [string, string];
      await insertVmRow(db, { vmName, namespace });
    }
    watcher = startWatcher({
      databaseUrl: db.url,
      kubeconfig,
      holder: 'big-objects',
      env: { NODE_OPTIONS: deployedNodeOptions(), WATCH_NAMESPACES: NAMESPACES.join(','), LIST_PAGE_SIZE: '25' },
    });
  });

  after(async () => {
    await stopAllWatchers();
    await sim?.close();
    await db?.drop();
  });

  const filled = async (): Promise<number> =>
    Number(
      (
        await db.query<{ n: string }>(
          `select count(*) as n from public.vms where deleted_at is null and status is not null and cpu_count is not null and memory_mb is not null`,
        )
      )[0]!.n,
    );

  test('the giant objects are what the test says they are', () => {
    const vm = JSON.stringify(sim.store.get('virtualmachines', 'big-a/a-giant'));
    const vmi = JSON.stringify(sim.store.get('virtualmachineinstances', 'big-a/a-giant'));
    assert.ok(vm.length > 1_300_000 && vm.length < 1_500_000, `VM of ${vm.length} bytes`);
    assert.ok(vmi.length > 1_300_000 && vmi.length < 1_500_000, `VMI of ${vmi.length} bytes`);
  });

  test('cold start: every row filled, the giant from its VMI', async () => {
    await eventually(async () => ((await filled()) === keys.length ? true : false), 240_000, 'cold start filled every row');
    await expectVm(db, 'big-a', 'a-giant', { status: 'POWERED_ON', cpu_count: 3, memory_mb: 6144 }, 'the giant');
    assert.ok(watcher.alive, watcher.tail());
  });

  test('every stream expired at once, relisted through 429s with Retry-After: converges, the process stays up', async () => {
    const before = sim.counters();
    // Every stream's next watch is refused with 410 (as after a kube-apiserver restart), the lists
    // meet 429s, and objects change meanwhile.
    const changed = keys.filter((_, i) => i % 17 === 3).slice(0, 8);
    sim.failRequests({ status: 429, only: 'list', count: 12, retryAfterSeconds: 1 });
    // Aimed at the VM and VMI watches: the instancetype and revision watches reconnect too, and an
    // untargeted 410 they take first would leave a VM or VMI stream watching on.
    sim.fail410OnNextWatch('event', NAMESPACES.length, 'virtualmachines');
    sim.fail410OnNextWatch('event', NAMESPACES.length, 'virtualmachineinstances');
    sim.dropStreams();
    for (const key of changed) {
      const [ns, name] = key.split('/') as [string, string];
      await sim.hotplugMemory(ns, name, '3Gi');
    }
    for (const key of changed) {
      const [ns, name] = key.split('/') as [string, string];
      await expectVm(db, ns, name, { memory_mb: 3072 }, `change of ${key} after the mass relist`, 240_000);
    }
    const now = sim.counters();
    assert.ok(now.injectedFailures - before.injectedFailures >= 12, 'the 429s were served');
    assert.ok(now.watchesExpired > before.watchesExpired, 'watches were refused with 410');
    const relisted = now.lists.virtualmachines + now.lists.virtualmachineinstances - before.lists.virtualmachines - before.lists.virtualmachineinstances;
    assert.ok(relisted >= 2 * NAMESPACES.length, `every stream relisted (${relisted} list requests)`);
    assert.ok(watcher.hasLogged('list page failed; asking for it again'), watcher.tail());
    assert.equal(await filled(), keys.length);
    assert.ok(watcher.alive, `the watcher died:\n${watcher.tail()}`);
  });
});
