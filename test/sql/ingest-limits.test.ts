// One vm_sync.ingest call is bounded (issue 16, item 7): more events or bytes than vm_sync.settings
// allows is refused at once with SQLSTATE VS002 and a message saying the limits, before any work;
// nothing is staged, and the next call of a normal size goes through.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadRunConfig, RUN_OPTIONS } from '../../src/lib/config.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { vm } from '../helpers/objects.js';

describe('ingest size limits', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('ingest_limits');
  });
  after(async () => {
    await db?.drop();
  });

  const staged = async (): Promise<number> => (await db.query<{ n: number }>('select count(*)::int as n from vm_sync.snapshots'))[0]!.n;

  test('more events than ingest_max_events is refused with VS002, nothing staged', async () => {
    const [{ value }] = await db.query<{ value: string }>(`select value from vm_sync.settings where name = 'ingest_max_events'`);
    const max = Number(value);
    const events = Array.from({ length: max + 1 }, (_, i) => ({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(i) } } }));
    await assert.rejects(db.query('select vm_sync.ingest($1::jsonb)', [JSON.stringify(events)]), (err: { code?: string; message?: string; hint?: string }) => {
      assert.equal(err.code, 'VS002');
      assert.match(err.message!, new RegExp(`at most ${max} events .* this one has ${max + 1} events`));
      assert.match(err.hint!, /Split the events/);
      return true;
    });
    await assert.rejects(db.query('select vm_sync.stage($1::jsonb)', [JSON.stringify(events)]), { code: 'VS002' });
    assert.equal(await staged(), 0);
  });

  test('more bytes than ingest_max_bytes is refused; a call within the limits then applies', async () => {
    await db.query(`update vm_sync.settings set value = '20000' where name = 'ingest_max_bytes'`);
    try {
      const big = [{ type: 'ADDED', object: vm({ namespace: 'limits', name: 'big', osHint: 'x'.repeat(30_000) }) }];
      await assert.rejects(db.query('select vm_sync.ingest($1::jsonb)', [JSON.stringify(big)]), (err: { code?: string; message?: string }) =>
        err.code === 'VS002' && /at most \d+ events and 20000 bytes/.test(err.message!));
      assert.equal(await staged(), 0);
      const small = [{ type: 'ADDED', object: vm({ namespace: 'limits', name: 'small' }) }];
      const [{ s }] = await db.query('select vm_sync.ingest($1::jsonb) as s', [JSON.stringify(small)]);
      assert.equal(s.staged, 1);
    } finally {
      await db.query(`update vm_sync.settings set value = '67108864' where name = 'ingest_max_bytes'`);
    }
  });

  test("the watcher's largest batch stays far below the default event limit", async () => {
    const [{ value }] = await db.query<{ value: string }>(`select value from vm_sync.settings where name = 'ingest_max_events'`);
    const spec = RUN_OPTIONS.find((o) => o.key === 'batchMaxEvents')!;
    assert.ok(spec.max! * 4 <= Number(value), `BATCH_MAX_EVENTS max ${spec.max} vs ingest_max_events ${value}`);
    assert.throws(() => loadRunConfig([], { DATABASE_URL: 'postgres://x@h/d', BATCH_MAX_EVENTS: String(spec.max! + 1) }), /BATCH_MAX_EVENTS/);
  });
});
