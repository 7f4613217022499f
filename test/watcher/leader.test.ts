// Two watchers at once: one leads and writes, the other stands by and cannot write (fenced);
// when the leader dies, or loses its session, a leader takes over and resumes without relisting.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm } from '../helpers/vms.js';
import { freePort, startWatcher, stopAllWatchers, tempDir, type WatcherProcess } from '../helpers/watcher.js';

const NS = 'vdc-leader';

interface LeaderRow {
  holder: string | null;
  pid: number | null;
  term: string;
}

async function metricValue(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.split(' ')[1]) : NaN;
}

describe('leader election between two watcher processes', () => {
  let db: TestDatabase;
  let sim: Simulator;
  const procs = new Map<string, { proc: WatcherProcess; port: number }>();

  before(async () => {
    db = await createTestDatabase('watcher_leader');
    sim = await startSimulator({ bookmarkIntervalMs: 200 });
    const kubeconfig = path.join(tempDir('leader'), 'kubeconfig');
    await sim.writeKubeconfig(kubeconfig);
    await sim.createVM(NS, 'l-1', { running: true, cpu: { cores: 1 }, memory: '1Gi' });
    await insertVmRow(db, { vmName: 'l-1', namespace: NS });
    for (const holder of ['alpha', 'beta']) {
      const port = await freePort();
      procs.set(holder, { port, proc: startWatcher({ databaseUrl: db.url, kubeconfig, holder, env: { METRICS_ADDR: `127.0.0.1:${port}` } }) });
    }
  });

  after(async () => {
    await stopAllWatchers();
    await sim?.close();
    await db?.drop();
  });

  const leader = async (): Promise<LeaderRow> => (await db.query<LeaderRow>('select holder, pid, term::text as term from vm_sync.leader'))[0]!;
  /** Sessions of this database holding a current lease: the recorded one, when it is connected. */
  const lockHolders = async (): Promise<number> =>
    (await db.query(`select 1 from vm_sync.sync_status where leader_connected`)).length;

  test('exactly one leads and writes; the standby writes nothing', async () => {
    await expectVm(db, NS, 'l-1', { status: 'POWERED_ON', cpu_count: 1 }, 'synced by the leader');
    const row = await eventually(async () => ((await leader()).holder ? leader() : false), 10_000, 'a leader');
    const standby = row.holder === 'alpha' ? 'beta' : 'alpha';
    assert.equal(await lockHolders(), 1);

    await sim.hotplugCPU(NS, 'l-1', 2);
    await expectVm(db, NS, 'l-1', { cpu_count: 2 }, 'leader keeps writing');

    const s = procs.get(standby)!;
    const l = procs.get(row.holder!)!;
    await eventually(async () => (await metricValue(l.port, 'ssvirt_vm_sync_leader')) === 1, 10_000, 'leader gauge');
    assert.equal(await metricValue(s.port, 'ssvirt_vm_sync_leader'), 0);
    assert.equal(await metricValue(s.port, 'ssvirt_vm_sync_batch_size_count'), 0, 'the standby committed no batch');
    assert.ok(!s.proc.hasLogged('leading'), 'the standby never led');
    // Both are ready: the standby because the database answers, the leader because its watches run.
    // A sample, not a snapshot: each probe runs its own bounded database check, which a loaded
    // machine can miss once.
    await eventually(async () => (await fetch(`http://127.0.0.1:${s.port}/readyz`)).status === 200, 10_000, 'standby ready');
    await eventually(async () => (await fetch(`http://127.0.0.1:${l.port}/readyz`)).status === 200, 10_000, 'leader ready');
  });

  test('a session without the lock cannot write (the fence)', async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await assert.rejects(
        client.query(`select vm_sync.apply_batch('[]'::jsonb, '[{"kind":"VirtualMachine","scope":"","resourceVersion":"1"}]'::jsonb)`),
        (err: { code?: string }) => err.code === 'VS001',
      );
    } finally {
      await client.end();
    }
  });

  test('SIGKILL of the leader: the standby takes over and resumes without relisting', async (t) => {
    const old = await leader();
    const victim = procs.get(old.holder!)!;
    const heir = old.holder === 'alpha' ? 'beta' : 'alpha';
    const lists = sim.counters().lists;
    const killedAt = Date.now();
    await victim.proc.kill('SIGKILL');
    const row = await eventually(async () => {
      const r = await leader();
      return r.holder === heir && BigInt(r.term) > BigInt(old.term) ? r : false;
    }, 15_000, 'takeover');
    t.diagnostic(`takeover after ${Date.now() - killedAt} ms`);
    assert.ok(row);
    await sim.hotplugMemory(NS, 'l-1', '2Gi');
    await expectVm(db, NS, 'l-1', { memory_mb: 2048 }, 'the new leader writes');
    assert.deepEqual(sim.counters().lists, lists, 'resumed from checkpoints: no list');
    assert.equal(await lockHolders(), 1);
  });

  test('a leader whose session is killed stops, campaigns again, and the sync goes on', async () => {
    const old = await leader();
    const proc = [...procs.values()].find((p) => p.proc.alive)!;
    await db.query('select pg_terminate_backend($1)', [old.pid]);
    const row = await eventually(async () => {
      const r = await leader();
      return r.holder && BigInt(r.term) > BigInt(old.term) ? r : false;
    }, 15_000, 'a new term');
    assert.ok(row);
    assert.ok(proc.proc.alive, 'the process survived losing its session');
    await sim.stopVM(NS, 'l-1');
    await expectVm(db, NS, 'l-1', { status: 'POWERED_OFF' }, 'writes resume in the new term');
  });
});
