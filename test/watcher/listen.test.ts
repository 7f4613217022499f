// `ssvirt-vm-sync listen`: one JSON line per change of vm_sync.change_feed, woken by vm_changed
// notifications (hints, never trusted); --since prints the backlog first without duplicates; a forged
// notification changes nothing; a lost connection is re-established and the gap read from the feed.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { packageRoot } from '../../src/lib/paths.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { vm } from '../helpers/objects.js';
import { ingest, insertVmRow } from '../helpers/sync.js';

const NS = 'vdc-listen';

describe('listen command', () => {
  let db: TestDatabase;
  const children: ChildProcess[] = [];

  before(async () => {
    db = await createTestDatabase('watcher_listen');
    for (const name of ['a', 'b', 'c', 'd']) await insertVmRow(db, { vmName: name, namespace: NS });
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await db?.drop();
  });

  /** Stops a listen process and waits until its session is gone, so the next test sees only its own. */
  async function stop(child: ChildProcess): Promise<void> {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await eventually(
      async () => (await db.query(`select 1 from pg_stat_activity where application_name = 'ssvirt-vm-sync listen' and datname = current_database()`)).length === 0,
      10_000,
      'the listen session gone',
    );
  }

  function listen(args: string[]): { lines: () => Array<Record<string, unknown>>; child: ChildProcess } {
    const child = spawn(process.execPath, [path.join(packageRoot, 'dist', 'src', 'cli', 'main.js'), 'listen', ...args], {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', () => undefined);
    return { child, lines: () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
  }

  const change = (name: string, cores: number) =>
    ingest(db, [{ type: 'ADDED', object: vm({ namespace: NS, name, cores, printableStatus: 'Stopped' }) }]);

  test('--since prints the backlog, then live changes, each seq once, in order', async () => {
    await change('a', 1);
    await change('b', 1);
    const first = (await db.query<{ seq: string }>('select min(seq)::text as seq from vm_sync.changes'))[0]!.seq;
    const l = listen(['--since', String(Number(first) - 1)]);
    await eventually(() => l.lines().length >= 2, 10_000, 'backlog printed');
    await change('c', 2);
    await change('a', 3);
    const lines = await eventually(() => (l.lines().length >= 4 ? l.lines() : false), 10_000, 'live changes printed');
    const seqs = lines.map((x) => Number(x.seq));
    assert.deepEqual(seqs, [...new Set(seqs)].sort((x, y) => x - y), 'ascending, no duplicates');
    assert.deepEqual(lines.map((x) => x.vm_name), ['a', 'b', 'c', 'a']);
    assert.deepEqual((lines[3]!.changes as Record<string, { new: unknown }>).cpu_count?.new, 3);
    assert.equal(lines[0]!.namespace, NS);
    await stop(l.child);
  });

  test('a forged or malformed notification changes nothing listen prints', async () => {
    const l = listen([]);
    await eventually(
      async () => (await db.query(`select 1 from pg_stat_activity where application_name = 'ssvirt-vm-sync listen' and datname = current_database()`)).length === 1,
      10_000,
      'listening',
    );
    await change('b', 5);
    await eventually(() => l.lines().some((x) => x.vm_name === 'b'), 10_000, 'a first change');
    // Any role may NOTIFY on any channel: a seq far ahead (which used to hide every later change),
    // a payload that is not JSON, one that is JSON of another shape.
    await db.query(`notify vm_changed, '{"seq": 999999999, "id": "forged", "vm_name": "forged", "changes": {}}'`);
    await db.query(`notify vm_changed, 'not json at all'`);
    await db.query(`notify vm_changed, '[1, 2, 3]'`);
    await change('b', 6);
    await change('c', 7);
    const lines = await eventually(() => (l.lines().length >= 3 ? l.lines() : false), 10_000, 'changes after the forgeries');
    const feed = await db.query<{ seq: string; vm_name: string }>(
      `select seq::text, vm_name from vm_sync.change_feed where seq >= $1 order by seq`, [String(lines[0]!.seq)]);
    assert.deepEqual(lines.map((x) => [String(x.seq), x.vm_name]), feed.map((r) => [r.seq, r.vm_name]), 'exactly the feed, in order');
    assert.ok(!lines.some((x) => x.id === 'forged' || x.vm_name === 'forged'), 'nothing forged printed');
    assert.deepEqual(lines.slice(1).map((x) => (x.changes as Record<string, { new: unknown }>).cpu_count?.new), [6, 7]);
    await stop(l.child);
  });

  test('after its connection is killed, listen reconnects and prints what it missed', async () => {
    const l = listen([]);
    await eventually(
      async () => (await db.query(`select 1 from pg_stat_activity where application_name = 'ssvirt-vm-sync listen' and datname = current_database()`)).length === 1,
      10_000,
      'listening',
    );
    await change('d', 1);
    await eventually(() => l.lines().some((x) => x.vm_name === 'd'), 10_000, 'first change');
    await db.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'ssvirt-vm-sync listen' and datname = current_database()`);
    // Made while (probably) disconnected: printed live or from the catch-up, but printed once.
    await change('d', 2);
    await change('d', 4);
    const lines = await eventually(() => {
      const got = l.lines().filter((x) => x.vm_name === 'd');
      return got.length >= 3 ? got : false;
    }, 20_000, 'changes after reconnect');
    assert.deepEqual(lines.map((x) => (x.changes as Record<string, { new: unknown }>).cpu_count?.new), [1, 2, 4]);
    await stop(l.child);
  });
});
