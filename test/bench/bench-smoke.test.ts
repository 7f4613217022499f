// Smoke test of the benchmark harness at its quick scale (1,000 VMs): it must run to the end and
// its no-op figures must be zero. No timing is asserted: speed is the benchmark's business, and a
// slow or busy machine must not fail the suite.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_SECTIONS, parseArgs, runBench } from '../../bench/run.js';
import { writeResults } from '../../bench/report.js';

test('bench harness at --vms 1000 completes and replays as a no-op', { timeout: 15 * 60_000 }, async () => {
  // The harness reads DATABASE_URL; the test runner hands its server over as VM_SYNC_TEST_SERVER.
  if (process.env.VM_SYNC_TEST_SERVER) process.env.DATABASE_URL = process.env.VM_SYNC_TEST_SERVER;
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsync-bench-smoke-'));
  try {
    // Small budgets keep the smoke test short; it checks the plumbing, not the speed.
    const opts = parseArgs(['--vms', '1000', '--only', 'ingest,noop', '--baseline-budget', '2', '--ingest-budget', '10', '--quiet', '--out', outDir]);
    const results = await runBench(opts, 'bench-smoke');
    const written = writeResults(results, outDir);
    assert.ok(fs.existsSync(written.latest));

    const scale = results.scales[0]!;
    assert.equal(scale.vms, 1000);
    assert.equal(scale.ingest?.rows.length, 3);
    for (const row of scale.ingest!.rows) {
      assert.ok(row.setBased.events > 0 && row.baseline.events > 0 && row.floor.events > 0);
      if (!row.setBased.capped) assert.equal(row.setBased.filledRows, 1000, `set-based filled every row at batch ${row.batchSize}`);
    }

    const noop = scale.noop!;
    assert.equal(noop.replay.rowsWritten, 0, 'replay wrote no vms row');
    assert.equal(noop.replay.changesAppended, 0, 'replay appended no change');
    assert.equal(noop.replay.notifications, 0, 'replay sent no notification');
    assert.ok(noop.reconcileRowsChanged.every((n) => n === 0), 'reconcile changed nothing');
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
});

test('bench harness: the relist-latency section at 1,000 VMs relists VMIs alone and times changes of both kinds', { timeout: 10 * 60_000 }, async () => {
  if (process.env.VM_SYNC_TEST_SERVER) process.env.DATABASE_URL = process.env.VM_SYNC_TEST_SERVER;
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsync-bench-smoke-'));
  try {
    // With coldstart, as in the default run: the relist is made on the watcher that section resumed.
    // A light load: the counts are checked here, not the figures.
    const opts = parseArgs(['--vms', '1000', '--only', 'coldstart,relistlatency', '--relist-latency-rate', '50', '--quiet', '--out', outDir]);
    const results = await runBench(opts, 'bench-smoke relistlatency');
    const scale = results.scales[0]!;
    assert.equal(scale.errors, undefined, 'the section ran without error');
    assert.equal(scale.coldstart?.relistsOnResume, 0);
    const r = scale.relistLatency!;
    assert.ok(r.vmiListRequests >= 1, 'the VMIs were listed again');
    assert.equal(r.vmListRequests, 0, 'the VMs were not: only the VMI watch was answered 410');
    assert.ok(r.watchesExpired >= 1);
    assert.ok(r.relistSeconds > 0);
    for (const k of [r.otherKind, r.ownKind]) {
      assert.ok(k.inWindow > 0 && k.inWindow <= k.emitted, `${k.change}: changes made during the relist`);
      assert.equal(k.missing, 0, `${k.change}: every change made during the relist was notified`);
      assert.equal(k.received, k.inWindow);
    }
    const targets = results.targets.map((t) => t.what);
    assert.ok(targets.includes("other kind's changes during a full relist") && targets.includes("relisting kind's own changes during it"));
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
});

test('bench: the default sections leave out the slow mass-410 memory run, which --only relist still reaches', () => {
  assert.ok(!DEFAULT_SECTIONS.includes('relist'));
  assert.ok(DEFAULT_SECTIONS.includes('relistlatency'));
  assert.deepEqual([...parseArgs(['--full']).only].sort(), [...DEFAULT_SECTIONS].sort());
  assert.deepEqual([...parseArgs(['--only', 'relist']).only], ['relist']);
});
