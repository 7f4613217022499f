// A cold start's progress as on-call sees it: the real `status`, run as a LOGIN member of
// vm_sync_reader only, shows the list in progress (objects, pages, the API server's
// remainingItemCount, an estimate) while the API server holds it up, and finished afterwards.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { cleanEnv, runCli, STACK } from '../helpers/cli.js';
import { createLoginRole, dropLoginRoles } from '../helpers/roles.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { startWatcher, stopAllWatchers, tempDir, type WatcherProcess } from '../helpers/watcher.js';

interface ListRow { kind: string; scope: string; reason: string; finishedAt: string | null; objects: number; pages: number; remaining: number | null; etaSeconds: number | null }

const VMS = 100;
const PAGE = 10;
/** The page the API server keeps failing (500, asked again and again) until the test lets it pass. */
const HELD_PAGE = 4;

describe('list progress in status, for the reader role', () => {
  let db: TestDatabase;
  let sim: Simulator;
  let watcher: WatcherProcess;
  let readerUrl: string;

  const status = async (json: boolean): Promise<{ code: number | null; out: string }> => {
    const r = await runCli(['status', ...(json ? ['--json'] : [])], cleanEnv({ DATABASE_URL: readerUrl }));
    assert.doesNotMatch(r.stdout + r.stderr, STACK);
    return { code: r.code, out: r.stdout + r.stderr };
  };
  const vmList = async (): Promise<ListRow | undefined> => {
    const { out } = await status(true);
    const s = JSON.parse(out) as { lists: ListRow[] };
    return s.lists.find((l) => l.kind === 'VirtualMachine');
  };

  before(async () => {
    db = await createTestDatabase('status_progress');
    readerUrl = (await createLoginRole(db, 'vm_sync_reader', 'oncall')).url;
    sim = await startSimulator();
    sim.seed(VMS, { namespaces: ['vdc-progress'], runningRatio: 0 });
    sim.failListPage({ page: HELD_PAGE, resource: 'virtualmachines', status: 500, count: 1_000_000 });
    const kubeconfig = path.join(tempDir('status-progress'), 'kubeconfig');
    await sim.writeKubeconfig(kubeconfig);
    watcher = startWatcher({
      databaseUrl: db.url,
      kubeconfig,
      holder: 'progress',
      // Pages of 10; the held page must not make the leader step down (that would start the list over).
      env: { LIST_PAGE_SIZE: String(PAGE), STEP_DOWN_AFTER_MS: '3600000' },
    });
  });

  after(async () => {
    await stopAllWatchers();
    await sim?.close();
    if (db) await dropLoginRoles(db);
    await db?.drop();
  });

  test('while the API server holds a page: in progress, with objects, pages and remaining', async () => {
    const held = await eventually(async () => {
      const l = await vmList();
      return l && l.pages === HELD_PAGE - 1 ? l : undefined;
    }, 60_000, 'the VM list saved up to the held page');
    assert.equal(held.finishedAt, null, 'not finished');
    assert.equal(held.reason, 'cold_start');
    assert.equal(held.scope, '');
    assert.equal(held.objects, (HELD_PAGE - 1) * PAGE);
    assert.equal(held.remaining, VMS - (HELD_PAGE - 1) * PAGE, "the API server's remainingItemCount");
    assert.equal(typeof held.etaSeconds, 'number', 'an estimate from remainingItemCount and the rate');
    const text = await status(false);
    const row = text.out.split('\n').find((l) => /^\s*VirtualMachine\s/.test(l) && /cold_start/.test(l));
    assert.ok(row, `a VirtualMachine row in the text output:\n${text.out}`);
    assert.match(row, new RegExp(`listing for \\S+\\s+${held.objects}\\s+${held.pages}\\s+\\S+\\s+${held.remaining}\\s+(~\\S+|unknown)\\s*$`), row);
  });

  test('once the page passes: finished, with every object and page', async () => {
    sim.faults.clear();
    const done = await eventually(async () => {
      const l = await vmList();
      return l?.finishedAt ? l : undefined;
    }, 60_000, 'the VM list finished');
    assert.equal(done.objects, VMS);
    assert.equal(done.pages, VMS / PAGE);
    assert.equal(done.remaining, 0);
    assert.equal(done.etaSeconds, null);
    const text = await status(false);
    assert.match(text.out, /VirtualMachine\s+\(cluster\)\s+cold_start\s+done /, text.out);
    assert.ok(watcher.hasLogged('listed'));
  });
});
