// A batch PostgreSQL refuses for one event in it: bisected, every good event applied, the bad one
// recorded as one reject, the checkpoint saved; the object applies normally once fixed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../src/lib/log.js';
import type { WatchEvent } from '../../src/watcher/events.js';
import { LeaderSession } from '../../src/watcher/leader-session.js';
import { applyQuarantining, isSplittable } from '../../src/watcher/quarantine.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

const NS = 'vdc-q';

function vm(name: string, rv: number, annotations: Record<string, string> = {}, extra: Record<string, unknown> = {}): WatchEvent {
  return {
    type: 'MODIFIED',
    object: {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { namespace: NS, name, uid: `uid-${name}`, resourceVersion: String(rv), annotations },
      spec: { running: false, template: { spec: { domain: { cpu: { cores: 2 }, memory: { guest: '1Gi' } } } }, ...extra },
    },
  };
}

describe('quarantine of an event PostgreSQL refuses', () => {
  let db: TestDatabase;
  let session: LeaderSession;
  const calls: number[] = [];
  const apply = (events: WatchEvent[], checkpoints: { kind: 'VirtualMachine'; scope: string; resourceVersion: string }[]) =>
    applyQuarantining(
      (e, c, r) => {
        calls.push(e.length);
        return session.applyBatch(e, c, true, r);
      },
      events,
      checkpoints,
      { logger: silentLogger() },
    );

  before(async () => {
    db = await createTestDatabase('watcher_quarantine');
    // A value PostgreSQL refuses, as a constraint a DBA might add: any snapshot marked "poison".
    await db.query(`alter table vm_sync.snapshots add constraint no_poison check (object #>> '{metadata,annotations,poison}' is null)`);
    session = await LeaderSession.open(db.url, 'quarantine-test', { statementTimeoutMs: 120_000, lockTimeoutMs: 30_000, idleInTransactionTimeoutMs: 60_000 }, silentLogger());
    assert.ok(await session.acquire('quarantine-test'));
  });
  after(async () => {
    await session?.close({ resign: true, timeoutMs: 2000 });
    await db?.drop();
  });

  test('a poison event in the middle of 500 good ones costs exactly one reject', async () => {
    const events = Array.from({ length: 501 }, (_, i) => (i === 250 ? vm('poison-1', 1000 + i, { poison: 'yes' }) : vm(`good-${i}`, 1000 + i)));
    const summary = await apply(events, [{ kind: 'VirtualMachine', scope: '', resourceVersion: '2000' }]);
    const [staged] = await db.query(`select count(*)::int as n from vm_sync.snapshots where namespace = $1`, [NS]);
    assert.equal(staged.n, 500, 'every good event staged');
    const rejects = await db.query(`select name, field, reason, value from vm_sync.rejects where namespace = $1`, [NS]);
    assert.equal(rejects.length, 1, JSON.stringify(rejects));
    assert.equal(rejects[0].name, 'poison-1');
    assert.equal(rejects[0].field, 'event');
    assert.deepEqual(rejects[0].value, { sqlstate: '23514' });
    assert.match(rejects[0].reason, /quarantined/);
    const [cp] = await db.query(`select resource_version from vm_sync.watch_state where kind = 'VirtualMachine'`);
    assert.equal(cp.resource_version, '2000', 'the position advanced past the poison event');
    assert.equal(summary.rejected, 1);
    assert.ok(Array.isArray(summary.rejected_objects) && (summary.rejected_objects as { name: string }[]).some((o) => o.name === 'poison-1'));
    assert.ok(calls.length <= 2 * Math.ceil(Math.log2(501)) + 2, `bisection calls: ${calls.length}`);
    console.log(`# 501 events, one poison: ${calls.length} calls, 1 reject`);
  });

  test('once fixed, the next event for the quarantined object applies normally', async () => {
    await apply([vm('poison-1', 3000)], [{ kind: 'VirtualMachine', scope: '', resourceVersion: '3000' }]);
    const [row] = await db.query(`select cpu_count, memory_mb from vm_sync.snapshots where namespace = $1 and name = 'poison-1'`, [NS]);
    assert.deepEqual(row, { cpu_count: 2, memory_mb: 1024 });
    const [n] = await db.query(`select count(*)::int as n from vm_sync.rejects where namespace = $1`, [NS]);
    assert.equal(n.n, 1, 'no new reject');
  });

  test('replaying the same quarantined event (a restart from an older position) records no second reject', async () => {
    await apply([vm('poison-2', 4000, { poison: 'again' })], []);
    await apply([vm('poison-2', 4000, { poison: 'again' })], []);
    const rows = await db.query(`select name from vm_sync.rejects where namespace = $1 and name = 'poison-2'`, [NS]);
    assert.equal(rows.length, 1);
  });

  test('an event too deep for JSON.stringify is quarantined too; its neighbours apply', async () => {
    const deep = JSON.parse('['.repeat(20_000) + ']'.repeat(20_000)) as unknown;
    const events = [vm('n-1', 5000), vm('deep-1', 5001, {}, { garbage: deep }), vm('n-2', 5002)];
    await apply(events, []);
    const staged = await db.query(`select name from vm_sync.snapshots where namespace = $1 and name in ('n-1', 'n-2', 'deep-1') order by 1`, [NS]);
    assert.deepEqual(staged.map((r) => r.name), ['n-1', 'n-2']);
    const [r] = await db.query(`select field, value from vm_sync.rejects where namespace = $1 and name = 'deep-1'`, [NS]);
    assert.equal(r.field, 'event');
  });

  test('errors that are not about the content are not split: a missing function ends the write', async () => {
    const err = Object.assign(new Error('function vm_sync.nope() does not exist'), { code: '42883', severity: 'ERROR' });
    assert.equal(isSplittable(err), false);
    assert.equal(isSplittable(Object.assign(new Error('deadlock'), { code: '40P01' })), false);
    assert.equal(isSplittable(Object.assign(new Error('x'), { code: '22P02' })), true);
    assert.equal(isSplittable(Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' })), true);
    assert.equal(isSplittable(new RangeError('Invalid string length')), true);
  });
});
