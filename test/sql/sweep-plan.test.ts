// The sweep's plan does not depend on fresh statistics (issue 16, item 4): with statistics that say
// a kind is empty (analyzed before a bulk load of 10,000 objects, autovacuum off) its anti-join
// became a nested loop (21 s, and the term was lost). The plan is read with auto_explain, so the
// test checks the shape, not a duration: no nested loop, whatever the estimates.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { vm, vmi } from '../helpers/objects.js';

const N = 10_000;

describe('sweep plan', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('sweep_plan');
  });
  after(async () => {
    await db?.drop();
  });

  test(`a sweep over ${N.toLocaleString('en')} objects after stale statistics is no nested loop, and analyze_if_stale catches up`, { timeout: 600_000 }, async () => {
    await db.query('alter table vm_sync.snapshots set (autovacuum_enabled = false)');
    // Statistics taken while the kind was absent (50 VMs, no VMI): the planner then expects about one
    // VMI row and, left alone, picks a nested-loop anti-join with a join filter (10,000 x 9,999).
    const vms = Array.from({ length: 50 }, (_, i) => ({ type: 'ADDED', object: vm({ namespace: 'plan', name: `vm-${i}` }) }));
    await db.query('select vm_sync.stage($1::jsonb)', [JSON.stringify(vms)]);
    await db.query('analyze vm_sync.snapshots');
    const uids: string[] = [];
    for (let start = 0; start < N; start += 2000) {
      const events = Array.from({ length: 2000 }, (_, i) => {
        const n = start + i;
        uids.push(`uid-${n}`);
        return { type: 'ADDED', object: vmi({ namespace: 'plan', name: `vmi-${n}`, uid: `uid-${n}`, resourceVersion: String(n + 1) }) };
      });
      await db.query('select vm_sync.stage($1::jsonb)', [JSON.stringify(events)]);
    }
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const plans: string[] = [];
    client.on('notice', (n) => plans.push(String(n.message)));
    try {
      await client.query(`load 'auto_explain'`);
      await client.query(`set auto_explain.log_min_duration = 0; set auto_explain.log_nested_statements = on; set auto_explain.log_level = notice; set client_min_messages = notice`);
      // All present but one: the anti-join compares 10,000 staged rows with 9,999 listed uids.
      const [{ s }] = (await client.query('select vm_sync.sweep($1, null, $2::text[], false) as s', ['VirtualMachineInstance', uids.slice(1)])).rows;
      assert.equal(s.deleted, 1);
    } finally {
      await client.end();
    }
    const sweepPlan = plans.find((p) => /Update on snapshots/.test(p) && /uid/.test(p));
    assert.ok(sweepPlan, `the sweep's plan was logged (${plans.length} plans)`);
    assert.doesNotMatch(sweepPlan, /Nested Loop/, sweepPlan);
    // The staging table's statistics are far behind its contents: the next reconcile analyzes it.
    const [{ analyzed }] = await db.query<{ analyzed: boolean }>('select vm_sync.analyze_if_stale() as analyzed');
    assert.equal(analyzed, true);
    const [{ again }] = await db.query<{ again: boolean }>('select vm_sync.analyze_if_stale() as again');
    assert.equal(again, false, 'and not again while they are fresh');
  });
});
