// Paginated lists on a busy API server (list-pager.ts against the simulator, no database): a page
// that fails is asked again with the same continue token, a 429's Retry-After is read, a cut
// connection resumes, an expired continue token restarts, and the memory budget is respected.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { silentLogger } from '../../src/lib/log.js';
import { KubeApiError, KubeClient, retryAfterMs, statusError } from '../../src/watcher/kube-client.js';
import { ListGate, listAll, retryDelay, type ListPagerDeps } from '../../src/watcher/list-pager.js';
import { MemoryBudget } from '../../src/watcher/memory-budget.js';
import type { WatchEvent } from '../../src/watcher/events.js';
import { tempDir } from '../helpers/watcher.js';

const NS = 'pager';
const VMS = 400;
const logger = silentLogger();

describe('list pager', () => {
  let sim: Simulator;
  let kube: KubeClient;

  before(async () => {
    sim = await startSimulator();
    const kubeconfig = path.join(tempDir('pager'), 'kubeconfig');
    await sim.writeKubeconfig(kubeconfig);
    kube = new KubeClient({ kubeconfig, requestTimeoutMs: 30_000 });
    sim.seed(VMS, { namespaces: [NS], runningRatio: 0 });
  });

  after(async () => {
    await sim?.close();
  });

  function deps(over: Partial<ListPagerDeps['options']> = {}, budget = new MemoryBudget(64 * 1024 * 1024)) {
    const written: WatchEvent[][] = [];
    const d: ListPagerDeps = {
      kube,
      apply: async (events) => {
        written.push(events);
      },
      budget,
      gate: new ListGate(1),
      // 10 objects a page whatever their size: 400 VMs are 40 pages.
      options: { listPageSize: 10, listPageBytes: 1 << 30, batchMaxEvents: 500, batchMaxBytes: 1 << 30, backoff: { initialMs: 5, maxMs: 20 }, ...over },
      logger,
    };
    return { d, written, names: () => written.flat().map((e) => e.object.metadata!.name!) };
  }

  test('a 500 on page 37 of 40 resumes from page 37: 41 list requests, every VM once', async () => {
    const { d, names } = deps();
    sim.resetCounters();
    sim.failListPage({ page: 37, status: 500, resource: 'virtualmachines' });
    const result = await listAll('VirtualMachine', NS, d, new AbortController().signal, logger);
    assert.equal(sim.counters().lists.virtualmachines, 41);
    assert.equal(sim.counters().injectedFailures, 1);
    assert.equal(result.pages, 40);
    assert.equal(result.pageRetries, 1);
    assert.equal(result.objects, VMS);
    assert.equal(new Set(names()).size, VMS);
    assert.equal(names().length, VMS, 'no page was written twice');
    assert.equal(result.uids.length, VMS);
  });

  test("each page reports the list's totals and the server's remainingItemCount, none on the last page", async () => {
    const { d } = deps();
    const seen: Array<{ objects: number; pages: number; remaining?: number }> = [];
    d.onPage = (p) => seen.push(p);
    // Cluster-wide: the simulator, unlike a real server, gives remainingItemCount only there.
    await listAll('VirtualMachine', '', d, new AbortController().signal, logger);
    assert.equal(seen.length, 40);
    assert.deepEqual(seen[0], { objects: 10, pages: 1, remaining: VMS - 10 });
    assert.deepEqual(seen[38], { objects: 390, pages: 39, remaining: 10 });
    assert.deepEqual(seen[39], { objects: VMS, pages: 40, remaining: undefined });
  });

  test('a 429 with Retry-After on a page and a connection cut in the middle of another resume there', async () => {
    const { d, names } = deps();
    sim.resetCounters();
    sim.failListPage({ page: 3, status: 429, retryAfterSeconds: 1, count: 2 });
    sim.failListPage({ page: 20, mode: 'cut' });
    const result = await listAll('VirtualMachine', NS, d, new AbortController().signal, logger);
    assert.equal(sim.counters().lists.virtualmachines, 43);
    assert.equal(result.pageRetries, 3);
    assert.equal(new Set(names()).size, VMS);
  });

  test('an expired continue token (410) starts the list over; other errors surface', async () => {
    const { d, names } = deps();
    sim.resetCounters();
    sim.failListPage({ page: 5, status: 410 });
    const result = await listAll('VirtualMachine', NS, d, new AbortController().signal, logger);
    assert.equal(sim.counters().lists.virtualmachines, 45, '4 pages, the refused fifth, then 40 from the start');
    assert.equal(new Set(names()).size, VMS);
    assert.equal(result.objects, VMS);
    sim.failListPage({ page: 2, status: 403 });
    await assert.rejects(listAll('VirtualMachine', NS, deps().d, new AbortController().signal, logger), (err: unknown) => err instanceof KubeApiError && err.status === 403);
  });

  test('pages follow the bytes per object, sub-batches respect BATCH_MAX_BYTES, and the budget is given back', async () => {
    const budget = new MemoryBudget(256 * 1024);
    const { d, written } = deps({ listPageSize: 500, listPageBytes: 64 * 1024, batchMaxBytes: 32 * 1024 }, budget);
    sim.resetCounters();
    const result = await listAll('VirtualMachine', NS, d, new AbortController().signal, logger);
    assert.equal(result.objects, VMS);
    assert.ok(result.pages > 2, `pages of ~64 KB, not one page of 400 (${result.pages})`);
    for (const batch of written) {
      const bytes = batch.reduce((n, e) => n + JSON.stringify(e.object).length, 0);
      // managedFields are dropped before sending, so a sub-batch is below what it held in the budget.
      assert.ok(batch.length === 1 || bytes <= 32 * 1024 + 80 * 1024, `a sub-batch of ${bytes} bytes`);
    }
    assert.equal(budget.used, 0);
    assert.ok(budget.peakBytes <= 256 * 1024 + 80 * 1024, `peak ${budget.peakBytes}`);
  });

  test('Retry-After is read from the header (seconds or a date) and from the Status details, and delays honour it', () => {
    assert.equal(retryAfterMs('3'), 3000);
    assert.equal(retryAfterMs(new Date(Date.now() + 5000).toUTCString(), Date.now())! > 3000, true);
    assert.equal(retryAfterMs('soon'), undefined);
    const err = statusError(429, JSON.stringify({ kind: 'Status', code: 429, reason: 'TooManyRequests', message: 'slow down', details: { retryAfterSeconds: 2 } }));
    assert.equal(err.retryAfterMs, 2000);
    assert.equal(statusError(429, '', '4').retryAfterMs, 4000);
    for (let attempt = 0; attempt < 5; attempt++) {
      const d = retryDelay(err, attempt, { initialMs: 10, maxMs: 100 });
      assert.ok(d >= 2000 && d <= 60_000, `delay ${d}`);
    }
    assert.ok(retryDelay(new KubeApiError(429, '', '', 600_000), 0, { initialMs: 10, maxMs: 100 }) <= 60_000, 'capped');
  });

  test('a list held up by its own writes is in contact with the API server (a slow database is no reason to step down)', async () => {
    const { d, written } = deps({ listPageSize: 500, batchMaxEvents: 50 });
    // The gate's clock stands far ahead of the item contacts' Date.now(): it shows only while the list waits on a write.
    const FAR = Date.now() + 1e9;
    d.gate = new ListGate(1, () => FAR);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let writes = 0;
    d.apply = async (events) => {
      if (++writes === 2) await held;
      written.push(events);
    };
    const listing = listAll('VirtualMachine', NS, d, new AbortController().signal, logger);
    let waited = false;
    for (let i = 0; i < 100_000 && !waited; i++) {
      waited = d.gate.lastContactAt === FAR;
      if (!waited) await new Promise((r) => setImmediate(r));
    }
    assert.ok(waited, 'while the held write blocks the list, the gate reports contact');
    release();
    const result = await listing;
    assert.equal(result.objects, VMS);
  });

  test('the gate: time spent waiting on the database is contact, and stops being so when the wait ends', async () => {
    let t = 1_000;
    const gate = new ListGate(1, () => t);
    gate.lastContactAt = 1_000;
    let release!: () => void;
    const wait = gate.waitingOnDatabase(new Promise<void>((resolve) => (release = resolve)));
    t = 60_000;
    assert.equal(gate.lastContactAt, 60_000, 'in contact while waiting');
    release();
    await wait;
    t = 90_000;
    assert.equal(gate.lastContactAt, 60_000, 'the wait ended at 60 s: contact is then, not now');
  });
});
