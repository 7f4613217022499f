// Keys that must not collide (issue 16, item 5): the batcher coalesces per (kind, namespace, name) on
// a structured key, so objects whose parts hold the old separator stay apart and both converge; a
// name with a NUL (which Kubernetes cannot store, and jsonb cannot hold) is a recorded reject, never
// rewritten into another VM's name.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Batcher } from '../../src/watcher/batcher.js';
import { objectKey, toJsonb, type Checkpoint, type WatchEvent } from '../../src/watcher/events.js';
import { silentLogger } from '../../src/lib/log.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { insertVmRow, synced } from '../helpers/sync.js';

function vm(namespace: string, name: string, sockets: number): WatchEvent {
  return {
    type: 'ADDED',
    object: {
      kind: 'VirtualMachine', apiVersion: 'kubevirt.io/v1',
      metadata: { namespace, name, uid: `uid-${namespace}-${name}`, resourceVersion: '10' },
      spec: { template: { spec: { domain: { cpu: { sockets }, memory: { guest: '1Gi' } } } } },
      status: { printableStatus: 'Stopped' },
    },
  };
}

describe('object keys', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('watcher_keys');
  });
  after(async () => {
    await db?.drop();
  });

  test('(x\\u0001y, z) and (x, y\\u0001z) are two objects: batched apart, both converge', async () => {
    const a = vm('x\u0001y', 'z', 2);
    const b = vm('x', 'y\u0001z', 3);
    assert.notEqual(objectKey(a), objectKey(b));
    const idA = await insertVmRow(db, { namespace: 'x\u0001y', vmName: 'z' });
    const idB = await insertVmRow(db, { namespace: 'x', vmName: 'y\u0001z' });
    const written: WatchEvent[][] = [];
    const batcher = new Batcher({
      maxEvents: 100,
      maxWaitMs: 1,
      backoff: { initialMs: 10, maxMs: 10 },
      write: async (events: WatchEvent[], _checkpoints: Checkpoint[]) => {
        written.push(events);
        return (await db.query('select vm_sync.ingest($1::jsonb) as s', [toJsonb(events)]))[0].s;
      },
      classify: () => 'fatal',
      onFatal: (err) => assert.fail(String(err)),
      logger: silentLogger(),
    });
    await batcher.push(a, null);
    await batcher.push(b, null);
    await batcher.drain();
    batcher.close();
    assert.equal(written.flat().length, 2, 'both events written');
    await eventually(async () => (await synced(db, idA)).cpu_count === 2 && (await synced(db, idB)).cpu_count === 3, 10_000, 'both rows');
  });

  test('a name or namespace with a NUL is a recorded reject, never another VM', async () => {
    // A VM whose name holds what a NUL would be rewritten to: it must not receive the NUL object.
    const other = await insertVmRow(db, { namespace: 'keys', vmName: 'a\uFFFDb', cpu: 1 });
    const events = [vm('keys', 'a\u0000b', 8), vm('k\u0000eys', 'plain', 8)];
    const summary = (await db.query('select vm_sync.ingest($1::jsonb) as s', [toJsonb(events)]))[0].s;
    assert.equal(summary.staged, 0);
    assert.equal(summary.rejected, 2);
    assert.equal((await synced(db, other)).cpu_count, 1, 'the other VM is untouched');
    const rejects = await db.query<{ field: string; reason: string }>(`select field, reason from vm_sync.rejects where field like 'metadata.%' order by id`);
    assert.deepEqual(rejects.map((r) => r.field), ['metadata.name', 'metadata.namespace']);
    assert.match(rejects[0]!.reason, /NUL/);
  });
});
