// Watch streams degraded between the API server and the real watcher (issue 16, item 1): a proxy that
// cuts every watch response after 300 KB, and one that trickles them at 50 B/s. Each stream resumes
// from the last event it handled, so the cut one still converges; the trickle is noticed and restarted.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kubeconfigYaml, startSimulator, type Simulator } from '../../src/sim/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { StreamProxy } from '../helpers/stream-proxy.js';
import { insertVmRow } from '../helpers/sync.js';
import { expectVm } from '../helpers/vms.js';
import { startWatcher, stopAllWatchers, tempDir, type WatcherProcess } from '../helpers/watcher.js';

const NS = 'vdc-streams';
const VMS = 40;
const names = Array.from({ length: VMS }, (_, i) => `s-${String(i).padStart(2, '0')}`);

describe('watch streams cut or trickling between the API server and the watcher', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let proxy: StreamProxy;
  let watcher: WatcherProcess;

  before(async () => {
    db = await createTestDatabase('watcher_streams');
    sim = await startSimulator({ bookmarkIntervalMs: 200 });
    const target = new URL(sim.url);
    proxy = new StreamProxy(target.hostname, Number(target.port));
    await proxy.start();
    const kubeconfig = path.join(tempDir('streams'), 'kubeconfig');
    await fs.writeFile(kubeconfig, kubeconfigYaml(proxy.url), { mode: 0o600 });
    for (const name of names) {
      await sim.createVM(NS, name, { running: true, cpu: { sockets: 1 }, memory: '1Gi' });
      await insertVmRow(db, { vmName: name, namespace: NS });
    }
    watcher = startWatcher({ databaseUrl: db.url, kubeconfig, holder: 'streams' });
    await expectVm(db, NS, names[VMS - 1]!, { status: 'POWERED_ON', cpu_count: 1 }, 'cold start', 60_000);
  });

  after(async () => {
    await stopAllWatchers();
    await proxy?.close();
    await sim?.close();
    await db?.drop();
  });

  test('a watch cut every 300 KB still converges: each stream resumes from the last event it handled', { timeout: 240_000 }, async () => {
    proxy.cutEvery(300_000);
    const cutsBefore = proxy.cuts;
    // A burst well over 300 KB: every stream that carries it is cut before its end.
    for (let round = 2; round <= 9; round++) {
      for (const name of names) await sim.hotplugCPU(NS, name, round);
    }
    for (const name of names) await expectVm(db, NS, name, { cpu_count: 9 }, `${name} after the burst`, 120_000);
    assert.ok(proxy.cuts > cutsBefore, `streams were cut (${proxy.cuts - cutsBefore} cuts)`);
    proxy.cutEvery(null);
    assert.ok(watcher.alive, watcher.tail());
  });

  test('a watch trickling at 50 B/s is restarted, and the sync goes on once it is gone', { timeout: 120_000 }, async () => {
    proxy.trickle(50);
    await sim.hotplugMemory(NS, names[0]!, '3Gi');
    await eventually(() => watcher.hasLogged('watch stream trickling: bytes but no event; restarting it'), 60_000, 'the trickle noticed');
    proxy.trickle(null);
    await expectVm(db, NS, names[0]!, { memory_mb: 3072 }, 'change after the trickle', 60_000);
  });
});
