// The batcher alone: coalescing, flush triggers, bounded memory under a slow database, retries,
// and the NUL/managedFields hygiene of what it sends.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Batcher, type BatcherOptions, type Clock } from '../../src/watcher/batcher.js';
import { silentLogger } from '../../src/lib/log.js';
import { prepareObject, toJsonb, type Checkpoint, type WatchEvent } from '../../src/watcher/events.js';
import { eventually } from '../helpers/eventually.js';

interface Call {
  events: WatchEvent[];
  checkpoints: Checkpoint[];
  release: (err?: unknown) => void;
}

/** A writer whose calls complete only when the test releases them. */
function controlledWriter(): { calls: Call[]; write: BatcherOptions['write'] } {
  const calls: Call[] = [];
  return {
    calls,
    write: (events, checkpoints) =>
      new Promise((resolve, reject) => {
        calls.push({ events, checkpoints, release: (err) => (err ? reject(err) : resolve({ events: events.length })) });
      }),
  };
}

function vm(name: string, rv: number, type: WatchEvent['type'] = 'MODIFIED', ns = 'ns'): WatchEvent {
  return { type, object: { kind: 'VirtualMachine', apiVersion: 'kubevirt.io/v1', metadata: { namespace: ns, name, uid: `uid-${name}`, resourceVersion: String(rv) } } };
}
/** A clock that moves only when the test says so: timers fire inside advance(), never on their own. */
function manualClock(): Clock & { advance(ms: number): void } {
  let now = 1_000_000;
  let nextId = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout: (id) => void timers.delete(id as number),
    advance(ms) {
      now += ms;
      for (const [id, t] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at > now || !timers.has(id)) continue;
        timers.delete(id);
        t.fn();
      }
    },
  };
}

const cp = (rv: number): Checkpoint => ({ kind: 'VirtualMachine', scope: '', resourceVersion: String(rv) });

function batcher(write: BatcherOptions['write'], over: Partial<BatcherOptions> = {}): Batcher {
  return new Batcher({
    maxEvents: 3,
    maxWaitMs: 20,
    backoff: { initialMs: 1, maxMs: 5 },
    write,
    classify: () => 'retry',
    onFatal: () => undefined,
    logger: silentLogger(),
    ...over,
  });
}

describe('batcher', () => {
  test('coalesces per object (last wins) and sends the last checkpoint per stream', async () => {
    const w = controlledWriter();
    const clock = manualClock();
    const b = batcher(w.write, { maxEvents: 100, maxWaitMs: 20, clock });
    await b.push(vm('a', 1, 'ADDED'), cp(1));
    await b.push(vm('b', 2), cp(2));
    clock.advance(19);
    await b.push(vm('a', 3), cp(3));
    await b.push(vm('a', 4, 'DELETED'), cp(4));
    await b.push(vm('a', 4, 'DELETED', 'other'), cp(5));
    assert.equal(w.calls.length, 0, 'nothing written before maxWaitMs, however slow the machine');
    clock.advance(1);
    assert.equal(w.calls.length, 1, 'written once maxWaitMs has passed since the first event');
    const [call] = w.calls;
    assert.deepEqual(
      call!.events.map((e) => `${e.object.metadata!.namespace}/${e.object.metadata!.name}@${e.object.metadata!.resourceVersion}:${e.type}`),
      ['ns/a@4:DELETED', 'ns/b@2:MODIFIED', 'other/a@4:DELETED'],
    );
    assert.deepEqual(call!.checkpoints, [cp(5)]);
    call!.release();
    await b.drain();
    b.close();
  });

  test('flushes at maxEvents without waiting for the timer', async () => {
    const w = controlledWriter();
    const b = batcher(w.write, { maxEvents: 2, maxWaitMs: 60_000 });
    await b.push(vm('a', 1), cp(1));
    assert.equal(w.calls.length, 0);
    await b.push(vm('b', 2), cp(2));
    assert.equal(w.calls.length, 1);
    w.calls[0]!.release();
    await b.drain();
    b.close();
  });

  test('backpressure: while a batch is in flight, a full next batch makes push() wait', async () => {
    const w = controlledWriter();
    const b = batcher(w.write, { maxEvents: 2, maxWaitMs: 60_000 });
    await b.push(vm('a', 1), null);
    await b.push(vm('b', 2), null); // full: flushed, now in flight
    await b.push(vm('c', 3), null);
    let resolved = false;
    const blocked = b.push(vm('d', 4), null).then(() => (resolved = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(resolved, false, 'push waits while the database is busy');
    assert.equal(b.pendingSize, 2, 'memory is bounded: nothing more is buffered');
    w.calls[0]!.release();
    await blocked;
    assert.equal(resolved, true);
    // The waiting batch went out as soon as the first committed.
    await eventually(() => w.calls.length === 2, 2000, 'second batch');
    w.calls[1]!.release();
    await b.drain();
    b.close();
  });

  test('a failed batch is retried, and its checkpoint is sent only with it', async () => {
    const w = controlledWriter();
    const b = batcher(w.write, { maxEvents: 1 });
    await b.push(vm('a', 1), cp(1));
    w.calls[0]!.release(Object.assign(new Error('deadlock detected'), { code: '40P01' }));
    await eventually(() => w.calls.length === 2, 2000, 'retry');
    assert.deepEqual(w.calls[1]!.events, w.calls[0]!.events);
    assert.deepEqual(w.calls[1]!.checkpoints, [cp(1)]);
    w.calls[1]!.release();
    await b.drain();
    b.close();
  });

  test('a fatal error stops writing: onFatal once, pushes rejected, nothing retried', async () => {
    const w = controlledWriter();
    const fatal: unknown[] = [];
    const b = batcher(w.write, { maxEvents: 1, classify: () => 'fatal', onFatal: (e) => fatal.push(e) });
    await b.push(vm('a', 1), cp(1));
    const notLeader = Object.assign(new Error('not leader'), { code: 'VS001' });
    w.calls[0]!.release(notLeader);
    await eventually(() => fatal.length === 1, 2000, 'onFatal');
    await assert.rejects(b.push(vm('b', 2), cp(2)), /not leader/);
    await assert.rejects(b.drain(), /not leader/);
    assert.equal(w.calls.length, 1);
    b.close();
  });

  test('a bookmark alone is saved through an empty batch', async () => {
    const w = controlledWriter();
    const b = batcher(w.write);
    b.checkpoint(cp(9));
    await eventually(() => w.calls.length === 1, 2000, 'checkpoint flush');
    assert.deepEqual(w.calls[0]!.events, []);
    assert.deepEqual(w.calls[0]!.checkpoints, [cp(9)]);
    w.calls[0]!.release();
    await b.drain();
    b.close();
  });

  test('close abandons a retrying batch and rejects waiting pushes', async () => {
    const w = controlledWriter();
    const b = batcher(w.write, { maxEvents: 1, backoff: { initialMs: 60_000, maxMs: 60_000 } });
    await b.push(vm('a', 1), null);
    const waiting = b.push(vm('b', 2), null);
    w.calls[0]!.release(Object.assign(new Error('serialization'), { code: '40001' }));
    await new Promise((r) => setTimeout(r, 10));
    b.close();
    await assert.rejects(waiting, /closed/);
    await b.settled();
  });
});

describe('what the watcher sends', () => {
  test('NUL characters become U+FFFD; a literal backslash-u0000 text is kept', () => {
    const value = { a: 'x\u0000y', b: '\\u0000', c: '\\\u0000', [`k\u0000`]: 1 };
    const parsed = JSON.parse(toJsonb(value)) as Record<string, string>;
    assert.equal(parsed.a, 'x\ufffdy');
    assert.equal(parsed.b, '\\u0000');
    assert.equal(parsed.c, '\\\ufffd');
    assert.ok('k\ufffd' in parsed);
    assert.ok(!toJsonb(value).match(/(?<!\\)(\\\\)*\\u0000/));
  });

  test('lone UTF-16 surrogates become U+FFFD; proper pairs and literal backslash-u text are kept', () => {
    const value = { high: 'a\ud800b', low: '\udc00', pair: '\ud83d\ude00', text: '\\ud800', [`k\udbff`]: 1 };
    const parsed = JSON.parse(toJsonb(value)) as Record<string, string>;
    assert.equal(parsed.high, 'a\ufffdb');
    assert.equal(parsed.low, '\ufffd');
    assert.equal(parsed.pair, '😀');
    assert.equal(parsed.text, '\\ud800');
    assert.ok('k\ufffd' in parsed);
    assert.doesNotMatch(toJsonb(value), /(?<!\\)(\\\\)*\\ud[89a-f]/i);
  });

  test('managedFields are dropped; list items get their kind and apiVersion', () => {
    const o = prepareObject({ metadata: { name: 'a', namespace: 'n', managedFields: [{ manager: 'kubectl' }] } }, 'VirtualMachineInstance');
    assert.equal(o.metadata && 'managedFields' in o.metadata, false);
    assert.equal(o.kind, 'VirtualMachineInstance');
    assert.equal(o.apiVersion, 'kubevirt.io/v1');
  });
});
