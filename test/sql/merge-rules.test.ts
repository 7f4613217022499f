// docs/contract.md#3-merge-rules, rule by rule, through vm_sync.ingest with objects as kubectl prints them.
// Each test works in a namespace of its own, so tests share one database without touching each other.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { bump, CENTOS9, merge, vm, vmi } from '../helpers/objects.js';
import { ev, ingest, insertVmRow, listen, synced, vmRow } from '../helpers/sync.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase('merge_rules');
});
after(async () => {
  await db.drop();
});

let seq = 0;
function ns(): string {
  seq += 1;
  return `vdc-rules-${seq}`;
}

describe('matching', () => {
  it('a VM snapshot applies to every live vms row with its namespace and vm_name, and to no other', async () => {
    const namespace = ns();
    const a = await insertVmRow(db, { vmName: 'web-1', namespace });
    const b = await insertVmRow(db, { vmName: 'web-1', namespace });
    const otherNs = await insertVmRow(db, { vmName: 'web-1', namespace: ns() });
    const otherName = await insertVmRow(db, { vmName: 'web-2', namespace });
    await ingest(db, [ev('ADDED', vm({ namespace, name: 'web-1', cores: 2, memory: '4Gi', printableStatus: 'Stopped' }))]);
    const expected = { status: 'POWERED_OFF', cpu_count: 2, memory_mb: 4096, guest_os: null };
    assert.deepEqual(await synced(db, a), expected);
    assert.deepEqual(await synced(db, b), expected);
    assert.deepEqual(await synced(db, otherNs), { status: null, cpu_count: null, memory_mb: null, guest_os: null });
    assert.deepEqual(await synced(db, otherName), { status: null, cpu_count: null, memory_mb: null, guest_os: null });
  });

  it('a VMI belongs to the VM its ownerReference names, even under another name', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'db-1', namespace });
    const decoy = await insertVmRow(db, { vmName: 'db-1-abcde', namespace });
    await ingest(db, [ev('ADDED', vmi({ namespace, name: 'db-1-abcde', owner: { name: 'db-1' }, cores: 3, memory: '3Gi' }))]);
    assert.equal((await synced(db, id)).cpu_count, 3);
    assert.equal((await synced(db, decoy)).cpu_count, null);
  });

  it('a VMI without a VirtualMachine ownerReference belongs to the VM with its own name', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'standalone', namespace });
    await ingest(db, [ev('ADDED', vmi({ namespace, name: 'standalone', owner: null, cores: 2, memory: '1Gi' }))]);
    assert.equal((await synced(db, id)).memory_mb, 1024);
  });

  it('an ownerReference of another kind or apiVersion does not count', async () => {
    const namespace = ns();
    const own = await insertVmRow(db, { vmName: 'pool-vmi-1', namespace });
    const pool = await insertVmRow(db, { vmName: 'pool', namespace });
    const object = vmi({ namespace, name: 'pool-vmi-1', cores: 2 }, {
      metadata: { ownerReferences: [{ apiVersion: 'pool.kubevirt.io/v1alpha1', kind: 'VirtualMachinePool', name: 'pool', uid: 'x' }] },
    });
    await ingest(db, [ev('ADDED', object)]);
    assert.equal((await synced(db, own)).cpu_count, 2);
    assert.equal((await synced(db, pool)).cpu_count, null);
  });

  it('a snapshot with no row waits for one; reconcile() fills a row created later', async () => {
    const namespace = ns();
    const summary = await ingest(db, [
      ev('ADDED', vm({ namespace, name: 'late', cores: 2, memory: '2Gi' })),
      ev('ADDED', vmi({ namespace, name: 'late', cores: 4, memory: '8Gi', guestOSInfo: CENTOS9 })),
    ]);
    assert.equal(summary.vms_updated, 0);
    const id = await insertVmRow(db, { vmName: 'late', namespace });
    const changed = await db.query<{ n: number }>('select vm_sync.reconcile() as n');
    assert.equal(changed[0]!.n, 1);
    assert.deepEqual(await synced(db, id), { status: 'POWERED_ON', cpu_count: 4, memory_mb: 8192, guest_os: 'CentOS Stream 9' });
    const again = await db.query<{ n: number }>('select vm_sync.reconcile() as n');
    assert.equal(again[0]!.n, 0, 'a second reconcile finds nothing to do');
  });

  it('a row with no snapshot is left alone', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'manual', namespace, cpu: 8, memory: 1024, guestOs: 'Windows', status: 'POWERED_ON' });
    const before = await vmRow(db, id);
    await ingest(db, [ev('ADDED', vm({ namespace, name: 'someone-else' }))]);
    await db.query('select vm_sync.reconcile()');
    const afterRow = await vmRow(db, id);
    assert.equal(afterRow.xmin, before.xmin);
  });

  it('soft-deleted rows (deleted_at set) are never touched', async () => {
    const namespace = ns();
    const gone = await insertVmRow(db, { vmName: 'old', namespace, deleted: true });
    const live = await insertVmRow(db, { vmName: 'old', namespace });
    const before = await vmRow(db, gone);
    await ingest(db, [ev('ADDED', vm({ namespace, name: 'old', cores: 2 }))]);
    assert.equal((await vmRow(db, gone)).xmin, before.xmin);
    assert.equal((await synced(db, gone)).cpu_count, null);
    assert.equal((await synced(db, live)).cpu_count, 2);
  });
});

describe('data source priority', () => {
  it('a live VMI wins over the VM spec', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'app', namespace });
    await ingest(db, [
      ev('ADDED', vm({ namespace, name: 'app', cores: 1, memory: '1Gi' })),
      ev('ADDED', vmi({ namespace, name: 'app', cores: 2, sockets: 2, memory: '6Gi' })),
    ]);
    assert.deepEqual(await synced(db, id), { status: 'POWERED_ON', cpu_count: 4, memory_mb: 6144, guest_os: null });
  });

  it('the VM spec is used when there is no VMI', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'app', namespace });
    await ingest(db, [ev('ADDED', vm({ namespace, name: 'app', cores: 2, threads: 2, memory: '3Gi', printableStatus: 'Stopped', runStrategy: 'Halted' }))]);
    assert.deepEqual(await synced(db, id), { status: 'POWERED_OFF', cpu_count: 4, memory_mb: 3072, guest_os: null });
  });

  it('with no source for a field the row keeps its value', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'bare', namespace, cpu: 6, memory: 12288, guestOs: 'Debian 12' });
    const bare = vm({ namespace, name: 'bare' }, { spec: { template: { spec: { domain: { cpu: undefined, memory: undefined, resources: {} } } } } });
    await ingest(db, [ev('ADDED', bare)]);
    assert.deepEqual(await synced(db, id), { status: 'POWERED_ON', cpu_count: 6, memory_mb: 12288, guest_os: 'Debian 12' });
  });

  it('a VMI that lacks a field never blanks it: the VM spec fills that field', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'partial', namespace });
    const noMemory = vmi({ namespace, name: 'partial', cores: 4 }, {
      status: { memory: undefined },
      spec: { domain: { memory: undefined, resources: { requests: undefined } } },
    });
    await ingest(db, [ev('ADDED', vm({ namespace, name: 'partial', cores: 1, memory: '5Gi' })), ev('ADDED', noMemory)]);
    assert.deepEqual(await synced(db, id), { status: 'POWERED_ON', cpu_count: 4, memory_mb: 5120, guest_os: null });
  });
});

describe('cpu_count', () => {
  it('from the VMI: status.currentCPUTopology sockets x cores x threads', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'topo', namespace });
    await ingest(db, [ev('ADDED', vmi({ namespace, name: 'topo', sockets: 2, cores: 3, threads: 2 }))]);
    assert.equal((await synced(db, id)).cpu_count, 12);
  });

  it('from the VMI spec.domain.cpu when the status has no topology yet', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'pending', namespace });
    const pending = vmi({ namespace, name: 'pending', cores: 2, sockets: 2, phase: 'Scheduling' }, { status: { currentCPUTopology: undefined } });
    await ingest(db, [ev('ADDED', pending)]);
    assert.equal((await synced(db, id)).cpu_count, 4);
  });

  it('each missing or zero topology factor counts as 1', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'zeros', namespace });
    const object = vmi({ namespace, name: 'zeros' }, { status: { currentCPUTopology: { cores: 3, sockets: 0 } } });
    await ingest(db, [ev('ADDED', object)]);
    assert.equal((await synced(db, id)).cpu_count, 3);
  });

  it('a topology with no factor above zero is no topology: requests.cpu applies (KubeVirt treats it as absent)', async () => {
    const cases: [Record<string, unknown>, number][] = [
      [{ cpu: { cores: 0, sockets: 0, threads: 0 }, resources: { requests: { cpu: '4' } } }, 4],
      [{ cpu: { cores: 0, sockets: 0, threads: 0 }, resources: { limits: { cpu: '3' }, requests: { cpu: '1' } } }, 3],
      [{ cpu: { cores: 0, sockets: 0, threads: 0, model: 'host-model' }, resources: { requests: { cpu: '2500m' } } }, 3],
      [{ cpu: { cores: 0, sockets: 2, threads: 0 }, resources: { requests: { cpu: '4' } } }, 2],
    ];
    for (const [domain, expected] of cases) {
      const namespace = ns();
      const id = await insertVmRow(db, { vmName: 'zero-topology', namespace });
      const noCpu = vm({ namespace, name: 'zero-topology', printableStatus: 'Stopped' }, { spec: { template: { spec: { domain: { cpu: undefined } } } } });
      await ingest(db, [ev('ADDED', merge(noCpu, { spec: { template: { spec: { domain } } } }))]);
      assert.equal((await synced(db, id)).cpu_count, expected, JSON.stringify(domain));
    }
  });

  it('an all-zero currentCPUTopology of a VMI is no topology: its spec.domain.cpu applies', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'zero-vmi', namespace });
    const object = vmi({ namespace, name: 'zero-vmi', cores: 2, sockets: 3 }, { status: { currentCPUTopology: { cores: 0, sockets: 0, threads: 0 } } });
    await ingest(db, [ev('ADDED', object)]);
    assert.equal((await synced(db, id)).cpu_count, 6);
  });

  it('from the VM: spec.template.spec.domain.cpu, else resources.limits.cpu, else requests.cpu, rounded up', async () => {
    const cases: [Record<string, unknown>, number][] = [
      [{ cpu: { cores: 2, sockets: 2 } }, 4],
      [{ cpu: undefined, resources: { limits: { cpu: '3' }, requests: { cpu: '1' } } }, 3],
      [{ cpu: undefined, resources: { limits: { cpu: '1500m' } } }, 2],
      [{ cpu: undefined, resources: { requests: { cpu: '250m' } } }, 1],
      [{ cpu: { model: 'host-passthrough' }, resources: { requests: { cpu: '2' } } }, 2],
    ];
    for (const [domain, expected] of cases) {
      const namespace = ns();
      const id = await insertVmRow(db, { vmName: 'spec', namespace });
      const noCpu = vm({ namespace, name: 'spec', printableStatus: 'Stopped' }, { spec: { template: { spec: { domain: { cpu: undefined } } } } });
      await ingest(db, [ev('ADDED', merge(noCpu, { spec: { template: { spec: { domain } } } }))]);
      assert.equal((await synced(db, id)).cpu_count, expected, JSON.stringify(domain));
    }
  });

  it('a CPU hotplug (more sockets in currentCPUTopology) updates cpu_count', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'hot', namespace });
    const running = vmi({ namespace, name: 'hot', sockets: 1, cores: 2 });
    await ingest(db, [ev('ADDED', running)]);
    await ingest(db, [ev('MODIFIED', bump(running, { status: { currentCPUTopology: { sockets: 3, cores: 2, threads: 1 } } }))]);
    assert.equal((await synced(db, id)).cpu_count, 6);
  });
});

describe('memory_mb', () => {
  it('VMI: status.memory.guestCurrent, else spec.domain.memory.guest, else resources.requests.memory', async () => {
    const cases: [Record<string, unknown>, number][] = [
      [{}, 6144],
      [{ status: { memory: undefined } }, 4096],
      [{ status: { memory: undefined }, spec: { domain: { memory: undefined } } }, 2048],
    ];
    for (const [patch, expected] of cases) {
      const namespace = ns();
      const id = await insertVmRow(db, { vmName: 'm', namespace });
      const base = vmi({ namespace, name: 'm', memory: '4Gi', guestCurrent: '6Gi' }, { spec: { domain: { resources: { requests: { memory: '2Gi' } } } } });
      await ingest(db, [ev('ADDED', merge(base, patch))]);
      assert.equal((await synced(db, id)).memory_mb, expected, JSON.stringify(patch));
    }
  });

  it('VM: memory.guest, else resources.requests.memory, else resources.limits.memory', async () => {
    const cases: [Record<string, unknown>, number][] = [
      [{ memory: { guest: '1536Mi' }, resources: { requests: { memory: '2Gi' }, limits: { memory: '3Gi' } } }, 1536],
      [{ memory: undefined, resources: { requests: { memory: '2Gi' }, limits: { memory: '3Gi' } } }, 2048],
      [{ memory: undefined, resources: { limits: { memory: '3G' } } }, 2861],
    ];
    for (const [domain, expected] of cases) {
      const namespace = ns();
      const id = await insertVmRow(db, { vmName: 'm', namespace });
      await ingest(db, [ev('ADDED', vm({ namespace, name: 'm', printableStatus: 'Stopped' }, { spec: { template: { spec: { domain } } } }))]);
      assert.equal((await synced(db, id)).memory_mb, expected, JSON.stringify(domain));
    }
  });

  it('a memory hotplug (guestCurrent grows) updates memory_mb', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'grow', namespace });
    const running = vmi({ namespace, name: 'grow', memory: '2Gi' });
    await ingest(db, [ev('ADDED', running)]);
    await ingest(db, [ev('MODIFIED', bump(running, { status: { memory: { guestCurrent: '4Gi', guestRequested: '4Gi' } } }))]);
    assert.equal((await synced(db, id)).memory_mb, 4096);
  });
});

describe('guest_os', () => {
  it('prettyName; else name + " " + version; else name; else id', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ prettyName: 'Fedora Linux 40 (Server Edition)', name: 'Fedora Linux', version: '40', id: 'fedora' }, 'Fedora Linux 40 (Server Edition)'],
      [{ name: 'Microsoft Windows Server 2022', version: '2022', id: 'mswindows' }, 'Microsoft Windows Server 2022 2022'],
      [{ name: 'Alpine Linux', id: 'alpine' }, 'Alpine Linux'],
      [{ id: 'rhel' }, 'rhel'],
      [{ prettyName: '', name: 'Ubuntu', version: '24.04' }, 'Ubuntu 24.04'],
    ];
    for (const [info, expected] of cases) {
      const namespace = ns();
      const id = await insertVmRow(db, { vmName: 'os', namespace });
      await ingest(db, [ev('ADDED', vmi({ namespace, name: 'os', guestOSInfo: info }))]);
      assert.equal((await synced(db, id)).guest_os, expected);
    }
  });

  it('an empty guestOSInfo (guest agent gone or not yet up) keeps the row value: agent flapping never blanks it', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'flap', namespace });
    let object = vmi({ namespace, name: 'flap', guestOSInfo: CENTOS9 });
    await ingest(db, [ev('ADDED', object)]);
    for (let i = 0; i < 3; i++) {
      object = bump(object, { status: { guestOSInfo: {} } });
      await ingest(db, [ev('MODIFIED', object)]);
      assert.equal((await synced(db, id)).guest_os, 'CentOS Stream 9');
      object = bump(object, { status: { guestOSInfo: CENTOS9 } });
      await ingest(db, [ev('MODIFIED', object)]);
    }
    assert.equal((await synced(db, id)).guest_os, 'CentOS Stream 9');
  });

  it('the vm.kubevirt.io/os hint fills an empty guest_os, from the VM metadata or else the template metadata', async () => {
    const namespace = ns();
    const direct = await insertVmRow(db, { vmName: 'hinted', namespace });
    const viaTemplate = await insertVmRow(db, { vmName: 'templated', namespace });
    await ingest(db, [
      ev('ADDED', vm({ namespace, name: 'hinted', osHint: 'rhel9', printableStatus: 'Stopped' })),
      ev('ADDED', vm({ namespace, name: 'templated', printableStatus: 'Stopped' }, {
        spec: { template: { metadata: { annotations: { 'vm.kubevirt.io/os': 'centos-stream9' } } } },
      })),
    ]);
    assert.equal((await synced(db, direct)).guest_os, 'rhel9');
    assert.equal((await synced(db, viaTemplate)).guest_os, 'centos-stream9');
  });

  it('a hint never replaces an OS a guest agent reported, nor any value already there', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'agent', namespace });
    const preset = await insertVmRow(db, { vmName: 'preset', namespace, guestOs: 'Windows 11' });
    const vmObject = vm({ namespace, name: 'agent', osHint: 'rhel9' });
    const vmiObject = vmi({ namespace, name: 'agent', guestOSInfo: { prettyName: 'Red Hat Enterprise Linux 9.4 (Plow)' } });
    await ingest(db, [ev('ADDED', vmObject), ev('ADDED', vmiObject)]);
    assert.equal((await synced(db, id)).guest_os, 'Red Hat Enterprise Linux 9.4 (Plow)');
    // The VM stops: the VMI goes away; the hint is still on the VM. The agent's word stays.
    await ingest(db, [ev('DELETED', bump(vmiObject)), ev('MODIFIED', bump(vmObject, { status: { printableStatus: 'Stopped' } }))]);
    assert.equal((await synced(db, id)).guest_os, 'Red Hat Enterprise Linux 9.4 (Plow)');
    await ingest(db, [ev('ADDED', vm({ namespace, name: 'preset', osHint: 'rhel9' }))]);
    assert.equal((await synced(db, preset)).guest_os, 'Windows 11');
  });
});

describe('status', () => {
  const table: [string, string][] = [
    ['Running', 'POWERED_ON'], ['Migrating', 'POWERED_ON'], ['Stopped', 'POWERED_OFF'], ['Starting', 'POWERING_ON'],
    ['Stopping', 'POWERING_OFF'], ['Terminating', 'POWERING_OFF'], ['Provisioning', 'STARTING'],
    ['WaitingForVolumeBinding', 'STARTING'], ['WaitingForReceiver', 'STARTING'], ['Paused', 'SUSPENDED'],
    ['Unknown', 'UNKNOWN'], ['CrashLoopBackOff', 'ERROR'], ['ErrorUnschedulable', 'ERROR'], ['ErrImagePull', 'ERROR'],
    ['ImagePullBackOff', 'ERROR'], ['ErrorPvcNotFound', 'ERROR'], ['ErrorDataVolumeNotFound', 'ERROR'],
    ['DataVolumeError', 'ERROR'], ['SomethingNew', 'UNKNOWN'],
  ];
  it('printableStatus maps to SSVirt status, any other value to UNKNOWN', async () => {
    const namespace = ns();
    const ids = new Map<string, string>();
    for (const [printable] of table) ids.set(printable, await insertVmRow(db, { vmName: `vm-${printable.toLowerCase()}`, namespace }));
    await ingest(db, table.map(([printable]) => ev('ADDED', vm({ namespace, name: `vm-${printable.toLowerCase()}`, printableStatus: printable }))));
    for (const [printable, status] of table) assert.equal((await synced(db, ids.get(printable)!)).status, status, printable);
  });

  it('without printableStatus: runStrategy Always or RerunOnFailure, or running: true, is STARTING; else POWERED_OFF', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ runStrategy: 'Always' }, 'STARTING'],
      [{ runStrategy: 'RerunOnFailure' }, 'STARTING'],
      [{ runStrategy: undefined, running: true }, 'STARTING'],
      [{ runStrategy: undefined, running: false }, 'POWERED_OFF'],
      [{ runStrategy: 'Halted' }, 'POWERED_OFF'],
      [{ runStrategy: 'Manual' }, 'POWERED_OFF'],
    ];
    for (const [spec, expected] of cases) {
      const namespace = ns();
      const id = await insertVmRow(db, { vmName: 'fresh', namespace });
      await ingest(db, [ev('ADDED', vm({ namespace, name: 'fresh', printableStatus: undefined }, { spec }))]);
      assert.equal((await synced(db, id)).status, expected, JSON.stringify(spec));
    }
  });

  it('metadata.deletionTimestamp set is DELETING; a DELETED VM is DELETED and keeps its last values', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'bye', namespace });
    const object = vm({ namespace, name: 'bye', cores: 2, memory: '2Gi' });
    await ingest(db, [ev('ADDED', object)]);
    const deleting = bump(object, { metadata: { deletionTimestamp: '2025-08-16T16:00:00Z' }, status: { printableStatus: 'Terminating' } });
    await ingest(db, [ev('MODIFIED', deleting)]);
    assert.equal((await synced(db, id)).status, 'DELETING');
    await ingest(db, [ev('DELETED', bump(deleting))]);
    assert.deepEqual(await synced(db, id), { status: 'DELETED', cpu_count: 2, memory_mb: 2048, guest_os: null });
  });

  it('VMI events never change status', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'quiet', namespace, status: 'POWERED_OFF' });
    await ingest(db, [ev('ADDED', vmi({ namespace, name: 'quiet' }))]);
    assert.equal((await synced(db, id)).status, 'POWERED_OFF');
  });
});

describe('VM lifecycle', () => {
  it('stop: a deleted VMI drops cpu and memory back to the VM spec and keeps guest_os; start again takes the VMI', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'life', namespace });
    let vmObject = vm({ namespace, name: 'life', cores: 2, memory: '4Gi', printableStatus: 'Starting' });
    let vmiObject = vmi({ namespace, name: 'life', cores: 2, sockets: 2, memory: '4Gi', guestCurrent: '8Gi', guestOSInfo: CENTOS9 });
    await ingest(db, [ev('ADDED', vmObject), ev('ADDED', vmiObject)]);
    vmObject = bump(vmObject, { status: { printableStatus: 'Running' } });
    await ingest(db, [ev('MODIFIED', vmObject)]);
    assert.deepEqual(await synced(db, id), { status: 'POWERED_ON', cpu_count: 4, memory_mb: 8192, guest_os: 'CentOS Stream 9' });

    vmObject = bump(vmObject, { spec: { runStrategy: 'Halted' }, status: { printableStatus: 'Stopping' } });
    await ingest(db, [ev('MODIFIED', vmObject), ev('DELETED', bump(vmiObject))]);
    vmObject = bump(vmObject, { status: { printableStatus: 'Stopped' } });
    await ingest(db, [ev('MODIFIED', vmObject)]);
    assert.deepEqual(await synced(db, id), { status: 'POWERED_OFF', cpu_count: 2, memory_mb: 4096, guest_os: 'CentOS Stream 9' });

    vmiObject = vmi({ namespace, name: 'life', cores: 2, sockets: 3, memory: '4Gi', guestOSInfo: {} });
    vmObject = bump(vmObject, { spec: { runStrategy: 'Always' }, status: { printableStatus: 'Running' } });
    await ingest(db, [ev('ADDED', vmiObject), ev('MODIFIED', vmObject)]);
    assert.deepEqual(await synced(db, id), { status: 'POWERED_ON', cpu_count: 6, memory_mb: 4096, guest_os: 'CentOS Stream 9' });
  });

  it('delete and recreate with a new uid: the new object replaces the old one', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'phoenix', namespace });
    const first = vm({ namespace, name: 'phoenix', cores: 2, resourceVersion: '5000' });
    await ingest(db, [ev('ADDED', first), ev('DELETED', merge(first, { metadata: { resourceVersion: '5001' } }))]);
    assert.equal((await synced(db, id)).status, 'DELETED');
    // A recreated object may even carry a lower resourceVersion (another cluster, a restored etcd): a new uid wins.
    const second = vm({ namespace, name: 'phoenix', cores: 4, resourceVersion: '10', printableStatus: 'Stopped' });
    await ingest(db, [ev('ADDED', second)]);
    assert.deepEqual(await synced(db, id), { status: 'POWERED_OFF', cpu_count: 4, memory_mb: 2048, guest_os: null });
  });
});

describe('ordering', () => {
  it('an event with a lower resourceVersion than the staged one, same uid, is ignored', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'order', namespace });
    const v1 = vm({ namespace, name: 'order', cores: 1, resourceVersion: '200' });
    const v2 = merge(v1, { metadata: { resourceVersion: '300' }, spec: { template: { spec: { domain: { cpu: { cores: 2 } } } } } });
    const stale = merge(v1, { metadata: { resourceVersion: '250' }, spec: { template: { spec: { domain: { cpu: { cores: 9 } } } } } });
    await ingest(db, [ev('ADDED', v1), ev('MODIFIED', v2)]);
    const summary = await ingest(db, [ev('MODIFIED', stale)]);
    assert.equal(summary.staged, 0);
    assert.equal(summary.ignored, 1);
    assert.equal((await synced(db, id)).cpu_count, 2);
  });

  it('within one batch, events apply in order and the last one for an object wins (stale ones skipped)', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'dups', namespace });
    const base = vm({ namespace, name: 'dups', resourceVersion: '100' });
    const at = (rv: string, cores: number) =>
      merge(base, { metadata: { resourceVersion: rv }, spec: { template: { spec: { domain: { cpu: { cores } } } } } });
    const summary = await ingest(db, [ev('ADDED', at('100', 1)), ev('MODIFIED', at('103', 3)), ev('MODIFIED', at('101', 7)), ev('MODIFIED', at('104', 4)), ev('MODIFIED', at('102', 8))]);
    assert.equal((await synced(db, id)).cpu_count, 4);
    assert.equal(summary.staged, 1);
    assert.equal(summary.vms_updated, 1);
  });

  it('opaque (non-integer) resourceVersions cannot be ordered: the last event wins', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'opaque', namespace });
    const base = vm({ namespace, name: 'opaque', resourceVersion: 'b' });
    await ingest(db, [ev('ADDED', base), ev('MODIFIED', merge(base, { metadata: { resourceVersion: 'a' }, spec: { template: { spec: { domain: { cpu: { cores: 5 } } } } } }))]);
    assert.equal((await synced(db, id)).cpu_count, 5);
  });
});

describe('change detection', () => {
  it('a row is written only when status, cpu_count, memory_mb or guest_os changes, and then updated_at moves', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'cd', namespace });
    const object = vm({ namespace, name: 'cd', cores: 2 });
    await ingest(db, [ev('ADDED', object)]);
    const first = await vmRow(db, id);
    // New labels, a new resourceVersion: a real change to the object, none to the four values.
    const relabelled = bump(object, { metadata: { labels: { team: 'blue' } } });
    const summary = await ingest(db, [ev('MODIFIED', relabelled)]);
    assert.equal(summary.staged, 1);
    assert.equal(summary.vms_updated, 0);
    assert.equal((await vmRow(db, id)).xmin, first.xmin);
    await ingest(db, [ev('MODIFIED', bump(relabelled, { spec: { template: { spec: { domain: { cpu: { cores: 3 } } } } } }))]);
    const changed = await vmRow(db, id);
    assert.notEqual(changed.xmin, first.xmin);
    assert.ok(changed.updated_at.getTime() > first.updated_at.getTime());
  });

  it('replaying events already applied writes no row and sends no notification', async () => {
    const namespace = ns();
    const ids = await Promise.all(['r1', 'r2', 'r3'].map((vmName) => insertVmRow(db, { vmName, namespace })));
    const events = ['r1', 'r2', 'r3'].flatMap((name, i) => [
      ev('ADDED', vm({ namespace, name, cores: i + 1, osHint: 'rhel9' })),
      ev('ADDED', vmi({ namespace, name, cores: i + 2, guestOSInfo: CENTOS9 })),
    ]);
    const listener = await listen(db.url);
    try {
      const applied = await ingest(db, events);
      assert.equal(applied.vms_updated, 3);
      await listener.drain();
      assert.equal(listener.payloads.filter((p) => p.namespace === namespace).length, 3);
      const xmins = await Promise.all(ids.map(async (id) => (await vmRow(db, id)).xmin));
      const snapshotXmins = await db.query('select xmin::text from vm_sync.snapshots where namespace = $1 order by kind, name', [namespace]);

      const replay = await ingest(db, events);
      await db.query('select vm_sync.reconcile()');
      await listener.drain();
      assert.equal(replay.vms_updated, 0);
      assert.equal(replay.staged, 0);
      assert.equal(replay.notifications, 0);
      assert.deepEqual(await Promise.all(ids.map(async (id) => (await vmRow(db, id)).xmin)), xmins);
      assert.deepEqual(await db.query('select xmin::text from vm_sync.snapshots where namespace = $1 order by kind, name', [namespace]), snapshotXmins);
      assert.equal(listener.payloads.filter((p) => p.namespace === namespace).length, 3, 'no new notification');
    } finally {
      await listener.close();
    }
  });
});

describe('notifications', () => {
  it('one vm_changed per changed row, with old and new of each changed column only, and the feed seq', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'n1', namespace, cpu: 1, memory: 2048, status: 'POWERED_OFF' });
    const listener = await listen(db.url);
    try {
      await ingest(db, [ev('ADDED', vmi({ namespace, name: 'n1', cores: 2, memory: '2Gi', guestOSInfo: CENTOS9 }))]);
      await listener.drain();
      const mine = listener.payloads.filter((p) => p.namespace === namespace);
      assert.equal(mine.length, 1);
      const payload = mine[0];
      assert.equal(payload.id, id);
      assert.equal(payload.vm_name, 'n1');
      assert.deepEqual(payload.changes, { cpu_count: { old: 1, new: 2 }, guest_os: { old: null, new: 'CentOS Stream 9' } });
      const feed = await db.query('select seq::int, vm_id, changes from vm_sync.changes where seq = $1', [payload.seq]);
      assert.deepEqual(feed[0], { seq: payload.seq, vm_id: id, changes: payload.changes });
    } finally {
      await listener.close();
    }
  });

  it('the payload stays under 8000 bytes even when a column held a huge value', async () => {
    const namespace = ns();
    const huge = 'x'.repeat(20000);
    const id = await insertVmRow(db, { vmName: 'big', namespace, guestOs: huge, status: huge });
    const listener = await listen(db.url);
    try {
      await ingest(db, [ev('ADDED', vm({ namespace, name: 'big', printableStatus: 'Stopped' })), ev('ADDED', vmi({ namespace, name: 'big', guestOSInfo: CENTOS9 }))]);
      await listener.drain();
      const mine = listener.payloads.filter((p) => p.id === id);
      assert.equal(mine.length, 1);
      assert.ok(Buffer.byteLength(JSON.stringify(mine[0])) < 8000);
      assert.equal(mine[0].truncated, true);
      assert.equal((await synced(db, id)).guest_os, 'CentOS Stream 9');
      const feed = await db.query('select changes from vm_sync.changes where seq = $1', [mine[0].seq]);
      assert.equal(feed[0].changes.guest_os.old, huge, 'the change feed keeps the whole change');
    } finally {
      await listener.close();
    }
  });
});
