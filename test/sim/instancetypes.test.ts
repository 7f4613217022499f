// The simulator's instancetypes behave as KubeVirt 1.6's (src/sim/instancetypes.ts): discovery, the
// u1 sizes, a VM's ControllerRevision and status.instancetypeRef, the size a start applies, a new
// revision on resize; the real kubectl reads them; and a cluster without the instancetype API.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';

const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';
const run = promisify(execFile);
let sim: Simulator;
let bare: Simulator;
let dir: string;
let kubeconfig: string;
const kubectl = (...args: string[]) => run(KUBECTL, ['--kubeconfig', kubeconfig, '--cache-dir', path.join(dir, 'cache'), '--request-timeout', '20s', ...args]);
const getJson = async (s: Simulator, p: string) => {
  const res = await fetch(s.url + p);
  return { status: res.status, body: (await res.json()) as any };
};

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sim-itype-'));
  kubeconfig = path.join(dir, 'kubeconfig');
  sim = await startSimulator();
  bare = await startSimulator({ instancetypeApi: false });
  await sim.writeKubeconfig(kubeconfig);
  await sim.createVM('default', 'big', { instancetype: 'u1.2xlarge' });
  await sim.createVM('default', 'plain');
});

after(async () => {
  await sim.close();
  await bare.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('simulated instancetypes', () => {
  it('discovery: instancetype.kubevirt.io prefers v1beta1 and also serves v1; apps/v1 lists controllerrevisions', async () => {
    const group = await getJson(sim, '/apis/instancetype.kubevirt.io');
    assert.equal(group.body.preferredVersion.version, 'v1beta1');
    assert.deepEqual(group.body.versions.map((v: any) => v.version), ['v1beta1', 'v1']);
    const list = await getJson(sim, '/apis/instancetype.kubevirt.io/v1beta1');
    const cluster = list.body.resources.find((r: any) => r.name === 'virtualmachineclusterinstancetypes');
    assert.equal(cluster.namespaced, false);
    assert.ok(cluster.shortNames.includes('vmcf'));
    const apps = await getJson(sim, '/apis/apps/v1');
    assert.ok(apps.body.resources.some((r: any) => r.name === 'controllerrevisions' && r.namespaced));
    const v1 = await getJson(sim, '/apis/instancetype.kubevirt.io/v1/virtualmachineclusterinstancetypes/u1.medium');
    assert.equal(v1.status, 200);
    assert.deepEqual(v1.body.spec, { cpu: { guest: 1 }, memory: { guest: '4Gi' } });
  });

  it('a VM created with spec.instancetype has no cpu or memory in its template, a revision, and status.instancetypeRef', async () => {
    const vm = sim.get('virtualmachines', 'default', 'big')!;
    const spec = vm.spec as any;
    assert.deepEqual(spec.instancetype, { kind: 'virtualmachineclusterinstancetype', name: 'u1.2xlarge' });
    assert.equal(spec.template.spec.domain.cpu, undefined);
    assert.equal(spec.template.spec.domain.memory, undefined);
    const ref = (vm.status as any).instancetypeRef;
    const it = sim.get('virtualmachineclusterinstancetypes', '', 'u1.2xlarge') as any;
    assert.equal(ref.controllerRevisionRef.name, `big-u1.2xlarge-v1beta1-${it.metadata.uid}-1`);
    const rev = sim.get('controllerrevisions', 'default', ref.controllerRevisionRef.name) as any;
    assert.equal(rev.metadata.labels['instancetype.kubevirt.io/object-kind'], 'VirtualMachineClusterInstancetype');
    assert.equal(rev.metadata.labels['instancetype.kubevirt.io/object-name'], 'u1.2xlarge');
    assert.equal(rev.metadata.ownerReferences[0].uid, (vm.metadata as any).uid);
    assert.equal(rev.data.kind, 'VirtualMachineClusterInstancetype');
    assert.deepEqual(rev.data.spec, { cpu: { guest: 8 }, memory: { guest: '32Gi' } });
    assert.equal(rev.data.metadata.labels, undefined);
  });

  it('starting it applies the instancetype: sockets = guest, cores = threads = 1, memory.guest', async () => {
    await sim.createVM('default', 'runner', { instancetype: 'u1.xlarge' });
    await sim.startVM('default', 'runner');
    const vmi = sim.get('virtualmachineinstances', 'default', 'runner') as any;
    assert.deepEqual({ ...vmi.spec.domain.cpu, model: undefined, maxSockets: undefined }, { sockets: 4, cores: 1, threads: 1, model: undefined, maxSockets: undefined });
    assert.equal(vmi.spec.domain.memory.guest, '16Gi');
    assert.deepEqual(vmi.status.currentCPUTopology, { sockets: 4, cores: 1, threads: 1 });
  });

  it('changing the instancetype of a stopped VM makes a new revision and moves the status to it', async () => {
    await sim.createVM('default', 'resized', { instancetype: 'u1.2xlarge' });
    const before = (sim.get('virtualmachines', 'default', 'resized')!.status as any).instancetypeRef.controllerRevisionRef.name;
    await sim.setInstancetype('default', 'resized', 'u1.medium');
    const vm = sim.get('virtualmachines', 'default', 'resized')!;
    const after = (vm.status as any).instancetypeRef.controllerRevisionRef.name;
    assert.notEqual(after, before);
    assert.match(after, /^resized-u1\.medium-v1beta1-/);
    assert.equal((sim.get('controllerrevisions', 'default', after) as any).data.spec.memory.guest, '4Gi');
  });

  it('kubectl get vmclusterinstancetype lists the u1 sizes', async () => {
    const { stdout } = await kubectl('get', 'vmclusterinstancetype');
    for (const name of ['u1.nano', 'u1.micro', 'u1.small', 'u1.medium', 'u1.2xmedium', 'u1.large', 'u1.xlarge', 'u1.2xlarge', 'u1.4xlarge', 'u1.8xlarge']) {
      assert.match(stdout, new RegExp(`^${name.replace('.', '\\.')}\\s`, 'm'));
    }
  });

  it('kubectl get controllerrevision -l instancetype.kubevirt.io/object-kind lists only KubeVirt\'s revisions', async () => {
    const { stdout } = await kubectl('get', 'controllerrevision', '-l', 'instancetype.kubevirt.io/object-kind', '-o', 'json');
    const names = JSON.parse(stdout).items.map((i: any) => i.metadata.name);
    assert.ok(names.some((n: string) => n.startsWith('big-u1.2xlarge-v1beta1-')), names.join(','));
    const none = await kubectl('get', 'controllerrevision', '-l', '!instancetype.kubevirt.io/object-kind', '-o', 'json');
    assert.deepEqual(JSON.parse(none.stdout).items, []);
  });

  it('without the instancetype API: 404 on the group, VMs still served', async () => {
    assert.equal((await getJson(bare, '/apis/instancetype.kubevirt.io')).status, 404);
    assert.equal((await getJson(bare, '/apis/instancetype.kubevirt.io/v1beta1/virtualmachineclusterinstancetypes')).status, 404);
    const groups = (await getJson(bare, '/apis')).body.groups.map((g: any) => g.name);
    assert.ok(!groups.includes('instancetype.kubevirt.io'));
    assert.equal((await getJson(bare, '/apis/kubevirt.io/v1/virtualmachines')).status, 200);
  });
});
