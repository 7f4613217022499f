// The simulator speaks the Kubernetes list/watch protocol: discovery, pagination, resourceVersion
// semantics, watch replay, 410 both ways, bookmarks, timeouts and selectors, with plain HTTP.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { RawWatch } from '../helpers/sim-testing.js';

const VMS = '/apis/kubevirt.io/v1/virtualmachines';
const VMIS = '/apis/kubevirt.io/v1/virtualmachineinstances';

async function getJson(sim: Simulator, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(sim.url + path);
  return { status: res.status, body: await res.json() };
}

describe('discovery', () => {
  let sim: Simulator;
  before(async () => (sim = await startSimulator()));
  after(() => sim.close());

  test('serves /version, /api, /apis and the kubevirt.io/v1 resource list', async () => {
    assert.equal((await getJson(sim, '/version')).body.major, '1');
    assert.equal((await getJson(sim, '/api')).body.kind, 'APIVersions');
    const groups = (await getJson(sim, '/apis')).body;
    assert.equal(groups.kind, 'APIGroupList');
    assert.deepEqual(groups.groups[0].preferredVersion, { groupVersion: 'kubevirt.io/v1', version: 'v1' });
    const list = (await getJson(sim, '/apis/kubevirt.io/v1')).body;
    const vm = list.resources.find((r: any) => r.name === 'virtualmachines');
    assert.deepEqual(vm.shortNames, ['vm', 'vms']);
    assert.equal(vm.namespaced, true);
    assert.deepEqual(vm.verbs, ['get', 'list', 'watch']);
    assert.ok(list.resources.some((r: any) => r.name === 'virtualmachineinstances/status'));
  });

  test('unknown paths answer a 404 Status, and so does a missing object', async () => {
    for (const path of ['/openapi/v2', '/openapi/v3', '/apis/foo.io/v1']) {
      const { status, body } = await getJson(sim, path);
      assert.equal(status, 404);
      assert.equal(body.kind, 'Status');
      assert.equal(body.reason, 'NotFound');
    }
    const missing = await getJson(sim, '/apis/kubevirt.io/v1/namespaces/default/virtualmachines/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.message, 'virtualmachines.kubevirt.io "nope" not found');
  });
});

describe('list', () => {
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator();
    sim.seed(1200, { namespaces: ['a', 'b', 'c'], runningRatio: 0.5, labels: { tier: 'gold' } });
  });
  after(() => sim.close());

  test('pages with limit/continue cover every object once, at one resourceVersion', async () => {
    const names = new Set<string>();
    let token = '';
    let pages = 0;
    let rv: string | undefined;
    do {
      const { body } = await getJson(sim, `${VMS}?limit=500${token ? `&continue=${encodeURIComponent(token)}` : ''}`);
      assert.equal(body.kind, 'VirtualMachineList');
      rv ??= body.metadata.resourceVersion;
      assert.equal(body.metadata.resourceVersion, rv);
      for (const item of body.items) {
        assert.equal(item.kind, 'VirtualMachine');
        assert.equal(item.apiVersion, 'kubevirt.io/v1');
        names.add(`${item.metadata.namespace}/${item.metadata.name}`);
      }
      if (pages === 0) assert.equal(body.metadata.remainingItemCount, 700);
      token = body.metadata.continue ?? '';
      pages++;
    } while (token);
    assert.equal(pages, 3);
    assert.equal(names.size, 1200);
    assert.equal((await getJson(sim, VMIS)).body.items.length, 600);
  });

  test('a continued list is a consistent snapshot until compaction, then 410 Expired', async () => {
    const first = (await getJson(sim, `${VMS}?limit=10`)).body;
    const victim = first.items.length; // delete something on a later page
    const all = (await getJson(sim, VMS)).body.items;
    const target = all[victim + 5];
    await sim.deleteVM(target.metadata.namespace, target.metadata.name);
    const second = (await getJson(sim, `${VMS}?limit=10&continue=${encodeURIComponent(first.metadata.continue)}`)).body;
    assert.ok(second.items.some((i: any) => i.metadata.uid === target.metadata.uid), 'deleted object still in its snapshot');
    assert.equal(second.metadata.resourceVersion, first.metadata.resourceVersion);

    sim.compact();
    const expired = await getJson(sim, `${VMS}?limit=10&continue=${encodeURIComponent(second.metadata.continue)}`);
    assert.equal(expired.status, 410);
    assert.equal(expired.body.reason, 'Expired');
    assert.match(expired.body.message, /continue parameter is too old/);
    assert.ok(expired.body.metadata.continue, 'an inconsistent continue token is offered');
    const rest = await getJson(sim, `${VMS}?limit=10&continue=${encodeURIComponent(expired.body.metadata.continue)}`);
    assert.equal(rest.status, 200);
    assert.ok(!rest.body.items.some((i: any) => i.metadata.uid === target.metadata.uid));
    assert.equal(sim.counters().listsExpired, 1);
  });

  test('resourceVersion: Exact snapshots, too large is 504, garbage is 400', async () => {
    const rv = sim.resourceVersion;
    await sim.createVM('a', 'late-comer');
    const exact = (await getJson(sim, `${VMS}?resourceVersion=${rv}&resourceVersionMatch=Exact`)).body;
    assert.equal(exact.metadata.resourceVersion, String(rv));
    assert.ok(!exact.items.some((i: any) => i.metadata.name === 'late-comer'));
    const notOlder = (await getJson(sim, `${VMS}?resourceVersion=${rv}`)).body;
    assert.ok(notOlder.items.some((i: any) => i.metadata.name === 'late-comer'));
    assert.equal((await getJson(sim, `${VMS}?resourceVersion=${sim.resourceVersion + 100}`)).status, 504);
    assert.equal((await getJson(sim, `${VMS}?resourceVersion=abc`)).status, 400);
  });

  test('namespace scope, label and field selectors', async () => {
    const ns = (await getJson(sim, '/apis/kubevirt.io/v1/namespaces/b/virtualmachines')).body.items;
    assert.ok(ns.length > 0 && ns.every((i: any) => i.metadata.namespace === 'b'));
    await sim.createVM('b', 'labelled', { labels: { app: 'web', env: 'prod' } });
    await sim.createVM('b', 'other', { labels: { app: 'db' } });
    const sel = async (q: string) =>
      (await getJson(sim, `${VMS}?labelSelector=${encodeURIComponent(q)}`)).body.items.map((i: any) => i.metadata.name).sort();
    assert.deepEqual(await sel('app=web'), ['labelled']);
    assert.deepEqual(await sel('app==web,env=prod'), ['labelled']);
    assert.deepEqual(await sel('app in (web, db)'), ['labelled', 'other']);
    assert.deepEqual(await sel('app,app notin (web)'), ['other']);
    assert.deepEqual(await sel('app!=web,app'), ['other']);
    assert.deepEqual(await sel('!tier'), ['late-comer', 'labelled', 'other'].sort());
    const byName = (await getJson(sim, `${VMS}?fieldSelector=${encodeURIComponent('metadata.name=other')}`)).body.items;
    assert.deepEqual(byName.map((i: any) => i.metadata.namespace), ['b']);
    const bad = await getJson(sim, `${VMS}?fieldSelector=spec.running%3Dtrue`);
    assert.equal(bad.status, 400);
  });
});

describe('watch', () => {
  let sim: Simulator;
  const open: RawWatch[] = [];
  const watch = async (path: string) => {
    const w = await RawWatch.open(sim.url + path);
    open.push(w);
    return w;
  };
  before(async () => (sim = await startSimulator({ bookmarkIntervalMs: 40 })));
  after(async () => {
    for (const w of open) w.close();
    await sim.close();
  });

  test('from a list resourceVersion: the start sequence in order, with rising resourceVersions', async () => {
    await sim.createVM('default', 'vm1', { cpu: { sockets: 2 }, memory: '4Gi' });
    const rv = (await getJson(sim, VMS)).body.metadata.resourceVersion;
    const vmW = await watch(`${VMS}?watch=true&resourceVersion=${rv}`);
    const vmiW = await watch(`${VMIS}?watch=1&resourceVersion=${rv}`);
    await sim.startVM('default', 'vm1');
    const starting = await vmW.next();
    assert.equal(starting.type, 'MODIFIED');
    assert.equal(starting.object.status.printableStatus, 'Starting');
    const running = await vmW.next();
    assert.equal(running.object.status.printableStatus, 'Running');
    const phases = [];
    for (let i = 0; i < 4; i++) phases.push(await vmiW.next());
    assert.deepEqual(phases.map((e) => `${e.type}:${e.object.status.phase}`), ['ADDED:Pending', 'MODIFIED:Scheduling', 'MODIFIED:Scheduled', 'MODIFIED:Running']);
    const vmi = phases[3]!.object;
    assert.deepEqual(vmi.status.currentCPUTopology, { cores: 1, sockets: 2, threads: 1 });
    assert.equal(vmi.status.memory.guestCurrent, '4Gi');
    assert.deepEqual(vmi.status.guestOSInfo, {});
    assert.equal(vmi.metadata.ownerReferences[0].uid, starting.object.metadata.uid);
    const rvs = [starting, ...phases, running].map((e) => Number(e.object.metadata.resourceVersion));
    assert.deepEqual([...rvs].sort((a, b) => a - b), rvs);
  });

  test('without resourceVersion: synthetic ADDED for current objects, then changes', async () => {
    const w = await watch(`${VMS}?watch=true`);
    const added = await w.next((e) => e.object.metadata.name === 'vm1');
    assert.equal(added.type, 'ADDED');
    await sim.hotplugCPU('default', 'vm1', 3);
    const mod = await w.next();
    assert.equal(mod.type, 'MODIFIED');
    assert.equal(mod.object.spec.template.spec.domain.cpu.sockets, 3);
  });

  test('a compacted resourceVersion: 200 + ERROR 410 by default, HTTP 410 when asked', async () => {
    const old = sim.resourceVersion;
    await sim.connectGuestAgent('default', 'vm1');
    sim.compact();
    const w = await watch(`${VMIS}?watch=true&resourceVersion=${old}`);
    assert.equal(w.status, 200);
    const err = await w.next();
    assert.equal(err.type, 'ERROR');
    assert.equal(err.object.code, 410);
    assert.equal(err.object.reason, 'Expired');
    assert.match(err.object.message, /^too old resource version: \d+ \(\d+\)$/);
    assert.equal(await w.ended, 'end');

    sim.setExpiredMode('http');
    const h = await watch(`${VMIS}?watch=true&resourceVersion=${old}`);
    assert.equal(h.status, 410);
    assert.equal(JSON.parse(h.body).reason, 'Expired');
    sim.setExpiredMode('event');

    const fresh = sim.resourceVersion;
    sim.fail410OnNextWatch('http');
    assert.equal((await watch(`${VMIS}?watch=true&resourceVersion=${fresh}`)).status, 410);
    sim.fail410OnNextWatch('event');
    const forced = await watch(`${VMIS}?watch=true&resourceVersion=${fresh}`);
    assert.equal((await forced.next()).object.code, 410);
    const ok = await watch(`${VMIS}?watch=true&resourceVersion=${fresh}`);
    assert.equal(ok.status, 200);
    assert.ok(sim.counters().watchesExpired >= 4);
  });

  test('bookmarks carry only kind, apiVersion and resourceVersion, and resuming from one loses nothing', async () => {
    const w = await watch(`${VMS}?watch=true&allowWatchBookmarks=true&resourceVersion=${sim.resourceVersion}`);
    const bm = await w.next((e) => e.type === 'BOOKMARK');
    assert.deepEqual(Object.keys(bm.object).sort(), ['apiVersion', 'kind', 'metadata']);
    assert.deepEqual(Object.keys(bm.object.metadata), ['resourceVersion']);
    assert.equal(bm.object.kind, 'VirtualMachine');
    w.close();
    await sim.setPrintableStatus('default', 'vm1', 'Migrating');
    const resumed = await watch(`${VMS}?watch=true&resourceVersion=${bm.object.metadata.resourceVersion}`);
    const e = await resumed.next();
    assert.equal(e.object.status.printableStatus, 'Migrating');
  });

  test('timeoutSeconds ends the stream cleanly', async () => {
    const w = await watch(`${VMS}?watch=true&timeoutSeconds=1&resourceVersion=${sim.resourceVersion}`);
    assert.equal(await w.ended, 'end');
  });

  test('an object leaving a label selector is DELETED for that watcher, and ADDED when it returns', async () => {
    const base = sim.get('virtualmachines', 'default', 'vm1')!;
    const labelled = (labels: Record<string, string>) => ({ ...base, metadata: { ...(base.metadata as object), labels } });
    sim.put('virtualmachines', labelled({ team: 'x' }));
    const w = await watch(`${VMS}?watch=true&labelSelector=team%3Dx&resourceVersion=${sim.resourceVersion}`);
    sim.put('virtualmachines', labelled({ team: 'y' }));
    const gone = await w.next();
    assert.equal(gone.type, 'DELETED');
    assert.equal(gone.object.metadata.labels.team, 'x', 'the previous content');
    assert.equal(gone.object.metadata.resourceVersion, String(sim.resourceVersion), 'at the change revision');
    sim.put('virtualmachines', labelled({ team: 'x' }));
    assert.equal((await w.next()).type, 'ADDED');
  });
});

describe('faults and controls', () => {
  let sim: Simulator;
  const open: RawWatch[] = [];
  const watch = async (path: string) => {
    const w = await RawWatch.open(sim.url + path);
    open.push(w);
    return w;
  };
  before(async () => {
    sim = await startSimulator();
    await sim.createVM('ns1', 'a', { running: true });
  });
  after(async () => {
    for (const w of open) w.close();
    await sim.close();
  });

  test('dropStreams cuts open watches; stall holds events until resume', async () => {
    const w = await watch(`${VMS}?watch=true&resourceVersion=${sim.resourceVersion}`);
    await sim.until((c) => c.activeWatches.virtualmachines === 1);
    assert.equal(sim.dropStreams(), 1);
    assert.equal(await w.ended, 'aborted');

    const s = await watch(`${VMS}?watch=true&resourceVersion=${sim.resourceVersion}`);
    sim.stallStreams();
    const before = sim.counters().eventsSent.virtualmachines;
    await sim.setPrintableStatus('ns1', 'a', 'Paused');
    assert.equal(sim.counters().eventsSent.virtualmachines, before, 'nothing sent while stalled');
    // A watch opened during the stall does not even get its headers.
    let headers = false;
    const pending = RawWatch.open(`${sim.url}${VMS}?watch=true&resourceVersion=${sim.resourceVersion}`).then((x) => {
      headers = true;
      open.push(x);
      return x;
    });
    await sim.until((c) => c.activeWatches.virtualmachines === 2);
    assert.equal(headers, false);
    sim.resume();
    assert.equal((await s.next()).object.status.printableStatus, 'Paused');
    assert.equal((await pending).status, 200);
  });

  test('dropStreams and a forced 410 can aim at one resource, leaving the other kind watching', async () => {
    const vms = await watch(`${VMS}?watch=true&resourceVersion=${sim.resourceVersion}`);
    const vmis = await watch(`${VMIS}?watch=true&resourceVersion=${sim.resourceVersion}`);
    await sim.until((c) => c.activeWatches.virtualmachines >= 1 && c.activeWatches.virtualmachineinstances >= 1);
    sim.fail410OnNextWatch('event', 1, 'virtualmachineinstances');
    assert.equal(sim.dropStreams({ resource: 'virtualmachineinstances' }), 1);
    assert.equal(await vmis.ended, 'aborted');
    // The VM watch opened now is served: the forced 410 waits for a VMI watch.
    const expired = sim.counters().watchesExpired;
    await watch(`${VMS}?watch=true&resourceVersion=${sim.resourceVersion}`);
    assert.equal(sim.counters().watchesExpired, expired);
    const vmisAgain = await watch(`${VMIS}?watch=true&resourceVersion=${sim.resourceVersion}`);
    assert.equal((await vmisAgain.next()).object.code, 410);
    await sim.setPrintableStatus('ns1', 'a', 'Migrating');
    assert.equal((await vms.next()).object.status.printableStatus, 'Migrating', 'the VM watch was not cut');
  });

  test('failRequests answers a Status with the given code, for a count', async () => {
    sim.failRequests({ status: 503, count: 2 });
    assert.equal((await getJson(sim, VMS)).status, 503);
    const second = await getJson(sim, VMS);
    assert.equal(second.status, 503);
    assert.equal(second.body.reason, 'ServiceUnavailable');
    assert.equal((await getJson(sim, VMS)).status, 200);
    sim.failRequests({ status: 500, durationMs: 60_000, only: 'watch' });
    assert.equal((await getJson(sim, VMS)).status, 200);
    assert.equal((await watch(`${VMS}?watch=true`)).status, 500);
    sim.clearFaults();
    assert.equal(sim.counters().injectedFailures, 3);
  });

  test('goOffline refuses connections; goOnline serves again on the same port', async () => {
    const port = sim.port;
    const w = await watch(`${VMS}?watch=true`);
    await sim.goOffline();
    assert.equal(await w.ended, 'aborted');
    await assert.rejects(fetch(sim.url + VMS));
    await sim.goOnline();
    assert.equal(sim.port, port);
    assert.equal((await getJson(sim, VMS)).status, 200);
  });

  test('lifecycle: agent, memory hotplug, stop, delete, recreate with a new uid', async () => {
    await sim.connectGuestAgent('ns1', 'a', { id: 'rhel', name: 'Red Hat Enterprise Linux', prettyName: 'RHEL 9.4', version: '9.4' });
    let vmi = sim.get('virtualmachineinstances', 'ns1', 'a')! as any;
    assert.equal(vmi.status.guestOSInfo.prettyName, 'RHEL 9.4');
    assert.ok(vmi.status.conditions.some((c: any) => c.type === 'AgentConnected' && c.status === 'True'));
    await sim.hotplugMemory('ns1', 'a', '8Gi');
    vmi = sim.get('virtualmachineinstances', 'ns1', 'a');
    assert.equal(vmi.status.memory.guestCurrent, '8Gi');
    await sim.disconnectGuestAgent('ns1', 'a');
    assert.deepEqual((sim.get('virtualmachineinstances', 'ns1', 'a') as any).status.guestOSInfo, {});
    await sim.stopVM('ns1', 'a');
    assert.equal(sim.get('virtualmachineinstances', 'ns1', 'a'), undefined);
    assert.equal((sim.get('virtualmachines', 'ns1', 'a') as any).status.printableStatus, 'Stopped');
    const uid = (sim.get('virtualmachines', 'ns1', 'a') as any).metadata.uid;
    const w = await watch(`${VMS}?watch=true&resourceVersion=${sim.resourceVersion}`);
    await sim.recreateVM('ns1', 'a');
    const seen = [await w.next(), await w.next(), await w.next()].map((e) => `${e.type}:${e.object.status?.printableStatus}`);
    assert.deepEqual(seen, ['MODIFIED:Terminating', 'DELETED:Terminating', 'ADDED:Stopped']);
    assert.notEqual((sim.get('virtualmachines', 'ns1', 'a') as any).metadata.uid, uid);
  });

  test('raw put serves hostile objects as-is; truth() lists what is served', async () => {
    sim.put('virtualmachineinstances', { kind: 'VirtualMachineInstance', metadata: { namespace: 'ns1', name: 'weird' }, status: { memory: { guestCurrent: 12 }, currentCPUTopology: 'lots' } });
    sim.put('virtualmachineinstances', ['not', 'an', 'object'], { key: 'ns1/array' });
    const items = (await getJson(sim, VMIS)).body.items;
    assert.ok(items.some((i: any) => Array.isArray(i)));
    const weird = items.find((i: any) => i.metadata?.name === 'weird');
    assert.equal(weird.status.currentCPUTopology, 'lots');
    const truth = sim.truth();
    assert.equal(truth.vmis.length, items.length);
    assert.ok(sim.remove('virtualmachineinstances', 'ns1', 'array'));
  });

  test('the /sim/v1 control API drives the same controls', async () => {
    const post = (path: string, body: unknown = {}) =>
      fetch(`${sim.url}/sim/v1/${path}`, { method: 'POST', body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: await r.json() }));
    assert.equal((await post('vms/ns2/http-vm', { running: true, cpu: { sockets: 2 } })).status, 200);
    assert.equal((await post('vms/ns2/http-vm/hotplug-cpu', { sockets: 4 })).status, 200);
    const vmi = (await getJson(sim, '/apis/kubevirt.io/v1/namespaces/ns2/virtualmachineinstances/http-vm')).body;
    assert.equal(vmi.status.currentCPUTopology.sockets, 4);
    assert.equal((await post('vms/ns2/missing/start')).status, 404);
    assert.equal((await post('faults/fail-requests', { status: 500, count: 1 })).status, 200);
    assert.equal((await getJson(sim, VMS)).status, 500);
    const truth: any = await fetch(`${sim.url}/sim/v1/truth`).then((r) => r.json());
    assert.ok(truth.vms.some((v: any) => v.metadata.name === 'http-vm'));
  });
});

describe('scale', () => {
  test('20,000 VMs and VMIs list in pages of 500 (the benchmark does 100,000)', async () => {
    const sim = await startSimulator();
    try {
      sim.seed(20_000, { namespaces: ['n1', 'n2', 'n3', 'n4'] });
      for (const path of [VMS, VMIS]) {
        let token = '';
        let count = 0;
        do {
          const res = await fetch(`${sim.url}${path}?limit=500${token ? `&continue=${encodeURIComponent(token)}` : ''}`);
          const body: any = await res.json();
          count += body.items.length;
          token = body.metadata.continue ?? '';
        } while (token);
        assert.equal(count, 20_000);
      }
    } finally {
      await sim.close();
    }
  });
});
