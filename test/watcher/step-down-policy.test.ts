// The step-down rule on its own clock: down from the term's start until every watch is healthy,
// healthy while established or within the grace after the last contact, steps down after afterMs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StepDownPolicy, type WatchHealth } from '../../src/watcher/step-down.js';

const w = (established: boolean, lastContactAt: number, kind = 'VirtualMachine'): WatchHealth => ({ kind, scope: '', established, lastContactAt });

test('a term that never reaches its API server is down from its start and steps down after afterMs', () => {
  const p = new StepDownPolicy(30_000, 1000);
  const never = [w(false, 0), w(false, 0, 'VirtualMachineInstance')];
  assert.equal(p.observe(never, 1000).downMs, 0);
  assert.equal(p.shouldStepDown(p.observe(never, 30_999).downMs), false);
  const { down, downMs } = p.observe(never, 31_000);
  assert.equal(down.length, 2);
  assert.equal(p.shouldStepDown(downMs), true);
});

test('a long cold-start list is not down while its pages keep coming', () => {
  const p = new StepDownPolicy(30_000, 0);
  for (let t = 1000; t <= 120_000; t += 1000) {
    const r = p.observe([w(false, t - 500), w(false, t - 900)], t);
    assert.equal(r.down.length, 0, `at ${t}`);
    assert.equal(p.shouldStepDown(r.downMs), false);
  }
});

test('established watches are healthy; losing one counts from the moment the grace runs out', () => {
  const p = new StepDownPolicy(30_000, 0);
  assert.equal(p.observe([w(true, 100), w(true, 100)], 1000).downMs, 0);
  // The stream drops at 2000; the grace (10 s) covers a routine reconnect.
  assert.equal(p.observe([w(true, 100), w(false, 2000)], 5000).downMs, 0);
  assert.equal(p.observe([w(true, 100), w(false, 2000)], 12_500).downMs, 0);
  assert.equal(p.observe([w(true, 100), w(false, 2000)], 42_499).downMs, 29_999);
  assert.ok(p.shouldStepDown(p.observe([w(true, 100), w(false, 2000)], 42_500).downMs));
  // Back before that: the count starts again.
  assert.equal(p.observe([w(true, 100), w(true, 43_000)], 43_000).downMs, 0);
});

test('afterMs 0 never steps down; the grace scales with afterMs but stays within 0.5 to 10 s', () => {
  const off = new StepDownPolicy(0, 0);
  assert.equal(off.shouldStepDown(off.observe([w(false, 0)], 3_600_000).downMs), false);
  assert.equal(new StepDownPolicy(3000, 0).graceMs, 1500);
  assert.equal(new StepDownPolicy(300_000, 0).graceMs, 10_000);
  assert.equal(new StepDownPolicy(200, 0).graceMs, 500);
});
