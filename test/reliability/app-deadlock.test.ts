// The SSVirt application updates its own vms rows in its own transactions, several rows at a time
// in any order, beside the real watcher. The merge locks the rows it changes in id order and never
// waits for one (a row the application holds is merged by the next call), so it is never part of a
// deadlock: the watcher records none, the application sees none that the merge caused, and every
// row ends as the contract says. An application transaction left open stalls nothing but its row.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { Rig, sleep } from './harness.js';

let r: Rig;
before(async () => {
  r = new Rig({ label: 'rel_app_deadlock', seed: 15, vms: 24 });
  await r.start();
});
after(async () => {
  await r?.stop();
});

interface AppStats {
  transactions: number;
  deadlocks: number;
  /** Deadlocks whose report names the leader's backend (the merge) as a party. */
  withMerge: number;
  /** Deadlocks whose report names its processes (so withMerge could be seen). */
  named: number;
}

/** One application session: `rounds` transactions, each updating 8 random rows in random order. */
async function appSession(ids: string[], rounds: number, seed: number, leaderPid: () => number | null): Promise<AppStats> {
  const client: pg.PoolClient = await r.db.pool.connect();
  let x = seed;
  const rand = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 4294967296;
  };
  const stats: AppStats = { transactions: 0, deadlocks: 0, withMerge: 0, named: 0 };
  try {
    for (let i = 0; i < rounds; i++) {
      const rows = [...ids].sort(() => rand() - 0.5).slice(0, 8);
      try {
        await client.query('begin');
        for (const id of rows) {
          await client.query(`update public.vms set description = $2, updated_at = now() where id = $1`, [id, `app ${seed}/${i}`]);
          await client.query('select pg_sleep(0.002)');
        }
        await client.query('commit');
        stats.transactions++;
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        const e = err as { code?: string; detail?: string };
        if (e.code !== '40P01') throw err;
        stats.deadlocks++;
        if (/Process \d+ waits for/.test(e.detail ?? '')) stats.named++;
        const pid = leaderPid();
        if (pid !== null && new RegExp(`\\bprocess ${pid}\\b`).test(e.detail ?? '')) stats.withMerge++;
      }
    }
  } finally {
    client.release();
  }
  return stats;
}

test('the application updating rows in random order beside the watcher: no deadlock with the merge, every row converges', { timeout: 600_000 }, async () => {
  const w = await r.startWatcher('app-deadlock');
  await r.awaitConvergence('cold start', 120_000);
  const ids = (await r.rows()).map((row) => row.id);
  let leaderPid: number | null = null;
  const pidLoop = setInterval(() => {
    r.leader().then((l) => (leaderPid = l.pid), () => undefined);
  }, 100);
  r.startChurn(5);
  try {
    const stats = await Promise.all([1, 2, 3].map((s) => appSession(ids, 80, s, () => leaderPid)));
    await r.stopChurn();
    const total = stats.reduce(
      (a, s) => ({ transactions: a.transactions + s.transactions, deadlocks: a.deadlocks + s.deadlocks, withMerge: a.withMerge + s.withMerge, named: a.named + s.named }),
      { transactions: 0, deadlocks: 0, withMerge: 0, named: 0 },
    );
    console.log(`# application: ${JSON.stringify(total)}, churn ops ${r.ops}`);
    assert.equal(total.withMerge, 0, 'no deadlock in the application involved the merge');
    assert.ok(total.transactions > 0);
    // The application's own random order deadlocks between its sessions, and each report names its
    // processes: a deadlock with the merge would have been seen.
    assert.equal(total.named, total.deadlocks);
  } finally {
    clearInterval(pidLoop);
    await r.stopChurn();
  }
  await r.awaitConvergence('after the application stopped', 120_000);
  const logs = w.output.join('');
  assert.doesNotMatch(logs, /deadlock detected|40P01/, 'the watcher recorded no deadlock');
  assert.ok(w.alive);
  const [changes] = await r.db.query(`select count(*)::int as n from vm_sync.changes`);
  console.log(`# merged changes: ${changes.n}`);
});

test('an application transaction left open holds back its own row only', { timeout: 300_000 }, async () => {
  const w = r.live()[0] ?? (await r.startWatcher('app-deadlock-2'));
  await r.awaitConvergence('before', 120_000);
  const [a, b] = r.names;
  const held = `urn:vcloud:vm:${a!.ns}-${a!.name}`;
  const client = await r.db.pool.connect();
  try {
    await client.query('begin');
    await client.query('select 1 from public.vms where id = $1 for update', [held]);
    await r.sim.hotplugCPU(a!.ns, a!.name, 7).catch(() => r.sim.recreateVM(a!.ns, a!.name, { running: false, cpu: { cores: 7 }, memory: '1Gi' }));
    await r.sim.recreateVM(b!.ns, b!.name, { running: false, cpu: { cores: 5 }, memory: '2Gi' });
    // The other VM converges while the row stays locked...
    const deadline = Date.now() + 120_000;
    for (;;) {
      const [row] = await r.db.query(`select cpu_count from public.vms where namespace = $1 and vm_name = $2`, [b!.ns, b!.name]);
      if (row?.cpu_count === 5) break;
      if (Date.now() > deadline) throw new Error(`the other row did not converge while one was locked\n${w.tail()}`);
      await sleep(100);
    }
    const [pending] = await r.db.query(`select count(*)::int as n from vm_sync.merge_pending`);
    assert.ok(pending.n >= 0);
  } finally {
    await client.query('commit');
    client.release();
  }
  // ...and the held one as soon as it is released.
  await r.awaitConvergence('after the lock is released', 120_000);
  assert.ok(w.alive);
});
