// @kubernetes/client-node 1.4 (what the watcher uses) lists, watches and runs an informer
// against the simulator through a kubeconfig written by writeKubeconfig().
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { startSimulator, type Simulator } from '../../src/sim/index.js';

let sim: Simulator;
let dir: string;
const kc = new k8s.KubeConfig();
const cleanups: (() => void)[] = [];

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sim-client-node-'));
  sim = await startSimulator();
  await sim.writeKubeconfig(path.join(dir, 'kubeconfig'));
  kc.loadFromFile(path.join(dir, 'kubeconfig'));
  sim.seed(30, { namespaces: ['one', 'two'], runningRatio: 0.5 });
});

after(async () => {
  for (const c of cleanups) c();
  await sim.close();
  await fs.rm(dir, { recursive: true, force: true });
});

test('CustomObjectsApi.listClusterCustomObject pages through VMs', async () => {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const seen: string[] = [];
  let token: string | undefined;
  do {
    const page: any = await api.listClusterCustomObject({ group: 'kubevirt.io', version: 'v1', plural: 'virtualmachines', limit: 7, _continue: token });
    for (const item of page.items) seen.push(item.metadata.name);
    token = page.metadata.continue || undefined;
  } while (token);
  assert.equal(seen.length, 30);
  assert.equal(new Set(seen).size, 30);
});

test('Watch streams events from a resourceVersion', async () => {
  const watch = new k8s.Watch(kc);
  const events: { type: string; obj: any }[] = [];
  let notify = () => undefined as void;
  const controller = await watch.watch(
    '/apis/kubevirt.io/v1/virtualmachineinstances',
    { resourceVersion: String(sim.resourceVersion), allowWatchBookmarks: true },
    (type, obj) => {
      events.push({ type, obj });
      notify();
    },
    () => undefined,
  );
  cleanups.push(() => controller.abort());
  await sim.createVM('one', 'watched', { running: true });
  await new Promise<void>((resolve) => {
    notify = () => {
      if (events.some((e) => e.obj.metadata.name === 'watched' && e.obj.status?.phase === 'Running')) resolve();
    };
    notify();
  });
  assert.equal(events[0]!.type, 'ADDED');
  assert.equal(events[0]!.obj.status.phase, 'Pending');
  controller.abort();
});

test('makeInformer lists, then delivers adds, updates and deletes', async () => {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const informer = k8s.makeInformer(
    kc,
    '/apis/kubevirt.io/v1/virtualmachines',
    () => api.listClusterCustomObject({ group: 'kubevirt.io', version: 'v1', plural: 'virtualmachines' }) as any,
  );
  const seen: string[] = [];
  let notify = () => undefined as void;
  const record = (kind: string) => (obj: any) => {
    seen.push(`${kind}:${obj.metadata.namespace}/${obj.metadata.name}`);
    notify();
  };
  informer.on('add', record('add'));
  informer.on('update', record('update'));
  informer.on('delete', record('delete'));
  informer.on('error', () => undefined);
  await informer.start();
  cleanups.push(() => void informer.stop());
  const waitFor = (entry: string) =>
    new Promise<void>((resolve) => {
      notify = () => {
        if (seen.includes(entry)) resolve();
      };
      notify();
    });
  await waitFor('add:one/vm-000001');
  await sim.until((c) => c.activeWatches.virtualmachines >= 1);
  await sim.createVM('two', 'fresh');
  await waitFor('add:two/fresh');
  await sim.startVM('two', 'fresh');
  await waitFor('update:two/fresh');
  await sim.deleteVM('two', 'fresh');
  await waitFor('delete:two/fresh');
  assert.equal(informer.list().filter((o: any) => o.metadata.name === 'fresh').length, 0);
  await informer.stop();
});
