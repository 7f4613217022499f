// Bad input never aborts a batch and never violates a constraint: the unusable value is left out and
// recorded in vm_sync.rejects with its reason; every other value and event still applies.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { CENTOS9, merge, vm, vmi } from '../helpers/objects.js';
import { ev, ingest, insertVmRow, synced } from '../helpers/sync.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase('bad_input');
});
after(async () => {
  await db.drop();
});

async function rejectsIn(namespace: string) {
  return db.query<{ kind: string; name: string; field: string; value: unknown; reason: string }>(
    'select kind, name, field, value, reason from vm_sync.rejects where namespace = $1 order by id',
    [namespace],
  );
}

describe('a batch mixing good and malformed events', () => {
  it('applies every good event and records every bad value with its reason', async () => {
    const namespace = 'vdc-bad-mixed';
    const good = await insertVmRow(db, { vmName: 'good', namespace });
    const partly = await insertVmRow(db, { vmName: 'partly', namespace });
    const events = [
      ev('ADDED', vm({ namespace, name: 'good', cores: 2, memory: '2Gi', printableStatus: 'Stopped' })),
      'not an event',
      { type: 'ADDED' },
      ev('EXPLODED', vm({ namespace, name: 'good' })),
      ev('ADDED', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace } }),
      ev('ADDED', vm({ namespace, name: 'x' }, { apiVersion: 'kubevirt.io/v2' })),
      ev('ADDED', vm({ namespace, name: 'x' }, { metadata: { name: undefined } })),
      ev('ADDED', vm({ namespace: 'ignored', name: 'nameless-ns' }, { metadata: { namespace: '' } })),
      ev('ADDED', vm({ namespace, name: 'y' }, { metadata: { uid: 42 } })),
      // partly: bad VMI status values fall back to the VMI spec; a bad guest OS keeps the row's value.
      ev('ADDED', vmi({ namespace, name: 'partly', cores: 2, memory: '3Gi', guestOSInfo: CENTOS9 }, {
        status: {
          currentCPUTopology: { cores: -4, sockets: 'two', threads: 1.5 },
          memory: { guestCurrent: '3gi' },
          guestOSInfo: { prettyName: 'bad\nname', name: 17, id: 'x'.repeat(300) },
        },
      })),
      ev('BOOKMARK', { kind: 'VirtualMachine', apiVersion: 'kubevirt.io/v1', metadata: { resourceVersion: '999999' } }),
    ];
    const summary = await ingest(db, events);
    assert.equal(summary.events, events.length);
    assert.equal(summary.bookmarks, 1);
    assert.equal(summary.staged, 2);
    assert.deepEqual(await synced(db, good), { status: 'POWERED_OFF', cpu_count: 2, memory_mb: 2048, guest_os: null });
    assert.deepEqual(await synced(db, partly), { status: null, cpu_count: 2, memory_mb: 3072, guest_os: null });

    const all = await db.query<{ field: string; reason: string }>(
      `select field, reason from vm_sync.rejects where namespace = $1 or namespace is null or namespace in ('', 'ignored') order by id`,
      [namespace],
    );
    const got = all.map((r) => `${r.field}: ${r.reason}`);
    for (const expected of [
      'event: not a JSON object',
      'object: missing or not a JSON object',
      'type: unknown event type',
      'kind: unknown kind',
      'apiVersion: unknown kind',
      'metadata.name: missing, empty or longer than 253 characters',
      'metadata.namespace: missing, empty or longer than 253 characters',
      'metadata.uid: not a string',
      'status.currentCPUTopology.sockets: not a number',
      'status.currentCPUTopology.cores: negative count',
      'status.currentCPUTopology.threads: not a whole number',
      'status.memory.guestCurrent: malformed quantity',
      'status.guestOSInfo.prettyName: contains control characters',
      'status.guestOSInfo.name: not a string',
      'status.guestOSInfo.id: longer than 255 characters',
    ]) {
      assert.ok(got.includes(expected), `missing reject "${expected}" in ${JSON.stringify(got, null, 1)}`);
    }
    assert.equal(summary.rejected, got.length);
    // The summary feeds ssvirt_vmi_data_updates_total{namespace, field, result}: rejects by vms column too.
    const rejectedColumns = summary.field_updates.filter((u) => u.result === 'rejected' && u.namespace === namespace);
    assert.deepEqual(rejectedColumns.map((u) => [u.field, u.count]), [['cpu_count', 3], ['event', 5], ['guest_os', 3], ['memory_mb', 1]]);
    assert.ok(summary.field_updates.some((u) => u.result === 'updated' && u.namespace === namespace && u.field === 'cpu_count'));
    const memoryReject = (await rejectsIn(namespace)).find((r) => r.field === 'status.memory.guestCurrent');
    assert.deepEqual({ kind: memoryReject?.kind, name: memoryReject?.name, value: memoryReject?.value }, {
      kind: 'VirtualMachineInstance', name: 'partly', value: '3gi',
    });
  });

  it('values that would break a vms constraint (zero, negative, beyond integer range) are rejected, not written', async () => {
    const namespace = 'vdc-bad-range';
    const id = await insertVmRow(db, { vmName: 'r', namespace, cpu: 2, memory: 1024 });
    const object = vm({ namespace, name: 'r', printableStatus: 'Stopped' }, {
      spec: { template: { spec: { domain: { cpu: { cores: 65536, sockets: 65536, threads: 1 }, memory: { guest: '0' }, resources: { requests: { memory: '-5Gi' }, limits: { memory: '99999Pi' } } } } } },
    });
    const summary = await ingest(db, [ev('ADDED', object)]);
    assert.equal(summary.rejected, 4);
    assert.deepEqual(await synced(db, id), { status: 'POWERED_OFF', cpu_count: 2, memory_mb: 1024, guest_os: null });
    const reasons = (await rejectsIn(namespace)).map((r) => `${r.field}: ${r.reason}`);
    assert.deepEqual(reasons, [
      'spec.template.spec.domain.cpu: CPU count out of integer range',
      'spec.template.spec.domain.memory.guest: zero memory',
      'spec.template.spec.domain.resources.requests.memory: negative memory',
      'spec.template.spec.domain.resources.limits.memory: out of integer range (MiB)',
    ]);
  });

  it('a huge offending value is stored cut to about 1 KiB', async () => {
    const namespace = 'vdc-bad-huge';
    await ingest(db, [ev('ADDED', vmi({ namespace, name: 'h' }, { status: { memory: { guestCurrent: 'G'.repeat(100000) } } }))]);
    const [reject] = await rejectsIn(namespace);
    assert.equal(reject?.reason, 'malformed quantity');
    assert.ok(JSON.stringify(reject?.value).length < 1100);
  });

  it('an argument that is not an array is a clear error, not a silent no-op', async () => {
    await assert.rejects(ingest(db, { type: 'ADDED' } as unknown as unknown[]), /events must be a JSON array of watch events/);
  });

  it('an empty batch is a no-op with a summary', async () => {
    const summary = await ingest(db, []);
    assert.deepEqual({ events: summary.events, staged: summary.staged, vms_updated: summary.vms_updated }, { events: 0, staged: 0, vms_updated: 0 });
  });

  it('managedFields are not stored in the staged object', async () => {
    const namespace = 'vdc-bad-mf';
    await ingest(db, [ev('ADDED', merge(vm({ namespace, name: 'mf' }), {}))]);
    const rows = await db.query(`select object -> 'metadata' ? 'managedFields' as has from vm_sync.snapshots where namespace = $1`, [namespace]);
    assert.equal(rows[0].has, false);
  });
});
