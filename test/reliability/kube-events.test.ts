// Rejects reach the VM's owner where they look: one Warning Event VMDataRejected on the
// VirtualMachine, seen with the real kubectl, whose count rises on repeats instead of new Events;
// an API server that refuses Events slows and stops nothing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../src/lib/log.js';
import { EventRecorder } from '../../src/watcher/k8s-events.js';
import { KubeClient } from '../../src/watcher/kube-client.js';
import { Metrics } from '../../src/watcher/metrics.js';
import { eventually } from '../helpers/eventually.js';
import { tempDir } from '../helpers/watcher.js';
import { Rig } from './harness.js';
import { vm } from './objects.js';

const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';
const run = promisify(execFile);
const NS = 'rel-a';

let r: Rig;
before(async () => {
  r = new Rig({ label: 'rel_kube_events', seed: 5, vms: 4, namespaces: [NS] });
  await r.start();
});
after(async () => {
  await r?.stop();
});

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(KUBECTL, ['--kubeconfig', r.kubeconfig, '--cache-dir', path.join(tempDir('kubectl-ev'), 'cache'), '--request-timeout', '20s', ...args]);
  return stdout;
}

async function rejectedEvents(name: string): Promise<Array<{ count: number; message: string; type: string; involvedObject: { kind: string; name: string } }>> {
  const list = JSON.parse(await kubectl('get', 'events', '-n', NS, '-o', 'json'));
  return list.items.filter((e: any) => e.reason === 'VMDataRejected' && e.involvedObject?.name === name);
}

async function row(name: string): Promise<void> {
  const id = `urn:ev:${NS}/${name}`;
  await r.db.query(`insert into public.vms (id, name, vapp_id, vm_name, namespace) values ($1, $2, 'v', $2, $3)`, [id, name, NS]);
  r.checker.recordInitial([{ id, namespace: NS, vm_name: name, status: null, cpu_count: null, memory_mb: null, guest_os: null }]);
}

test('a VM with an unusable memory quantity gets one VMDataRejected Event whose count rises on repeats', { timeout: 300_000 }, async () => {
  const w = await r.startWatcher('kube-events');
  await r.awaitConvergence('cold start', 120_000);
  await row('bad-mem');
  const secret = 'hunter2-do-not-echo';
  const put = (i: number) =>
    r.sim.put('virtualmachines', { ...vm({ namespace: NS, name: 'bad-mem', memory: 'twelve parsecs', cpu: { cores: 2 }, printableStatus: 'Stopped' }), metadata: { name: 'bad-mem', namespace: NS, uid: 'bad-mem-uid', annotations: { note: `repeat ${i}`, password: secret } } });
  put(0);
  const first = await eventually(async () => {
    const evs = await rejectedEvents('bad-mem');
    return evs.length === 1 ? evs : undefined;
  }, 120_000, 'the first VMDataRejected Event');
  assert.equal(first[0]!.type, 'Warning');
  assert.equal(first[0]!.involvedObject.kind, 'VirtualMachine');
  assert.equal(first[0]!.count, 1);
  assert.match(first[0]!.message, /memory/);
  assert.doesNotMatch(first[0]!.message, new RegExp(secret));
  assert.ok(first[0]!.message.length <= 300, first[0]!.message);
  // Each repeat awaited (the batcher coalesces changes of one object that arrive together).
  const rejects = async () => (await r.db.query(`select count(*)::int as n from vm_sync.rejects where namespace = $1 and name = 'bad-mem'`, [NS]))[0].n as number;
  for (let i = 1; i <= 4; i++) {
    const n = await rejects();
    put(i);
    await eventually(async () => (await rejects()) > n, 60_000, `repeat ${i} rejected`);
  }
  const later = await eventually(async () => {
    const evs = await rejectedEvents('bad-mem');
    return evs.length === 1 && evs[0]!.count >= 5 ? evs : undefined;
  }, 120_000, 'the count to reach 5 on one Event');
  assert.equal(later.length, 1, 'repeats bump the count instead of adding Events');
  const table = await kubectl('get', 'events', '-n', NS);
  assert.match(table, /VMDataRejected/);
  assert.match(table, /virtualmachine\/bad-mem/);
  console.log(`# kubectl get events -n ${NS}:\n${table.split('\n').map((l) => `#   ${l}`).join('\n')}`);
  // The rest of the row still syncs (the contract's other values).
  await r.awaitConvergence('beside the reject', 60_000);
  assert.ok(w.alive);
});

test('an API server that refuses Events stops nothing: the rows still converge', { timeout: 300_000 }, async () => {
  const w = r.live()[0] ?? (await r.startWatcher('kube-events-2'));
  r.sim.coreEvents.failWrites = 500;
  try {
    await row('bad-mem-2');
    r.sim.put('virtualmachines', vm({ namespace: NS, name: 'bad-mem-2', memory: '-5Gi', cpu: { cores: 3 }, printableStatus: 'Running' }));
    for (let i = 0; i < 10; i++) await r.churnOnce();
    await r.awaitConvergence('with Events refused', 120_000);
    assert.ok(w.alive);
    assert.equal((await rejectedEvents('bad-mem-2')).length, 0);
  } finally {
    r.sim.coreEvents.failWrites = null;
  }
});

test('the recorder: bounded writes per object (burst, then one per refill), occurrences folded into the count', async () => {
  const kubeconfig = r.kubeconfig;
  const kube = new KubeClient({ kubeconfig, requestTimeoutMs: 5000 });
  const metrics = new Metrics({ defaultMetrics: false });
  const rec = new EventRecorder({ kube, component: 'test', instance: 'test-1', logger: silentLogger(), metrics, burst: 2, refillMs: 3_600_000 });
  const before = r.sim.coreEvents.counters.creates + r.sim.coreEvents.counters.patches;
  for (let i = 0; i < 6; i++) {
    rec.observe([{ kind: 'VirtualMachine', namespace: NS, name: 'spammy', uid: 'u', field: 'spec.x', reason: `bad ${i}` }]);
    await rec.settled();
  }
  const writes = r.sim.coreEvents.counters.creates + r.sim.coreEvents.counters.patches - before;
  assert.equal(writes, 2, 'two writes (the burst), then throttled');
  const evs = r.sim.coreEvents.list(NS).filter((e) => e.involvedObject?.name === 'spammy');
  assert.equal(evs.length, 1);
  assert.equal(evs[0]!.count, 2);
  // A foreign kind, or an entry without a name, posts nothing.
  rec.observe([{ kind: 'VirtualMachineClusterInstancetype', name: 'x' }, { kind: 'VirtualMachine', namespace: NS }]);
  await rec.settled();
  assert.equal(r.sim.coreEvents.counters.creates + r.sim.coreEvents.counters.patches - before, 2);
  rec.close();
});
