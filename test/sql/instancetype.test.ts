// docs/contract.md#3b-instancetypes, rule by rule, through vm_sync.ingest with objects as KubeVirt 1.6 serves them.
// Each test works in a namespace (and with instancetype names) of its own, so tests share one
// database without touching each other.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { instancetype, itVm, NAMESPACED_KIND, revision, revisionName } from '../helpers/instancetypes.js';
import { bump, merge } from '../helpers/objects.js';
import { ev, ingest, insertVmRow, listen, rejects, synced } from '../helpers/sync.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase('instancetype');
});
after(async () => {
  await db.drop();
});

let seq = 0;
function ns(): string {
  seq += 1;
  return `vdc-itype-${seq}`;
}
/** A cluster instancetype name no other test uses (cluster objects are shared by all namespaces). */
function itName(base: string): string {
  seq += 1;
  return `${base}-t${seq}`;
}

async function size(id: string): Promise<[number | null, number | null]> {
  const s = await synced(db, id);
  return [s.cpu_count, s.memory_mb];
}

describe('a stopped instancetype VM gets its size', () => {
  it('from its ControllerRevision: a never-started u1.2xlarge reads 8 / 32768', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'big', namespace });
    const it2x = instancetype({ name: 'u1.2xlarge' });
    const rev = revisionName('big', it2x);
    const vmObject = itVm({ namespace, name: 'big', instancetype: 'u1.2xlarge', revision: rev });
    await ingest(db, [ev('ADDED', vmObject), ev('ADDED', revision(vmObject, it2x))]);
    assert.deepEqual(await synced(db, id), { status: 'POWERED_OFF', cpu_count: 8, memory_mb: 32768, guest_os: null });
  });

  const orders: [string, 'VM' | 'revision' | 'instancetype', 'revision' | 'instancetype'][] = [
    ['the VM after its revision', 'VM', 'revision'],
    ['the revision after the VM', 'revision', 'revision'],
    ['the VM after its instancetype', 'VM', 'instancetype'],
    ['the instancetype after the VM', 'instancetype', 'instancetype'],
  ];
  for (const [what, last, source] of orders) {
    it(`whichever arrives last completes the merge in that call: ${what}`, async () => {
      const namespace = ns();
      const name = itName('u1.xlarge');
      const id = await insertVmRow(db, { vmName: 'order', namespace });
      const it = instancetype({ name, cpu: 4, memory: '16Gi' });
      const vmObject = itVm({ namespace, name: 'order', instancetype: name, revision: revisionName('order', it) });
      const other = source === 'revision' ? ev('ADDED', revision(vmObject, it)) : ev('ADDED', it);
      const [first, second] = last === 'VM' ? [other, ev('ADDED', vmObject)] : [ev('ADDED', vmObject), other];
      await ingest(db, [first]);
      assert.deepEqual(await size(id), [null, null]);
      const summary = await ingest(db, [second]);
      assert.equal(summary.vms_updated, 1);
      assert.deepEqual(await size(id), [4, 16384]);
    });
  }

  it('from the live cluster instancetype while no revision is staged', async () => {
    const namespace = ns();
    const name = itName('u1.large');
    const id = await insertVmRow(db, { vmName: 'fresh', namespace });
    await ingest(db, [ev('ADDED', instancetype({ name, cpu: 2, memory: '8Gi' }))]);
    const summary = await ingest(db, [ev('ADDED', itVm({ namespace, name: 'fresh', instancetype: name }))]);
    assert.equal(summary.rejected, 0);
    assert.deepEqual(await size(id), [2, 8192]);
  });

  it('reconcile() sizes a vms row created after everything was staged', async () => {
    const namespace = ns();
    const name = itName('u1.small');
    const it = instancetype({ name, cpu: 1, memory: '2Gi' });
    const vmObject = itVm({ namespace, name: 'later', instancetype: name, revision: revisionName('later', it) });
    await ingest(db, [ev('ADDED', it), ev('ADDED', vmObject), ev('ADDED', revision(vmObject, it))]);
    const id = await insertVmRow(db, { vmName: 'later', namespace });
    await db.query('select vm_sync.reconcile()');
    assert.deepEqual(await size(id), [1, 2048]);
  });
});

describe('which instancetype: the contract order', () => {
  it('status.instancetypeRef.controllerRevisionRef.name comes before spec.instancetype.revisionName', async () => {
    const namespace = ns();
    const name = itName('u1.custom');
    const id = await insertVmRow(db, { vmName: 'both', namespace });
    const older = instancetype({ name, cpu: 2, memory: '2Gi', generation: 1 });
    const newer = merge(older, { metadata: { generation: 2 }, spec: { cpu: { guest: 6 }, memory: { guest: '6Gi' } } });
    const base = itVm({ namespace, name: 'both', instancetype: name });
    const statusRev = revision(base, newer);
    const specRev = revision(base, older);
    const vmObject = itVm({ namespace, name: 'both', instancetype: name, revision: revisionName('both', newer), specRevision: revisionName('both', older) });
    await ingest(db, [ev('ADDED', vmObject), ev('ADDED', specRev)]);
    assert.deepEqual(await size(id), [2, 2048], 'spec.instancetype.revisionName while the status one is not staged');
    await ingest(db, [ev('ADDED', statusRev)]);
    assert.deepEqual(await size(id), [6, 6144], 'the status reference wins once staged');
  });

  it('a revision comes before the live object', async () => {
    const namespace = ns();
    const name = itName('u1.pinned');
    const id = await insertVmRow(db, { vmName: 'pin', namespace });
    const it = instancetype({ name, cpu: 2, memory: '4Gi' });
    const vmObject = itVm({ namespace, name: 'pin', instancetype: name, revision: revisionName('pin', it) });
    const edited = merge(bump(it), { metadata: { generation: 2 }, spec: { cpu: { guest: 12 }, memory: { guest: '48Gi' } } });
    await ingest(db, [ev('ADDED', edited), ev('ADDED', vmObject)]);
    assert.deepEqual(await size(id), [12, 49152], 'the live object while the revision is not staged');
    await ingest(db, [ev('ADDED', revision(vmObject, it))]);
    assert.deepEqual(await size(id), [2, 4096], 'the revision once staged');
  });

  it('a revision pins the size: editing the live instancetype changes nothing for a VM whose revision is staged', async () => {
    const namespace = ns();
    const name = itName('u1.medium');
    const pinned = await insertVmRow(db, { vmName: 'pinned', namespace });
    const unpinned = await insertVmRow(db, { vmName: 'unpinned', namespace });
    const it = instancetype({ name, cpu: 1, memory: '4Gi' });
    const vmObject = itVm({ namespace, name: 'pinned', instancetype: name, revision: revisionName('pinned', it) });
    await ingest(db, [ev('ADDED', it), ev('ADDED', vmObject), ev('ADDED', revision(vmObject, it)),
                      ev('ADDED', itVm({ namespace, name: 'unpinned', instancetype: name }))]);
    const feed = await listen(db.url);
    try {
      const summary = await ingest(db, [ev('MODIFIED', merge(bump(it), { metadata: { generation: 2 }, spec: { cpu: { guest: 3 } } }))]);
      assert.equal(summary.vms_updated, 1, 'only the VM without a staged revision');
      await feed.drain();
      assert.deepEqual(feed.payloads.map((p) => [p.vm_name, p.changes]), [['unpinned', { cpu_count: { old: 1, new: 3 } }]]);
    } finally {
      await feed.close();
    }
    assert.deepEqual(await size(pinned), [1, 4096]);
    assert.deepEqual(await size(unpinned), [3, 4096]);
  });

  it('a namespaced VirtualMachineInstancetype is looked up in the VM\'s namespace only', async () => {
    const namespace = ns();
    const other = ns();
    const name = itName('team.large');
    const id = await insertVmRow(db, { vmName: 'nsd', namespace });
    await ingest(db, [
      ev('ADDED', instancetype({ name, namespace: other, cpu: 9, memory: '9Gi' })),
      ev('ADDED', instancetype({ name, cpu: 7, memory: '7Gi' })), // a cluster one of the same name
      ev('ADDED', itVm({ namespace, name: 'nsd', instancetype: name, kind: NAMESPACED_KIND })),
    ]);
    assert.deepEqual(await size(id), [null, null], 'neither another namespace\'s nor the cluster\'s');
    const summary = await ingest(db, [ev('ADDED', instancetype({ name, namespace, cpu: 3, memory: '3Gi' }))]);
    assert.equal(summary.vms_updated, 1);
    assert.deepEqual(await size(id), [3, 3072]);
  });

  const kinds: [string | undefined, 'cluster' | 'namespaced'][] = [
    ['VirtualMachineClusterInstancetype', 'cluster'],
    ['virtualmachineclusterinstancetype', 'cluster'],
    ['virtualmachineclusterinstancetypes', 'cluster'],
    ['VIRTUALMACHINECLUSTERINSTANCETYPE', 'cluster'],
    ['', 'cluster'],
    [undefined, 'cluster'],
    ['VirtualMachineInstancetype', 'namespaced'],
    ['virtualmachineinstancetype', 'namespaced'],
    ['virtualmachineinstancetypes', 'namespaced'],
    ['VirtualMachineInstanceTypes', 'namespaced'],
  ];
  for (const [kind, scope] of kinds) {
    it(`kind ${JSON.stringify(kind)} names the ${scope} instancetype (case-insensitive, singular or plural, empty = cluster)`, async () => {
      const namespace = ns();
      const name = itName('kinds');
      const id = await insertVmRow(db, { vmName: 'k', namespace });
      await ingest(db, [
        ev('ADDED', instancetype({ name, cpu: 2, memory: '2Gi' })),
        ev('ADDED', instancetype({ name, namespace, cpu: 5, memory: '5Gi' })),
        ev('ADDED', itVm({ namespace, name: 'k', instancetype: name, kind })),
      ]);
      assert.deepEqual(await size(id), scope === 'cluster' ? [2, 2048] : [5, 5120]);
    });
  }

  it('an unknown kind is rejected; a revision still sizes the VM', async () => {
    const namespace = ns();
    const name = itName('odd');
    const id = await insertVmRow(db, { vmName: 'odd', namespace });
    const it = instancetype({ name, cpu: 2, memory: '2Gi' });
    const vmObject = itVm({ namespace, name: 'odd', instancetype: name, kind: 'VirtualMachinePreference' });
    const summary = await ingest(db, [ev('ADDED', it), ev('ADDED', vmObject)]);
    assert.equal(summary.rejected, 1);
    assert.deepEqual(await size(id), [null, null], 'no live lookup for an unknown kind');
    const r = (await rejects(db)).filter((x) => x.namespace === namespace);
    assert.deepEqual(r.map((x) => [x.field, x.reason]), [['spec.instancetype.kind', 'unknown instancetype kind']]);
    const withRev = bump(vmObject, { spec: { instancetype: { revisionName: revisionName('odd', it) } } });
    await ingest(db, [ev('MODIFIED', withRev), ev('ADDED', revision(vmObject, it))]);
    assert.deepEqual(await size(id), [2, 2048]);
  });
});

describe('resize while stopped', () => {
  it('u1.2xlarge -> u1.medium reads 1 / 4096 as soon as what the VM now names is staged', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'resize', namespace });
    const big = instancetype({ name: 'u1.2xlarge' });
    const medium = instancetype({ name: 'u1.medium' });
    const vmObject = itVm({ namespace, name: 'resize', instancetype: 'u1.2xlarge', revision: revisionName('resize', big) });
    await ingest(db, [ev('ADDED', vmObject), ev('ADDED', revision(vmObject, big))]);
    assert.deepEqual(await size(id), [8, 32768]);

    // The user edits spec.instancetype.name; the status still names the old revision, which
    // snapshots another instancetype and so no longer counts (KubeVirt's finder checks the same).
    const edited = bump(vmObject, { spec: { instancetype: { name: 'u1.medium' } } });
    await ingest(db, [ev('MODIFIED', edited)]);
    assert.deepEqual(await size(id), [8, 32768], 'nothing the VM names is staged yet: the row keeps its size');

    // The controller stores the new revision and points the status at it.
    const moved = bump(edited, { status: { instancetypeRef: { name: 'u1.medium', controllerRevisionRef: { name: revisionName('resize', medium) } } } });
    const summary = await ingest(db, [ev('MODIFIED', moved), ev('ADDED', revision(moved, medium))]);
    assert.equal(summary.vms_updated, 1);
    assert.deepEqual(await size(id), [1, 4096]);
  });

  it('the new live instancetype sizes the VM before its new revision exists', async () => {
    const namespace = ns();
    const from = itName('from');
    const to = itName('to');
    const id = await insertVmRow(db, { vmName: 'swap', namespace });
    const a = instancetype({ name: from, cpu: 8, memory: '32Gi' });
    const b = instancetype({ name: to, cpu: 1, memory: '4Gi' });
    const vmObject = itVm({ namespace, name: 'swap', instancetype: from, revision: revisionName('swap', a) });
    await ingest(db, [ev('ADDED', a), ev('ADDED', b), ev('ADDED', vmObject), ev('ADDED', revision(vmObject, a))]);
    assert.deepEqual(await size(id), [8, 32768]);
    await ingest(db, [ev('MODIFIED', bump(vmObject, { spec: { instancetype: { name: to } } }))]);
    assert.deepEqual(await size(id), [1, 4096], 'the stale status reference is of another instancetype');
  });
});
