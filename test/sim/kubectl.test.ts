// The real kubectl (/usr/bin/kubectl) must list and watch the simulator like a cluster.
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';

const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';
const run = promisify(execFile);
let sim: Simulator;
let dir: string;
let kubeconfig: string;
const children: ChildProcess[] = [];

const kubectlArgs = (...args: string[]) => ['--kubeconfig', kubeconfig, '--cache-dir', path.join(dir, 'cache'), '--request-timeout', '20s', ...args];

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sim-kubectl-'));
  kubeconfig = path.join(dir, 'kubeconfig');
  sim = await startSimulator();
  await sim.writeKubeconfig(kubeconfig);
  await sim.createVM('default', 'alpha', { running: true, guestAgent: true });
  await sim.createVM('team-b', 'beta', { running: true, cpu: { sockets: 2 } });
  await sim.createVM('default', 'gamma');
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await sim.close();
  await fs.rm(dir, { recursive: true, force: true });
});

test('kubectl get vm lists the VMs of the kubeconfig namespace', async () => {
  const { stdout } = await run(KUBECTL, kubectlArgs('get', 'vm'));
  assert.match(stdout, /^NAME\s/m);
  assert.match(stdout, /^alpha\s/m);
  assert.match(stdout, /^gamma\s/m);
  assert.doesNotMatch(stdout, /beta/);
});

test('kubectl get vmi -A -o json returns every VMI as a List', async () => {
  const { stdout } = await run(KUBECTL, kubectlArgs('get', 'vmi', '-A', '-o', 'json'));
  const list = JSON.parse(stdout);
  assert.equal(list.kind, 'List');
  const names = list.items.map((i: any) => `${i.metadata.namespace}/${i.metadata.name}`).sort();
  assert.deepEqual(names, ['default/alpha', 'team-b/beta']);
  const beta = list.items.find((i: any) => i.metadata.name === 'beta');
  assert.equal(beta.status.currentCPUTopology.sockets, 2);
});

test('kubectl get vmi -w prints a VMI created after it started', async () => {
  const child = spawn(KUBECTL, kubectlArgs('get', 'vmi', '-A', '-w'), { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const seen = (needle: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (needle.test(out)) {
          child.stdout!.off('data', onData);
          resolve();
        }
      };
      const onData = (c: Buffer) => {
        out += c.toString();
        check();
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`kubectl exited ${code} before printing ${needle}: ${out}${err}`)));
      check();
    });
  await seen(/alpha/); // the initial list was printed...
  await sim.until((c) => c.activeWatches.virtualmachineinstances >= 1); // ...and the watch is open
  await sim.createVM('team-c', 'delta', { running: true });
  await seen(/team-c\s+delta/);
  child.kill('SIGTERM');
});

test('kubectl get events lists the Events posted and patched through the core v1 API', async () => {
  const base = `${sim.url}/api/v1/namespaces/default/events`;
  const post = await fetch(base, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      metadata: { name: 'alpha.1' },
      involvedObject: { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', namespace: 'default', name: 'alpha' },
      reason: 'VMDataRejected',
      message: 'field memory was not used',
      type: 'Warning',
      count: 1,
    }),
  });
  assert.equal(post.status, 201);
  const patch = await fetch(`${base}/alpha.1`, { method: 'PATCH', headers: { 'Content-Type': 'application/strategic-merge-patch+json' }, body: JSON.stringify({ count: 3 }) });
  assert.equal(patch.status, 200);
  const table = (await run(KUBECTL, kubectlArgs('get', 'events'))).stdout;
  assert.match(table, /Warning\s+VMDataRejected\s+virtualmachine\/alpha\s+3\s+field memory was not used/);
  const all = JSON.parse((await run(KUBECTL, kubectlArgs('get', 'events', '-A', '-o', 'json'))).stdout);
  assert.deepEqual(all.items.map((e: any) => [e.metadata.namespace, e.metadata.name, e.count]), [['default', 'alpha.1', 3]]);
  const missing = await fetch(`${base}/nope`, { method: 'PATCH', headers: { 'Content-Type': 'application/merge-patch+json' }, body: '{}' });
  assert.equal(missing.status, 404);
});

test('kubectl get vm prints KubeVirt\'s printer columns from the server-side Table', async () => {
  const { stdout } = await run(KUBECTL, kubectlArgs('get', 'vm'));
  assert.match(stdout, /^NAME\s+AGE\s+STATUS\s+READY\s*$/m);
  assert.match(stdout, /^alpha\s+\d+[smhd]\S*\s+Running\s+True\s*$/m);
  assert.match(stdout, /^gamma\s+\d+[smhd]\S*\s+Stopped\s+False\s*$/m);
});

test('kubectl get vmi -A -o wide adds the priority-1 columns and the namespace', async () => {
  const { stdout } = await run(KUBECTL, kubectlArgs('get', 'vmi', '-A', '-o', 'wide'));
  assert.match(stdout, /^NAMESPACE\s+NAME\s+AGE\s+PHASE\s+IP\s+NODENAME\s+READY\s+LIVE-MIGRATABLE\s+PAUSED\s*$/m);
  assert.match(stdout, /^default\s+alpha\s+\S+\s+Running\s+10\.\d+\.\d+\.\d+\s+node0\d\s+True\s+True\s*/m);
  assert.match(stdout, /^team-b\s+beta\s+\S+\s+Running\s/m);
  const narrow = (await run(KUBECTL, kubectlArgs('get', 'vmi', '-A'))).stdout;
  assert.doesNotMatch(narrow, /LIVE-MIGRATABLE/);
});

test('kubectl api-resources reads discovery without an error', async () => {
  const { stdout, stderr } = await run(KUBECTL, kubectlArgs('api-resources'));
  assert.match(stdout, /^virtualmachines\s+vm,vms\s+kubevirt\.io\/v1\s+true\s+VirtualMachine\s*$/m);
  assert.match(stdout, /^virtualmachineinstances\s+vmi,vmis\s+kubevirt\.io\/v1\s+true\s+VirtualMachineInstance\s*$/m);
  assert.match(stdout, /^namespaces\s+ns\s+v1\s+false\s+Namespace\s*$/m);
  assert.doesNotMatch(stderr, /empty response|couldn't get resource list/i);
  const ns = (await run(KUBECTL, kubectlArgs('get', 'ns', '-o', 'name'))).stdout;
  assert.match(ns, /^namespace\/team-b$/m);
});
