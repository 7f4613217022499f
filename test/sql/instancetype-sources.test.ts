// docs/contract.md#3b-instancetypes, rule by rule (continued from instancetype.test.ts): sources and their limits,
// kinds and versions accepted, set-based re-merge, replay, the preference hint, the u1 sizes.
// Each test works in a namespace (and with instancetype names) of its own, so tests share one
// database without touching each other.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { CLUSTER_KIND, clusterPreference, instancetype, itVm, revision, revisionName, U1 } from '../helpers/instancetypes.js';
import { bump, CENTOS9, merge, vmi, type Obj } from '../helpers/objects.js';
import { ev, ingest, insertVmRow, listen, rejects, synced } from '../helpers/sync.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase('instancetype_more');
});
after(async () => {
  await db.drop();
});

let seq = 0;
function ns(): string {
  seq += 1;
  return `vdc-itype2-${seq}`;
}
/** A cluster instancetype name no other test uses (cluster objects are shared by all namespaces). */
function itName(base: string): string {
  seq += 1;
  return `${base}-u${seq}`;
}

async function size(id: string): Promise<[number | null, number | null]> {
  const s = await synced(db, id);
  return [s.cpu_count, s.memory_mb];
}

describe('sources and their limits', () => {
  it('a live VMI still wins over the instancetype', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'runs', namespace });
    const it = instancetype({ name: 'u1.2xlarge' });
    const vmObject = itVm({ namespace, name: 'runs', instancetype: 'u1.2xlarge', revision: revisionName('runs', it), printableStatus: 'Running', runStrategy: 'Always' });
    const running = vmi({ namespace, name: 'runs', sockets: 8, cores: 1, threads: 1, memory: '32Gi', guestCurrent: '30Gi', guestOSInfo: CENTOS9 });
    await ingest(db, [ev('ADDED', vmObject), ev('ADDED', revision(vmObject, it)), ev('ADDED', running)]);
    assert.deepEqual(await size(id), [8, 30720]);
    await ingest(db, [ev('DELETED', bump(running))]);
    assert.deepEqual(await size(id), [8, 32768], 'stopped: back to the instancetype');
  });

  it('a deleted instancetype or revision blanks nothing', async () => {
    const namespace = ns();
    const name = itName('gone');
    const id = await insertVmRow(db, { vmName: 'keep', namespace });
    const it = instancetype({ name, cpu: 2, memory: '8Gi' });
    const vmObject = itVm({ namespace, name: 'keep', instancetype: name, revision: revisionName('keep', it) });
    const rev = revision(vmObject, it);
    await ingest(db, [ev('ADDED', it), ev('ADDED', vmObject), ev('ADDED', rev)]);
    const feed = await listen(db.url);
    try {
      const summary = await ingest(db, [ev('DELETED', bump(rev)), ev('DELETED', bump(it))]);
      assert.equal(summary.staged, 2);
      assert.equal(summary.vms_updated, 0);
      await feed.drain();
      assert.equal(feed.payloads.length, 0);
    } finally {
      await feed.close();
    }
    assert.deepEqual(await synced(db, id), { status: 'POWERED_OFF', cpu_count: 2, memory_mb: 8192, guest_os: null });
  });

  it('an unusable instancetype value is rejected like any other; the rest applies', async () => {
    const namespace = ns();
    const name = itName('broken');
    const id = await insertVmRow(db, { vmName: 'half', namespace, memory: 1024 });
    const summary = await ingest(db, [
      ev('ADDED', instancetype({ name, cpu: 4, memory: 'lots' })),
      ev('ADDED', itVm({ namespace, name: 'half', instancetype: name })),
    ]);
    assert.equal(summary.rejected, 1);
    assert.deepEqual(await size(id), [4, 1024], 'cpu applies, memory keeps the row\'s value');
    const r = (await rejects(db)).filter((x) => x.name === name);
    assert.deepEqual(r, [{ kind: CLUSTER_KIND, namespace: '', name, field: 'spec.memory.guest', value: 'lots', reason: 'malformed quantity' }]);
  });

  it('unusable values inside a revision are rejected under data.*', async () => {
    const namespace = ns();
    const name = itName('badrev');
    const id = await insertVmRow(db, { vmName: 'br', namespace });
    const it = instancetype({ name, cpu: 0, memory: '2Gi' });
    const vmObject = itVm({ namespace, name: 'br', instancetype: name, revision: revisionName('br', it) });
    await ingest(db, [ev('ADDED', vmObject), ev('ADDED', revision(vmObject, it))]);
    assert.deepEqual(await size(id), [null, 2048]);
    const r = (await rejects(db)).filter((x) => x.namespace === namespace && x.kind === 'ControllerRevision');
    assert.deepEqual(r.map((x) => [x.field, x.value, x.reason]), [['data.spec.cpu.guest', 0, 'zero or negative CPU']]);
  });

  it('a ControllerRevision of a preference, and preference objects, are staged and unused, never rejected', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'pref', namespace });
    const pref = clusterPreference(itName('rhel.9'));
    const vmObject = itVm({ namespace, name: 'pref', instancetype: itName('none') });
    const prefRev = revision(vmObject, pref);
    const deployment = merge(prefRev, { metadata: { name: 'web-7d4b9c', labels: undefined, ownerReferences: undefined }, data: { spec: { replicas: 3 } } });
    delete (deployment as Obj).data;
    const summary = await ingest(db, [ev('ADDED', pref), ev('ADDED', vmObject), ev('ADDED', prefRev), ev('ADDED', deployment)]);
    assert.equal(summary.rejected, 0);
    assert.equal(summary.staged, 4);
    assert.deepEqual(await size(id), [null, null]);
    const staged = await db.query('select kind, namespace, cpu_count, memory_mb, instancetype_kind from vm_sync.snapshots where name = $1', [(pref.metadata as Obj).name]);
    assert.deepEqual(staged, [{ kind: 'VirtualMachineClusterPreference', namespace: '', cpu_count: null, memory_mb: null, instancetype_kind: null }]);
  });

  it('every instancetype.kubevirt.io version is staged; other groups and versions are rejected', async () => {
    const namespace = ns();
    const events = ['v1alpha1', 'v1alpha2', 'v1beta1', 'v1'].map((version) => ev('ADDED', instancetype({ name: itName(`ver-${version}`), version })));
    const summary = await ingest(db, events);
    assert.equal(summary.staged, 4);
    assert.equal(summary.rejected, 0);
    const bad = await ingest(db, [
      ev('ADDED', instancetype({ name: itName('v2') }, { apiVersion: 'instancetype.kubevirt.io/v2' })),
      ev('ADDED', revision(itVm({ namespace, name: 'x', instancetype: 'u1.small' }), instancetype({ name: 'u1.small' }), { apiVersion: 'apps/v1beta1' })),
    ]);
    assert.equal(bad.rejected, 2);
    assert.equal(bad.staged, 0);
  });

  it('a cluster-scoped object is staged under namespace \'\' whatever namespace it carries', async () => {
    const name = itName('scoped');
    await ingest(db, [ev('ADDED', instancetype({ name }, { metadata: { namespace: 'default' } }))]);
    const rows = await db.query('select namespace from vm_sync.snapshots where kind = $1 and name = $2', [CLUSTER_KIND, name]);
    assert.deepEqual(rows, [{ namespace: '' }]);
  });

  it('a namespaced instancetype or a revision without a namespace is rejected', async () => {
    const summary = await ingest(db, [ev('ADDED', instancetype({ name: itName('nons'), namespace: 'x' }, { metadata: { namespace: undefined } }))]);
    assert.equal(summary.rejected, 1);
    assert.equal(summary.staged, 0);
  });

  it('an older resourceVersion of the same instancetype is ignored', async () => {
    const namespace = ns();
    const name = itName('order');
    const id = await insertVmRow(db, { vmName: 'rv', namespace });
    const v1 = instancetype({ name, cpu: 2, memory: '2Gi' });
    const v2 = merge(bump(v1), { spec: { cpu: { guest: 4 } } });
    await ingest(db, [ev('ADDED', itVm({ namespace, name: 'rv', instancetype: name })), ev('ADDED', v2)]);
    const summary = await ingest(db, [ev('MODIFIED', v1)]);
    assert.equal(summary.ignored, 1);
    assert.deepEqual(await size(id), [4, 2048]);
  });
});

describe('set-based re-merge, change detection, replay', () => {
  it('one instancetype event re-merges every VM naming it, across namespaces, in one call', async () => {
    const name = itName('shared');
    const a = ns();
    const b = ns();
    const ids = [await insertVmRow(db, { vmName: 'one', namespace: a }), await insertVmRow(db, { vmName: 'two', namespace: a }), await insertVmRow(db, { vmName: 'three', namespace: b })];
    const bystander = await insertVmRow(db, { vmName: 'other', namespace: a, cpu: 7, memory: 700 });
    await ingest(db, [
      ev('ADDED', itVm({ namespace: a, name: 'one', instancetype: name })),
      ev('ADDED', itVm({ namespace: a, name: 'two', instancetype: name, kind: 'VirtualMachineClusterInstancetypes' })),
      ev('ADDED', itVm({ namespace: b, name: 'three', instancetype: name, kind: undefined })),
      ev('ADDED', itVm({ namespace: a, name: 'other', instancetype: itName('unrelated') })),
    ]);
    const feed = await listen(db.url);
    try {
      const summary = await ingest(db, [ev('ADDED', instancetype({ name, cpu: 2, memory: '4Gi' }))]);
      assert.equal(summary.vms_updated, 3);
      await feed.drain();
      assert.equal(feed.payloads.length, 3);
    } finally {
      await feed.close();
    }
    for (const id of ids) assert.deepEqual(await size(id), [2, 4096]);
    assert.deepEqual(await size(bystander), [7, 700]);
  });

  it('replaying every event writes nothing and notifies nothing', async () => {
    const namespace = ns();
    const it = instancetype({ name: itName('replay'), cpu: 2, memory: '2Gi' });
    const vmObject = itVm({ namespace, name: 'rp', instancetype: (it.metadata as Obj).name as string, revision: revisionName('rp', it), preference: 'rhel.9' });
    const events = [ev('ADDED', it), ev('ADDED', vmObject), ev('ADDED', revision(vmObject, it)), ev('ADDED', clusterPreference(itName('rhel.9')))];
    const id = await insertVmRow(db, { vmName: 'rp', namespace });
    await ingest(db, events);
    const before = await synced(db, id);
    const feed = await listen(db.url);
    try {
      const summary = await ingest(db, events);
      assert.equal(summary.staged, 0);
      assert.equal(summary.vms_updated, 0);
      assert.equal(summary.rejected, 0);
      await feed.drain();
      assert.equal(feed.payloads.length, 0);
    } finally {
      await feed.close();
    }
    assert.deepEqual(await synced(db, id), before);
  });

  it('an instancetype change that leaves every size as it was writes no row', async () => {
    const namespace = ns();
    const name = itName('same');
    const it = instancetype({ name, cpu: 2, memory: '2Gi' });
    const id = await insertVmRow(db, { vmName: 'same', namespace });
    await ingest(db, [ev('ADDED', it), ev('ADDED', itVm({ namespace, name: 'same', instancetype: name }))]);
    const xmin = (await db.query('select xmin::text as x from public.vms where id = $1', [id]))[0].x;
    const summary = await ingest(db, [ev('MODIFIED', merge(bump(it), { metadata: { labels: { touched: 'yes' } }, spec: { memory: { guest: '2048Mi' } } }))]);
    assert.equal(summary.staged, 1);
    assert.equal(summary.vms_updated, 0);
    assert.equal((await db.query('select xmin::text as x from public.vms where id = $1', [id]))[0].x, xmin);
  });

  it('a ControllerRevision sweep after a relist is accepted and blanks nothing', async () => {
    const namespace = ns();
    const it = instancetype({ name: itName('swept'), cpu: 3, memory: '3Gi' });
    const vmObject = itVm({ namespace, name: 'sw', instancetype: (it.metadata as Obj).name as string, revision: revisionName('sw', it) });
    const id = await insertVmRow(db, { vmName: 'sw', namespace });
    await ingest(db, [ev('ADDED', vmObject), ev('ADDED', revision(vmObject, it))]);
    const r = await db.query(`select vm_sync.sweep('ControllerRevision', array[$1], '{}') as s`, [namespace]);
    assert.equal(r[0].s.deleted, 1);
    assert.deepEqual(await size(id), [3, 3072]);
  });
});

describe('spec.preference.name as an OS hint', () => {
  it('fills an empty guest_os, after the vm.kubevirt.io/os annotations', async () => {
    const namespace = ns();
    const plain = await insertVmRow(db, { vmName: 'p1', namespace });
    const annotated = await insertVmRow(db, { vmName: 'p2', namespace });
    await ingest(db, [
      ev('ADDED', itVm({ namespace, name: 'p1', instancetype: 'u1.small', preference: 'rhel.9' })),
      ev('ADDED', itVm({ namespace, name: 'p2', instancetype: 'u1.small', preference: 'rhel.9' }, { metadata: { annotations: { 'vm.kubevirt.io/os': 'rhel9' } } })),
    ]);
    assert.equal((await synced(db, plain)).guest_os, 'rhel.9');
    assert.equal((await synced(db, annotated)).guest_os, 'rhel9');
  });

  it('never replaces an OS a guest agent reported, nor a value already there', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'agent', namespace });
    const preset = await insertVmRow(db, { vmName: 'preset', namespace, guestOs: 'Windows Server 2022' });
    const vmObject = itVm({ namespace, name: 'agent', instancetype: 'u1.small', preference: 'rhel.9', printableStatus: 'Running' });
    await ingest(db, [ev('ADDED', vmObject), ev('ADDED', vmi({ namespace, name: 'agent', guestOSInfo: CENTOS9 }))]);
    assert.equal((await synced(db, id)).guest_os, 'CentOS Stream 9');
    await ingest(db, [ev('MODIFIED', bump(vmObject, { status: { printableStatus: 'Stopped' } }))]);
    assert.equal((await synced(db, id)).guest_os, 'CentOS Stream 9');
    await ingest(db, [ev('ADDED', itVm({ namespace, name: 'preset', instancetype: 'u1.small', preference: 'rhel.9' }))]);
    assert.equal((await synced(db, preset)).guest_os, 'Windows Server 2022');
  });
});

describe('u1 sizes', () => {
  it('every common-instancetypes u1 size gives its vCPUs and MiB', async () => {
    const namespace = ns();
    const expected: Record<string, [number, number]> = {
      'u1.nano': [1, 512], 'u1.micro': [1, 1024], 'u1.small': [1, 2048], 'u1.medium': [1, 4096], 'u1.2xmedium': [2, 4096],
      'u1.large': [2, 8192], 'u1.xlarge': [4, 16384], 'u1.2xlarge': [8, 32768], 'u1.4xlarge': [16, 65536], 'u1.8xlarge': [32, 131072],
    };
    assert.deepEqual(Object.keys(expected).sort(), Object.keys(U1).sort());
    const events = [];
    const ids: Record<string, string> = {};
    for (const name of Object.keys(U1)) {
      const it = instancetype({ name });
      const vmName = `vm-${name.replace('.', '-')}`;
      ids[name] = await insertVmRow(db, { vmName, namespace });
      const vmObject = itVm({ namespace, name: vmName, instancetype: name, revision: revisionName(vmName, it) });
      events.push(ev('ADDED', vmObject), ev('ADDED', revision(vmObject, it)));
    }
    await ingest(db, events);
    for (const [name, want] of Object.entries(expected)) assert.deepEqual(await size(ids[name]!), want, name);
  });
});
