// What a full list saves for `status` (list-progress.ts): saving never holds the list up or breaks
// it, the newest state wins over a backlog, the end is saved last, and a failed list never reads
// as done.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { silentLogger } from '../../src/lib/log.js';
import { ListProgress, type ListProgressRow } from '../../src/watcher/list-progress.js';

/** A save the test releases by hand: one in flight at a time is what ListProgress promises. */
function heldSaves(): { saved: ListProgressRow[]; inFlight: () => number; release: () => void; sink: (rows: ListProgressRow[]) => Promise<void> } {
  const saved: ListProgressRow[] = [];
  const pending: Array<() => void> = [];
  return {
    saved,
    inFlight: () => pending.length,
    release: () => pending.shift()?.(),
    sink: (rows) =>
      new Promise<void>((resolve) => {
        saved.push(...rows);
        pending.push(resolve);
      }),
  };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('list progress saved for status', () => {
  test('saves at once when the list starts, one save at a time, and the end last with remaining 0', async () => {
    const h = heldSaves();
    const p = new ListProgress({ kind: 'VirtualMachine', scope: '', reason: 'cold_start', logger: silentLogger(), save: h.sink });
    assert.equal(h.saved.length, 1, 'the start is saved at once');
    assert.deepEqual([h.saved[0]!.objects, h.saved[0]!.pages, h.saved[0]!.done], [0, 0, false]);
    for (let i = 1; i <= 5; i++) p.page(i * 10, i, 100 - i * 10);
    assert.equal(h.inFlight(), 1, 'pages while a save is in flight do not queue saves');
    p.done();
    h.release();
    await settle();
    const last = h.saved[h.saved.length - 1]!;
    assert.deepEqual([last.objects, last.pages, last.remaining, last.done, last.reason], [50, 5, 0, true, 'cold_start']);
    assert.equal(h.saved.length, 2, 'the pages in between were folded into the final save');
    h.release();
  });

  test('a failed list saves nothing more, not even what was pending', async () => {
    const h = heldSaves();
    const p = new ListProgress({ kind: 'VirtualMachine', scope: 'ns', reason: 'gone', logger: silentLogger(), save: h.sink });
    p.page(10, 1, 90);
    p.done(false);
    h.release();
    await settle();
    assert.equal(h.saved.length, 1);
    assert.ok(h.saved.every((r) => !r.done), 'never saved as done');
  });

  test('a save that fails never reaches the list', async () => {
    let calls = 0;
    const p = new ListProgress({
      kind: 'VirtualMachine', scope: '', reason: 'cold_start', logger: silentLogger(),
      save: () => (calls++, Promise.reject(new Error('database session lost'))),
    });
    p.page(10, 1, 90);
    p.done();
    await settle();
    await settle();
    assert.equal(calls, 2, 'the start and the end were tried');
  });

  test('the estimate comes from remainingItemCount and the rate; none without it', () => {
    const p = new ListProgress({ kind: 'VirtualMachine', scope: '', reason: 'cold_start', logger: silentLogger() });
    p.page(10, 1, undefined);
    assert.equal(p.etaSeconds, null);
    p.page(20, 2, 80);
    assert.equal(p.remaining, 80);
    const eta = p.etaSeconds;
    assert.ok(eta === null || eta >= 0, 'null only while no time has passed');
    p.done();
  });
});
