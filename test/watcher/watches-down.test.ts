// A leader that cannot establish its watches (its API server is not there), with stepping down
// turned off: the problem is visible everywhere an operator looks. `status` names it, the metrics
// show it, /readyz says why it is not ready, and /healthz stays about the process.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { readStatus } from '../../src/cli/status.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { freePort, startWatcher, stopAllWatchers, tempDir, type WatcherProcess } from '../helpers/watcher.js';

const GUARD_MS = 180_000;
let db: TestDatabase;
let proc: WatcherProcess;
let port: number;

async function metrics(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

before(async () => {
  db = await createTestDatabase('watcher_watches_down');
  const deadPort = await freePort();
  const kubeconfig = path.join(tempDir('watches-down'), 'kubeconfig');
  fs.writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:${deadPort}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]\ncurrent-context: x\n`,
  );
  port = await freePort();
  proc = startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'blind', env: { STEP_DOWN_AFTER_MS: '0', METRICS_ADDR: `127.0.0.1:${port}` } });
});

after(async () => {
  await stopAllWatchers();
  await db?.drop();
});

test("status reports that the leader's watches are not established", async () => {
  const status = await eventually(async () => {
    const s = await readStatus(db.url);
    return s.leader.watchesDown ? s : false;
  }, GUARD_MS, 'the leader reports its watches down');
  assert.equal(status.leader.holder, 'blind');
  assert.ok(status.leader.lockHeld);
  assert.deepEqual([...status.leader.watchesDown!.watches].sort(), ['VirtualMachine/*', 'VirtualMachineInstance/*']);
  assert.ok(status.problems.some((p) => p.startsWith("the leader's watches are not established: ")), JSON.stringify(status.problems));
});

test('the metrics, /readyz and /healthz say the same', async () => {
  const text = await metrics();
  assert.match(text, /^ssvirt_vm_sync_leader 1$/m);
  assert.match(text, /^ssvirt_vm_sync_watch_established\{kind="VirtualMachine",scope="\*"\} 0$/m);
  const down = Number(/^ssvirt_vm_sync_leader_watches_down_seconds (\S+)$/m.exec(text)?.[1]);
  assert.ok(down > 0, `watches down for ${down} s`);
  assert.match(text, /^ssvirt_vm_sync_step_downs_total 0$/m, 'stepping down is off');
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  assert.equal(ready.status, 503);
  assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  assert.ok(proc.hasLogged("the leader's watches are not established"));
});
