// One bad object costs that object only, end to end, with the real watcher under the Deployment's
// heap cap (--max-old-space-size=64): a 6,000-deep object, a 3 MB and a 20 MB one each cost one
// reject; every other row converges; the process never dies; once fixed, the row converges too, and
// neither a restart nor a cold start replays them into a stall. Then a seeded generator of nasty
// objects mixed into normal churn: no good event lost, no stall, each over-limit object one reject.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Rig } from './harness.js';
import { NASTY_KINDS, nasty, type Nasty } from './nasty.js';
import { vm, vmi } from './objects.js';

/** The Deployment's Node options (deploy/base/deployment.yaml). */
const HEAP_CAP = { NODE_OPTIONS: '--max-old-space-size=64 --max-semi-space-size=1' };
const NS = 'rel-a';
const SEED = Number(process.env.HOSTILE_SEED ?? 1515);

let r: Rig;
before(async () => {
  r = new Rig({ label: 'rel_hostile_soak', seed: SEED, vms: 12, namespaces: [NS, 'rel-b'] });
  await r.start();
});
after(async () => {
  await r?.stop();
});

async function row(name: string): Promise<void> {
  const id = `urn:hs:${NS}/${name}`;
  await r.db.query(`insert into public.vms (id, name, vapp_id, vm_name, namespace) values ($1, $2, 'v', $2, $3)`, [id, name, NS]);
  r.checker.recordInitial([{ id, namespace: NS, vm_name: name, status: null, cpu_count: null, memory_mb: null, guest_os: null }]);
}

async function objectRejects(name: string, ns = NS): Promise<{ field: string; value: unknown }[]> {
  return r.db.query(`select field, value from vm_sync.rejects where namespace = $1 and name = $2 and field in ('object', 'event') order by id`, [ns, name]);
}

function deepArray(depth: number): unknown {
  let v: unknown = [];
  for (let i = 1; i < depth; i++) v = [v];
  return v;
}

const bad = {
  deep: () => {
    const o = vm({ namespace: NS, name: 'deep-6000', cpu: { cores: 3 }, memory: '3Gi', printableStatus: 'Stopped', osHint: 'rhel9' });
    o.spec.template.metadata = { deep: deepArray(6000) };
    return o;
  },
  big3: () => {
    const o = vmi({ namespace: NS, name: 'big-3mb', cpu: { sockets: 2, cores: 2 }, memory: '6Gi', guestOS: { prettyName: 'Ubuntu 24.04 LTS' } });
    o.metadata.annotations = { blob: 'y'.repeat(3 * 1024 * 1024) };
    return o;
  },
  huge20: () => {
    const o = vm({ namespace: NS, name: 'huge-20mb', cpu: { cores: 5 }, memory: '5Gi', printableStatus: 'Paused' });
    o.metadata.annotations = { blob: 'z'.repeat(20 * 1024 * 1024), 'vm.kubevirt.io/os': 'windows2k22' };
    return o;
  },
};

test('the 6,000-deep, 3 MB and 20 MB objects cost one reject each, under a 64 MB heap; fixed, they converge', { timeout: 900_000 }, async () => {
  let w = await r.startWatcher('hostile-soak', { env: HEAP_CAP });
  await r.awaitConvergence('cold start', 180_000);
  for (const name of ['deep-6000', 'big-3mb', 'huge-20mb']) await row(name);
  r.sim.put('virtualmachines', vm({ namespace: NS, name: 'big-3mb', cpu: { cores: 1 }, memory: '1Gi', printableStatus: 'Running' }));
  r.startChurn(40);
  r.sim.put('virtualmachines', bad.deep());
  r.sim.put('virtualmachineinstances', bad.big3());
  r.sim.put('virtualmachines', bad.huge20());
  await r.stopChurn();
  // The contract's values come through the cut-down objects; the other rows converge beside them.
  await r.awaitConvergence('with the three bad objects', 300_000);
  for (const name of ['deep-6000', 'big-3mb', 'huge-20mb']) {
    const rejects = await objectRejects(name);
    assert.equal(rejects.length, 1, `${name}: ${JSON.stringify(rejects)}`);
    assert.equal(rejects[0]!.field, 'object');
  }
  assert.ok(w.alive, `the watcher lives\n${w.tail()}`);
  const [snap] = await r.db.query(`select octet_length(object::text) as bytes from vm_sync.snapshots where namespace = $1 and name = 'huge-20mb'`, [NS]);
  assert.ok(snap.bytes < 64 * 1024, `the 20 MB object is staged cut down (${snap.bytes} bytes)`);
  const figures: Record<string, unknown> = {};
  for (const name of ['deep-6000', 'big-3mb', 'huge-20mb']) figures[name] = (await objectRejects(name))[0]!.value;
  console.log(`# rejects: ${JSON.stringify(figures)}`);

  // A restart resumes from the saved positions: nothing is replayed into a stall, no second reject.
  await w.kill('SIGTERM');
  w = await r.startWatcher('hostile-soak-2', { env: HEAP_CAP });
  r.sim.put('virtualmachines', vm({ namespace: NS, name: 'deep-6000', cpu: { cores: 4 }, memory: '3Gi', printableStatus: 'Stopped', osHint: 'rhel9' }));
  await r.awaitConvergence('after a restart, one object fixed', 300_000);

  // A cold start lists the two still-bad objects: one reject each still (the same versions), no stall.
  await w.kill('SIGTERM');
  await r.db.query(`delete from vm_sync.watch_state`);
  w = await r.startWatcher('hostile-soak-3', { env: HEAP_CAP });
  await r.awaitConvergence('cold start with the bad objects listed', 300_000);
  for (const name of ['deep-6000', 'big-3mb', 'huge-20mb']) assert.equal((await objectRejects(name)).length, 1, name);
  assert.ok(w.alive, `the watcher lives after listing them\n${w.tail()}`);

  // Fixed: the rows follow the new objects, without new rejects.
  r.sim.put('virtualmachineinstances', vmi({ namespace: NS, name: 'big-3mb', cpu: { sockets: 1, cores: 2 }, memory: '4Gi', guestOS: { prettyName: 'Ubuntu 24.04 LTS' } }));
  r.sim.put('virtualmachines', vm({ namespace: NS, name: 'huge-20mb', cpu: { cores: 6 }, memory: '6Gi', printableStatus: 'Running' }));
  await r.awaitConvergence('after the objects are fixed', 300_000);
  const fixed = await r.db.query(`select vm_name, cpu_count, memory_mb from public.vms where namespace = $1 and vm_name in ('big-3mb', 'huge-20mb', 'deep-6000') order by 1`, [NS]);
  assert.deepEqual(fixed, [
    { vm_name: 'big-3mb', cpu_count: 2, memory_mb: 4096 },
    { vm_name: 'deep-6000', cpu_count: 4, memory_mb: 3072 },
    { vm_name: 'huge-20mb', cpu_count: 6, memory_mb: 6144 },
  ]);
  for (const name of ['deep-6000', 'big-3mb', 'huge-20mb']) assert.equal((await objectRejects(name)).length, 1, name);
  assert.ok(w.alive);
});

test(`seeded nasty objects (seed ${SEED}) in normal churn: no good event lost, no stall, each over-limit object one reject`, { timeout: 900_000 }, async () => {
  const w = r.live()[0] ?? (await r.startWatcher('hostile-soak-4', { env: HEAP_CAP }));
  await r.awaitConvergence('before', 180_000);
  const [{ term: termBefore }] = await r.db.query(`select term::int as term from vm_sync.leader`);
  const objects: Nasty[] = [];
  const per = Number(process.env.HOSTILE_PER_KIND ?? 3);
  r.startChurn(15);
  try {
    for (let i = 0; i < per; i++) {
      for (const kind of NASTY_KINDS) {
        const n = nasty(kind, 'rel-nasty', `nasty-${kind}-${i}`, r.random);
        r.sim.put(n.resource, n.object, { key: `${n.namespace}/${n.name}` });
        objects.push(n);
        await r.churnOnce();
      }
    }
  } finally {
    await r.stopChurn();
  }
  const report = await r.awaitConvergence('after the nasty objects', 300_000);
  // Every nasty object was staged (none lost), and each cost exactly what it should.
  const staged = new Set((await r.db.query(`select name from vm_sync.snapshots where namespace = 'rel-nasty'`)).map((x) => x.name as string));
  const wrong: string[] = [];
  for (const n of objects) {
    if (!staged.has(n.name)) wrong.push(`${n.name}: not staged`);
    const rejects = await objectRejects(n.name, 'rel-nasty');
    const expected = n.overLimit ? 1 : 0;
    if (rejects.length !== expected) wrong.push(`${n.name}: ${rejects.length} rejects, expected ${expected} ${JSON.stringify(rejects)}`);
  }
  assert.deepEqual(wrong, []);
  const [{ term: termAfter }] = await r.db.query(`select term::int as term from vm_sync.leader`);
  assert.equal(termAfter, termBefore, 'no term ended: the sync never stalled');
  assert.ok(w.alive);
  assert.doesNotMatch(w.output.join(''), /writing stops|heap out of memory/);
  console.log(`# nasty objects: ${objects.length} (${objects.filter((n) => n.overLimit).length} over a limit), churn ops ${r.ops}, rows checked ${report.rowsChecked}`);
});
