// End to end: simulator + real PostgreSQL + the real watcher process. A VM's life, step by step,
// lands in SSVirt's vms table with the right values each time.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm, type VmValues } from '../helpers/vms.js';
import { freePort, startWatcher, stopAllWatchers, tempDir, type WatcherProcess } from '../helpers/watcher.js';

const NS = 'vdc-lifecycle';
const UBUNTU = { id: 'ubuntu', name: 'Ubuntu', version: '24.04 LTS', prettyName: 'Ubuntu 24.04.1 LTS' };

describe('watcher lifecycle (simulator + PostgreSQL + watcher process)', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let watcher: WatcherProcess;
  let metricsPort: number;

  before(async () => {
    db = await createTestDatabase('watcher_lifecycle');
    sim = await startSimulator({ bookmarkIntervalMs: 200 });
    const kubeconfig = path.join(tempDir('lifecycle'), 'kubeconfig');
    await sim.writeKubeconfig(kubeconfig);
    // Present before the watcher starts: the cold start fills it.
    await sim.createVM(NS, 'web-1', { running: true, cpu: { cores: 2 }, memory: '2Gi', guestAgent: true });
    await insertVmRow(db, { vmName: 'web-1', namespace: NS });
    metricsPort = await freePort();
    watcher = startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'lifecycle', env: { METRICS_ADDR: `127.0.0.1:${metricsPort}` } });
  });

  after(async () => {
    await stopAllWatchers();
    await sim?.close();
    await db?.drop();
  });

  const expectRow = (vmName: string, want: VmValues, what: string) => expectVm(db, NS, vmName, want, what);

  test('cold start writes a running VM from its VMI', async () => {
    await expectRow('web-1', { status: 'POWERED_ON', cpu_count: 2, memory_mb: 2048, guest_os: 'Fedora Linux 41 (Cloud Edition)' }, 'cold start');
    // Listed both kinds, then one merge: the row was written once, not from the spec and then the VMI.
    const changes = await db.query('select seq from vm_sync.changes where namespace = $1 and vm_name = $2', [NS, 'web-1']);
    assert.equal(changes.length, 1, 'one change for the cold start');
  });

  test('a new VM, started, hotplugged, with a guest agent, stopped, deleted, recreated', async () => {
    await insertVmRow(db, { vmName: 'app-1', namespace: NS });
    await sim.createVM(NS, 'app-1', { cpu: { cores: 1, sockets: 1 }, memory: '1Gi', osHint: 'fedora' });
    await expectRow('app-1', { status: 'POWERED_OFF', cpu_count: 1, memory_mb: 1024, guest_os: 'fedora' }, 'created (stopped)');

    await sim.startVM(NS, 'app-1');
    await expectRow('app-1', { status: 'POWERED_ON', cpu_count: 1, memory_mb: 1024 }, 'started');

    await sim.hotplugCPU(NS, 'app-1', 4);
    await expectRow('app-1', { status: 'POWERED_ON', cpu_count: 4 }, 'cpu hotplug');

    await sim.hotplugMemory(NS, 'app-1', '3Gi');
    await expectRow('app-1', { memory_mb: 3072 }, 'memory hotplug');

    await sim.connectGuestAgent(NS, 'app-1', UBUNTU);
    await expectRow('app-1', { guest_os: 'Ubuntu 24.04.1 LTS' }, 'guest agent');

    await sim.stopVM(NS, 'app-1');
    // Stopped: values from the VM spec again (the hotplugged ones), the reported OS kept.
    await expectRow('app-1', { status: 'POWERED_OFF', cpu_count: 4, memory_mb: 3072, guest_os: 'Ubuntu 24.04.1 LTS' }, 'stopped');

    await sim.deleteVM(NS, 'app-1');
    await expectRow('app-1', { status: 'DELETED' }, 'deleted');

    await sim.createVM(NS, 'app-1', { running: true, cpu: { cores: 2, sockets: 2 }, memory: '8Gi' });
    await expectRow('app-1', { status: 'POWERED_ON', cpu_count: 4, memory_mb: 8192 }, 'recreated');
  });

  test('a vms row inserted after its VM was seen is filled by the periodic reconcile', async () => {
    await sim.createVM(NS, 'late-1', { running: true, cpu: { cores: 3 }, memory: '512Mi' });
    await eventually(
      async () => (await db.query(`select 1 from vm_sync.snapshots where namespace = $1 and vm_name = 'late-1' and kind = 'VirtualMachineInstance'`, [NS])).length === 1,
      15_000,
      'late-1 staged',
    );
    await insertVmRow(db, { vmName: 'late-1', namespace: NS });
    await expectRow('late-1', { status: 'POWERED_ON', cpu_count: 3, memory_mb: 512 }, 'reconciled');
  });

  test('metrics, health and readiness are served; no secret in them', async () => {
    const base = `http://127.0.0.1:${metricsPort}`;
    const healthz = await fetch(`${base}/healthz`);
    assert.equal(healthz.status, 200);
    await eventually(async () => (await fetch(`${base}/readyz`)).status === 200, 10_000, 'ready');
    const text = await eventually(async () => {
      const body = await (await fetch(`${base}/metrics`)).text();
      const ours = body.split('\n').filter((l) => l.startsWith('ssvirt_vm')).join('\n');
      assert.match(body, /ssvirt_vmi_data_updates_total\{[^}]*field="cpu_count"/, ours);
      assert.match(body, /ssvirt_vm_data_populated_ratio\{field="guest_os"\} (0\.\d*[1-9]|1)/, ours);
      return body;
    }, 10_000, 'metrics populated');
    assert.match(text, /ssvirt_vm_sync_leader 1/);
    assert.match(text, /ssvirt_vm_sync_batch_size_count [1-9]/);
    assert.match(text, /ssvirt_vm_sync_event_lag_seconds_count [1-9]/);
    assert.doesNotMatch(text, /simulator-dummy-token/);
    assert.ok(!watcher.output.join('').includes('simulator-dummy-token'), 'the bearer token never reaches the logs');
  });

  test('SIGTERM: clean shutdown, lease ended, exit 0', async () => {
    const exit = await watcher.kill('SIGTERM');
    assert.equal(exit.code, 0, watcher.tail());
    const leader = await db.query<{ holder: string | null }>('select holder from vm_sync.leader');
    assert.equal(leader[0]?.holder, null);
    const lease = await db.query<{ connected: boolean; expires: Date | null }>('select leader_connected as connected, lease_expires_at as expires from vm_sync.sync_status');
    assert.deepEqual(lease, [{ connected: false, expires: null }], 'the lease was ended');
  });
});
