// Fault injection: the simulator, a real PostgreSQL and real watcher processes, with changes
// flowing while the fault lasts. Each test ends with zero divergent rows by the convergence checker
// (nothing lost, nothing stale) and with the fence audit clean (no write without the leader lock).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { NIGHTLY, Rig, sleep } from './harness.js';

const rigs: Rig[] = [];
after(async () => {
  for (const r of rigs) await r.stop();
});

async function rig(label: string, seed: number, vms = 30): Promise<Rig> {
  const r = new Rig({ label, seed, vms });
  rigs.push(r);
  await r.start();
  return r;
}

describe('faults', () => {
  test('PostgreSQL unreachable for 10 s in the middle of a stream of changes', { timeout: 120_000 }, async () => {
    const r = await rig('rel_pg_outage', 11);
    const w = await r.startWatcher('pg-outage', { proxied: true });
    await r.awaitConvergence('cold start');
    r.startChurn();
    await sleep(1000);
    const accepted = r.proxies.get(w)!.accepted;
    await r.pgOutage(NIGHTLY ? 30_000 : 10_000);
    await sleep(1000);
    await r.stopChurn();
    const report = await r.awaitConvergence('after the outage', 45_000);
    assert.ok(w.alive, `the watcher survived the outage\n${w.tail()}`);
    assert.ok(r.proxies.get(w)!.accepted > accepted, 'it reconnected');
    const fence = await r.assertFenced();
    assert.ok(report.rowsMatched >= 30 && r.ops > 50, `rows ${report.rowsMatched}, changes ${r.ops}`);
    assert.ok(fence.writes > 0);
  });

  test('the watcher killed with SIGKILL mid-batch, then restarted (batch aborted, and batch committed after the kill)', { timeout: 120_000 }, async () => {
    const r = await rig('rel_sigkill', 12);
    let w = await r.startWatcher('sigkill');
    await r.awaitConvergence('cold start');
    for (const commitOrphan of [false, true]) {
      r.startChurn();
      await sleep(500);
      await r.stopChurn();
      const dead = await r.killMidBatch(commitOrphan);
      assert.equal(dead.alive, false);
      // Changes while no watcher runs are caught up from the saved resourceVersions.
      for (let i = 0; i < 20; i++) await r.churnOnce();
      w = r.restartWatcher(dead);
      r.startChurn();
      await sleep(800);
      await r.stopChurn();
      await r.awaitConvergence(commitOrphan ? 'after the orphaned batch committed' : 'after the aborted batch');
    }
    assert.ok(w.alive);
    await r.assertFenced();
  });

  test('watch streams dropped, stalled, 410 (event and HTTP), compacted, 500s and slow for a while, API server unreachable', { timeout: 240_000 }, async () => {
    const r = await rig('rel_api', 13);
    const w = await r.startWatcher('api-faults');
    await r.awaitConvergence('cold start');
    const offlineMs = NIGHTLY ? 30_000 : 5_000;
    const faults: [string, number][] = [
      ['drop-streams', 0],
      ['drop-streams-graceful', 0],
      ['stall-streams', 2500],
      ['stall-all', 3000],
      ['410-event', 0],
      ['410-http', 0],
      ['compact', 0],
      ['http-500', 3000],
      ['http-503-lists', 2000],
      ['slow', 2000],
      ['api-offline', offlineMs],
    ];
    for (const [kind, ms] of faults) {
      r.startChurn();
      await sleep(300);
      await r.apiFault(kind, ms);
      await sleep(300);
      await r.stopChurn();
      await r.awaitConvergence(`after ${kind}`, 45_000);
      assert.ok(w.alive, `watcher alive after ${kind}\n${w.tail()}`);
    }
    await r.assertFenced();
    const [relists] = await r.db.query(`select sum(relists)::int as n from vm_sync.watch_state`);
    assert.ok(relists.n >= 3, `410s and compaction forced relists (${relists.n})`);
  });

  for (const n of [2, 3]) {
    test(`leader failover with ${n} watchers, repeatedly, while changes flow; never two writers`, { timeout: 180_000 }, async () => {
      const r = await rig(`rel_failover${n}`, 20 + n);
      for (let i = 0; i < n; i++) await r.startWatcher(`w${i}`, { proxied: true });
      await r.awaitConvergence('cold start');
      r.startSampler();
      r.startChurn();
      const rounds = n === 2 ? 4 : 5;
      const startTerm = (await r.leader()).term;
      for (let round = 0; round < rounds; round++) {
        const kind = ['sigkill', 'session', 'partition', 'frozen', 'sigterm'][round % 5]!;
        if (kind === 'sigkill') {
          const dead = await r.killLeader();
          r.restartWatcher(dead);
        } else if (kind === 'session') {
          await r.terminateLeaderSession();
        } else if (kind === 'partition') {
          await r.pgOutage(3000, await r.awaitLeader());
        } else if (kind === 'frozen') {
          await r.frozenLeader();
        } else {
          const leader = await r.awaitLeader();
          await leader.kill('SIGTERM');
          r.restartWatcher(leader);
        }
        await r.awaitLeader();
        await sleep(700);
      }
      await r.stopChurn();
      await r.awaitConvergence('after the failovers', 45_000);
      const sampled = await r.stopSampler();
      const fence = await r.assertFenced();
      assert.equal(sampled.maxHolders, 1, 'never two sessions holding the leader lock');
      assert.ok(sampled.distinctHolders >= rounds, `the lead moved (${sampled.distinctHolders} holders in ${sampled.samples} samples)`);
      assert.ok((await r.leader()).term - startTerm >= rounds, 'each failover is a new term');
      assert.ok(fence.terms >= 2, `writes under several terms (${fence.terms})`);
      if (n === 2) {
        // The audit is not vacuous: a write outside the fence (ingest from a session without the lock) is caught.
        await r.sim.hotplugCPU(r.names[0]!.ns, r.names[0]!.name, 7).catch(() => undefined);
        await r.db.query('select vm_sync.ingest($1::jsonb)', [JSON.stringify([{ type: 'MODIFIED', object: r.sim.get('virtualmachines', r.names[0]!.ns, r.names[0]!.name) }])]);
        await r.db.query(`update public.vms set cpu_count = coalesce(cpu_count, 0) + 1 where id = (select min(id) from public.vms)`);
        await assert.rejects(r.assertFenced(), /did not hold the leader lock/);
      }
    });
  }
});
