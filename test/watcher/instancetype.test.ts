// End to end (docs/contract.md#3b-instancetypes): simulator + real PostgreSQL + the real watcher process. A stopped
// instancetype VM gets its size from its ControllerRevision without ever starting, a resize while
// stopped takes the new size, and a cluster without the instancetype API still syncs VMs and VMIs.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm } from '../helpers/vms.js';
import { freePort, startWatcher, stopAllWatchers, tempDir, type WatcherProcess } from '../helpers/watcher.js';
import { formatStatus, readStatus } from '../../src/cli/status.js';

const NS = 'vdc-itype-e2e';

async function readyz(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return res.text();
}

describe('instancetype VMs end to end', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let watcher: WatcherProcess;
  let port: number;

  before(async () => {
    db = await createTestDatabase('watcher_itype');
    sim = await startSimulator({ bookmarkIntervalMs: 200 });
    const kubeconfig = path.join(tempDir('itype'), 'kubeconfig');
    await sim.writeKubeconfig(kubeconfig);
    // Present before the watcher starts: the cold start lists the VM, the instancetypes and the revision before merging.
    await sim.createVM(NS, 'cold-big', { instancetype: 'u1.2xlarge' });
    await insertVmRow(db, { vmName: 'cold-big', namespace: NS });
    port = await freePort();
    watcher = startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'itype', env: { METRICS_ADDR: `127.0.0.1:${port}` } });
  });

  after(async () => {
    await stopAllWatchers();
    await sim?.close();
    await db?.drop();
  });

  test('cold start: a never-started u1.2xlarge VM reads 8 / 32768', async () => {
    await expectVm(db, NS, 'cold-big', { status: 'POWERED_OFF', cpu_count: 8, memory_mb: 32768 }, 'cold start');
    const changes = await db.query('select seq from vm_sync.changes where namespace = $1 and vm_name = $2', [NS, 'cold-big']);
    assert.equal(changes.length, 1, 'listed everything, then one merge');
  });

  test('a stopped u1.2xlarge VM created while watching reads 8 / 32768, resized to u1.medium it reads 1 / 4096', async () => {
    await insertVmRow(db, { vmName: 'big', namespace: NS });
    await sim.createVM(NS, 'big', { instancetype: 'u1.2xlarge' });
    await expectVm(db, NS, 'big', { status: 'POWERED_OFF', cpu_count: 8, memory_mb: 32768 }, 'never started');
    await sim.setInstancetype(NS, 'big', 'u1.medium');
    await expectVm(db, NS, 'big', { status: 'POWERED_OFF', cpu_count: 1, memory_mb: 4096 }, 'resized while stopped');
    const staged = await db.query(
      `select s.instancetype_name, s.instancetype_revision from vm_sync.snapshots s where s.kind = 'VirtualMachine' and s.namespace = $1 and s.name = 'big'`,
      [NS],
    );
    assert.equal(staged[0].instancetype_name, 'u1.medium');
    assert.match(staged[0].instancetype_revision, /^big-u1\.medium-v1beta1-/);
  });

  test('started, the VMI wins; stopped again, the instancetype', async () => {
    await insertVmRow(db, { vmName: 'runs', namespace: NS });
    await sim.createVM(NS, 'runs', { instancetype: 'u1.xlarge' });
    await expectVm(db, NS, 'runs', { cpu_count: 4, memory_mb: 16384 }, 'stopped');
    await sim.startVM(NS, 'runs');
    await expectVm(db, NS, 'runs', { status: 'POWERED_ON', cpu_count: 4, memory_mb: 16384 }, 'running');
    await sim.hotplugCPU(NS, 'runs', 6);
    await expectVm(db, NS, 'runs', { status: 'POWERED_ON', cpu_count: 6 }, 'hotplugged');
    await sim.stopVM(NS, 'runs');
    await expectVm(db, NS, 'runs', { status: 'POWERED_OFF', cpu_count: 4, memory_mb: 16384 }, 'stopped again');
  });

  test('the instancetype API is recorded for status and shown by /readyz', async () => {
    const rows = await eventually(async () => {
      const r = await db.query(`select api_group, version, available from vm_sync.api_status`);
      return r.length ? r : undefined;
    }, 15_000, 'api_status recorded');
    assert.deepEqual(rows, [{ api_group: 'instancetype.kubevirt.io', version: 'v1beta1', available: true }]);
    assert.match(await eventually(async () => ((await readyz(port)).includes('instancetype API') ? readyz(port) : undefined)), /instancetype API: instancetype\.kubevirt\.io\/v1beta1/);
    assert.ok(watcher.logs().some((l) => l.msg === 'instancetype API found: watching instancetypes and their ControllerRevisions'));
  });
});

describe('a cluster without the instancetype API', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let watcher: WatcherProcess;
  let port: number;
  const BARE = 'vdc-bare';

  before(async () => {
    db = await createTestDatabase('watcher_itype_bare');
    sim = await startSimulator({ bookmarkIntervalMs: 200, instancetypeApi: false });
    const kubeconfig = path.join(tempDir('itype-bare'), 'kubeconfig');
    await sim.writeKubeconfig(kubeconfig);
    await sim.createVM(BARE, 'web', { running: true, cpu: { cores: 2 }, memory: '2Gi', guestAgent: true });
    await insertVmRow(db, { vmName: 'web', namespace: BARE });
    port = await freePort();
    watcher = startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'bare', env: { METRICS_ADDR: `127.0.0.1:${port}`, INSTANCETYPE_CHECK_MS: '300' } });
  });

  after(async () => {
    await stopAllWatchers();
    await sim?.close();
    await db?.drop();
  });

  test('still syncs VMs and VMIs, says so once, records it, and /readyz carries it', async () => {
    await expectVm(db, BARE, 'web', { status: 'POWERED_ON', cpu_count: 2, memory_mb: 2048, guest_os: 'Fedora Linux 41 (Cloud Edition)' }, 'cold start');
    await insertVmRow(db, { vmName: 'later', namespace: BARE });
    await sim.createVM(BARE, 'later', { cpu: { sockets: 3 }, memory: '3Gi' });
    await expectVm(db, BARE, 'later', { status: 'POWERED_OFF', cpu_count: 3, memory_mb: 3072 }, 'a VM created while watching');
    const said = watcher.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('no instancetype API on this cluster'));
    assert.equal(said.length, 1);
    const rows = await db.query(`select api_group, version, available from vm_sync.api_status`);
    assert.deepEqual(rows, [{ api_group: 'instancetype.kubevirt.io', version: null, available: false }]);
    const body = await eventually(async () => {
      const text = await readyz(port);
      return text.startsWith('ok') ? text : undefined;
    });
    assert.match(body, /instancetype API: not served/);
    const status = await readStatus(db.url);
    assert.deepEqual(status.apis.map((a) => [a.group, a.available]), [['instancetype.kubevirt.io', false]]);
    assert.match(formatStatus(status), /API instancetype\.kubevirt\.io +NOT served/);
  });

  test('picks the instancetype API up when it is installed later', async () => {
    await insertVmRow(db, { vmName: 'sized-later', namespace: BARE });
    sim.setInstancetypeApi(true);
    await sim.createVM(BARE, 'sized-later', { instancetype: 'u1.large' });
    await expectVm(db, BARE, 'sized-later', { status: 'POWERED_OFF', cpu_count: 2, memory_mb: 8192 }, 'after the API appeared');
    const rows = await db.query(`select version, available from vm_sync.api_status where api_group = 'instancetype.kubevirt.io'`);
    assert.deepEqual(rows, [{ version: 'v1beta1', available: true }]);
  });
});
