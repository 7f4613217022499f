// Leadership follows health, with two real watcher processes: one given a kubeconfig for an API
// server that is not there leads first, cannot establish its watches, steps down and stands aside;
// the healthy one takes the lead and the rows converge; the other then stands by, saying for whom.
// No timing assertion: each wait is a hang guard of minutes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm } from '../helpers/vms.js';
import { freePort, startWatcher, stopAllWatchers, tempDir, type WatcherProcess } from '../helpers/watcher.js';

const NS = 'vdc-step-down';
const GUARD_MS = 180_000;
const STEP_DOWN_ENV = { STEP_DOWN_AFTER_MS: '3000', STEP_DOWN_BACKOFF_MS: '2000' };

let db: TestDatabase;
let sim: Simulator;
let broken: WatcherProcess;
let healthy: WatcherProcess;
let brokenPort: number;
let healthyKubeconfig: string;
let deadKubeconfig: string;

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.split(' ')[1]) : NaN;
}

const holder = async (): Promise<string | null> => (await db.query<{ holder: string | null }>('select holder from vm_sync.leader'))[0]?.holder ?? null;

before(async () => {
  db = await createTestDatabase('watcher_step_down');
  sim = await startSimulator({ bookmarkIntervalMs: 500 });
  const dir = tempDir('step-down');
  healthyKubeconfig = path.join(dir, 'healthy.kubeconfig');
  await sim.writeKubeconfig(healthyKubeconfig);
  // The same kubeconfig, but for a port nothing listens on: every list and watch is refused.
  const deadPort = await freePort();
  deadKubeconfig = path.join(dir, 'dead.kubeconfig');
  fs.writeFileSync(deadKubeconfig, fs.readFileSync(healthyKubeconfig, 'utf8').replace(new URL(sim.url).host, `127.0.0.1:${deadPort}`), { mode: 0o600 });
  assert.notEqual(fs.readFileSync(deadKubeconfig, 'utf8'), fs.readFileSync(healthyKubeconfig, 'utf8'));
  await sim.createVM(NS, 'sd-1', { running: true, cpu: { cores: 2 }, memory: '2Gi' });
  await insertVmRow(db, { vmName: 'sd-1', namespace: NS });
});

after(async () => {
  await stopAllWatchers();
  await sim?.close();
  await db?.drop();
});

test('a leader that cannot reach Kubernetes steps down; the healthy standby leads and the rows converge', async () => {
  brokenPort = await freePort();
  broken = startWatcher({ databaseUrl: db.url, kubeconfig: deadKubeconfig, holder: 'broken', env: { ...STEP_DOWN_ENV, METRICS_ADDR: `127.0.0.1:${brokenPort}` } });
  // The broken one leads first: alone, it takes the lease at once.
  await eventually(async () => (await holder()) === 'broken' && broken.hasLogged('leading'), GUARD_MS, 'the broken watcher leads');
  healthy = startWatcher({ databaseUrl: db.url, kubeconfig: healthyKubeconfig, holder: 'healthy', env: STEP_DOWN_ENV });

  await eventually(() => broken.hasLogged('stepping down: a standby that can watch should lead'), GUARD_MS, 'the broken leader steps down');
  await eventually(async () => (await holder()) === 'healthy', GUARD_MS, 'the healthy watcher leads');
  await expectVm(db, NS, 'sd-1', { status: 'POWERED_ON', cpu_count: 2, memory_mb: 2048 }, 'synced by the healthy leader', GUARD_MS);
  await sim.hotplugCPU(NS, 'sd-1', 2);
  await expectVm(db, NS, 'sd-1', { cpu_count: 4 }, 'and kept in step', GUARD_MS);

  const stepDown = broken.logs().find((l) => l.msg === 'stepping down: a standby that can watch should lead')!;
  assert.ok(Array.isArray(stepDown.watches) && (stepDown.watches as string[]).length > 0, 'the log names the watches that are down');
  assert.ok((await metric(brokenPort, 'ssvirt_vm_sync_step_downs_total')) >= 1);
  assert.equal(await metric(brokenPort, 'ssvirt_vm_sync_leader'), 0);
  assert.ok(broken.hasLogged("the leader's watches are not established"));
});

test('the stepped-down watcher then stands by, naming the leader; /healthz stays about the process', async () => {
  await eventually(
    () => broken.logs().some((l) => l.msg === 'standing by; waiting for the leader to go' && l.leader === 'healthy'),
    GUARD_MS,
    'the broken watcher stands by for the healthy one',
  );
  assert.equal(await holder(), 'healthy', 'the healthy one still leads');
  assert.equal((await fetch(`http://127.0.0.1:${brokenPort}/healthz`)).status, 200, 'the process itself is fine: not restarted');
  assert.equal(await metric(brokenPort, 'ssvirt_vm_sync_leader'), 0);
  assert.ok(broken.alive && healthy.alive);
});
