// The merge finds a batch's vms rows through vm_sync.vm_rows, its own lookup by (namespace, vm_name)
// (public.vms may not get an index). The application writes vms behind its back, so the lookup is
// only a hint: whatever the application did to its rows since the lookup recorded them, the rows
// written are the ones docs/contract.md#which-row names.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { bump, vm } from '../helpers/objects.js';
import { ev, ingest, insertVmRow, synced } from '../helpers/sync.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase('vm_rows');
});
after(async () => {
  await db.drop();
});

let seq = 0;
function ns(): string {
  seq += 1;
  return `vdc-lookup-${seq}`;
}

const EMPTY = { status: null, cpu_count: null, memory_mb: null, guest_os: null };

/** A VM staged and merged into its row, so the lookup has recorded that row; returns the object. */
async function recorded(namespace: string, name: string, id: string) {
  const object = vm({ namespace, name, cores: 1, memory: '1Gi', printableStatus: 'Stopped' });
  await ingest(db, [ev('ADDED', object)]);
  const [entry] = await db.query('select 1 from vm_sync.vm_rows where id = $1', [id]);
  assert.ok(entry, 'the merge recorded the row in vm_sync.vm_rows');
  assert.equal((await synced(db, id)).cpu_count, 1);
  return object;
}

async function lookupMatchesVms(): Promise<void> {
  const [d] = await db.query<{ missing: number; extra: number }>(`
    select (select count(*)::int from public.vms v
             where v.deleted_at is null and v.namespace is not null and v.vm_name is not null
               and not exists (select 1 from vm_sync.vm_rows r where r.id = v.id and r.namespace = v.namespace and r.vm_name = v.vm_name)) as missing,
           (select count(*)::int from vm_sync.vm_rows r
             where not exists (select 1 from public.vms v where v.id = r.id and v.deleted_at is null
                                 and v.namespace = r.namespace and v.vm_name = r.vm_name)) as extra`);
  assert.deepEqual(d, { missing: 0, extra: 0 });
}

describe('the merge\'s lookup of vms rows', () => {
  it('a row the application inserts after the lookup was filled is found by the next event of its VM', async () => {
    const namespace = ns();
    const first = await insertVmRow(db, { vmName: 'a', namespace });
    await recorded(namespace, 'a', first);
    const object = vm({ namespace, name: 'b', cores: 2, memory: '2Gi' });
    await ingest(db, [ev('ADDED', object)]);
    const late = await insertVmRow(db, { vmName: 'b', namespace });
    const s = await ingest(db, [ev('MODIFIED', bump(object, { spec: { template: { spec: { domain: { cpu: { cores: 3 } } } } } }))]);
    assert.equal(s.vms_updated, 1);
    assert.equal((await synced(db, late)).cpu_count, 3);
  });

  it('a soft-deleted row is left alone and the live row that replaced it under the same key is written', async () => {
    const namespace = ns();
    const old = await insertVmRow(db, { vmName: 'web', namespace });
    const object = await recorded(namespace, 'web', old);
    await db.query('update public.vms set deleted_at = now() where id = $1', [old]);
    const fresh = await insertVmRow(db, { vmName: 'web', namespace });
    await ingest(db, [ev('MODIFIED', bump(object, { spec: { template: { spec: { domain: { cpu: { cores: 4 } } } } } }))]);
    assert.equal((await synced(db, old)).cpu_count, 1, 'the deleted row keeps its values');
    assert.equal((await synced(db, fresh)).cpu_count, 4);
  });

  it('a row renamed by the application is written under its new vm_name and no longer under the old one', async () => {
    const namespace = ns();
    const id = await insertVmRow(db, { vmName: 'before', namespace });
    const before = await recorded(namespace, 'before', id);
    await db.query(`update public.vms set vm_name = 'after' where id = $1`, [id]);
    await ingest(db, [ev('MODIFIED', bump(before, { spec: { template: { spec: { domain: { cpu: { cores: 5 } } } } } }))]);
    assert.equal((await synced(db, id)).cpu_count, 1, 'the old name no longer reaches the row');
    await ingest(db, [ev('ADDED', vm({ namespace, name: 'after', cores: 6, memory: '1Gi' }))]);
    assert.equal((await synced(db, id)).cpu_count, 6);
  });

  it('a row moved to another namespace follows its new namespace', async () => {
    const namespace = ns();
    const other = ns();
    const id = await insertVmRow(db, { vmName: 'mover', namespace });
    await recorded(namespace, 'mover', id);
    await db.query('update public.vms set namespace = $2 where id = $1', [id, other]);
    await ingest(db, [ev('ADDED', vm({ namespace: other, name: 'mover', cores: 7, memory: '1Gi' }))]);
    assert.equal((await synced(db, id)).cpu_count, 7);
  });

  it('a hard-deleted row is forgotten, and a row inserted later under its key is written', async () => {
    const namespace = ns();
    const gone = await insertVmRow(db, { vmName: 'db', namespace });
    const object = await recorded(namespace, 'db', gone);
    await db.query('delete from public.vms where id = $1', [gone]);
    const s = await ingest(db, [ev('MODIFIED', bump(object, { spec: { template: { spec: { domain: { cpu: { cores: 2 } } } } } }))]);
    assert.equal(s.vms_updated, 0);
    const [entry] = await db.query('select 1 from vm_sync.vm_rows where id = $1', [gone]);
    assert.equal(entry, undefined, 'the entry of the deleted row is dropped');
    const next = await insertVmRow(db, { vmName: 'db', namespace });
    await ingest(db, [ev('MODIFIED', bump(object, { spec: { template: { spec: { domain: { cpu: { cores: 3 } } } } } }))]);
    assert.equal((await synced(db, next)).cpu_count, 3);
  });

  it('two live rows under one key are both written; a second one added later, from the next reconcile() on', async () => {
    const namespace = ns();
    const a = await insertVmRow(db, { vmName: 'twin', namespace });
    const b = await insertVmRow(db, { vmName: 'twin', namespace });
    const object = await recorded(namespace, 'twin', a);
    assert.equal((await synced(db, b)).cpu_count, 1, 'both rows present at the first merge are written');
    const c = await insertVmRow(db, { vmName: 'twin', namespace });
    const v2 = bump(object, { spec: { template: { spec: { domain: { cpu: { cores: 2 } } } } } });
    await ingest(db, [ev('MODIFIED', v2)]);
    assert.equal((await synced(db, a)).cpu_count, 2);
    assert.equal((await synced(db, b)).cpu_count, 2);
    await db.query('select vm_sync.reconcile()');
    assert.deepEqual(await synced(db, c), { status: 'POWERED_OFF', cpu_count: 2, memory_mb: 1024, guest_os: null });
    await ingest(db, [ev('MODIFIED', bump(v2, { spec: { template: { spec: { domain: { cpu: { cores: 3 } } } } } }))]);
    for (const id of [a, b, c]) assert.equal((await synced(db, id)).cpu_count, 3);
  });

  it('a VM with no row writes nothing, and a deleted row is never written', async () => {
    const namespace = ns();
    const dead = await insertVmRow(db, { vmName: 'ghost', namespace, deleted: true });
    const s = await ingest(db, [ev('ADDED', vm({ namespace, name: 'ghost', cores: 2, memory: '1Gi' })),
                                ev('ADDED', vm({ namespace, name: 'nobody', cores: 2, memory: '1Gi' }))]);
    assert.equal(s.vms_updated, 0);
    assert.deepEqual(await synced(db, dead), EMPTY);
  });

  it('reconcile() leaves the lookup exactly the live rows of vms', async () => {
    const namespace = ns();
    const stale = await insertVmRow(db, { vmName: 'x', namespace });
    await recorded(namespace, 'x', stale);
    await db.query(`update public.vms set vm_name = 'y' where id = $1`, [stale]);
    await insertVmRow(db, { vmName: 'z', namespace });
    await insertVmRow(db, { vmName: 'w', namespace, deleted: true });
    await db.query('select vm_sync.reconcile()');
    await lookupMatchesVms();
  });
});
