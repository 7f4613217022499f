// The durable change feed: a consumer that was offline catches up with `where seq > $last`, exactly
// once and in order, even while writers commit concurrently; retention prunes old rows; and
// `ssvirt-vm-sync listen --since SEQ` resumes from a sequence number.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { packageRoot } from '../../src/lib/paths.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/eventually.js';
import { createLoginRole, dropLoginRoles } from '../helpers/roles.js';
import { ev, vm, vmsRowsSql } from './objects.js';

const NS = 'feed';
const NAMES = Array.from({ length: 20 }, (_, i) => `f-${i}`);
let db: TestDatabase;
const children: ChildProcess[] = [];

before(async () => {
  db = await createTestDatabase('change_feed');
  const ins = vmsRowsSql(NAMES.map((name) => ({ namespace: NS, name })));
  await db.query(ins.sql, ins.params);
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  if (db) await dropLoginRoles(db);
  await db?.drop();
});

let rv = 1;
/** One change per named VM (cpu sockets set to `cpu`). */
function changes(names: string[], cpu: number): string {
  return JSON.stringify(names.map((name) => ev('MODIFIED', vm({ namespace: NS, name, uid: `u-${name}`, rv: rv++, cpu: { sockets: cpu }, printableStatus: 'Running' }))));
}

async function readerUrl(): Promise<string> {
  return (await createLoginRole(db, 'vm_sync_reader', 'feed')).url;
}

describe('change feed', () => {
  test('an offline consumer catches up exactly once, in order, while writers commit concurrently', { timeout: 240_000 }, async () => {
    const consumer = new pg.Client({ connectionString: await readerUrl() });
    await consumer.connect();
    try {
      const [{ last: start }] = (await consumer.query('select coalesce(max(seq), 0)::int as last from vm_sync.change_feed')).rows;
      // Six sessions write concurrently while the consumer pages through the feed as they commit.
      let writing = true;
      const writers = Array.from({ length: 6 }, async (_, s) => {
        const c = await db.pool.connect();
        try {
          for (let round = 1; round <= 15; round++) {
            await c.query('select vm_sync.ingest($1::jsonb)', [changes(NAMES.filter((_, i) => i % 6 === s || round % 5 === 0), round * 10 + s + 1)]);
          }
        } finally {
          c.release();
        }
      });
      const seen: number[] = [];
      let last = start;
      const reader = (async () => {
        for (;;) {
          const stillWriting = writing;
          const page = (await consumer.query('select seq::int from vm_sync.change_feed where seq > $1 order by seq limit 7', [last])).rows;
          for (const r of page) seen.push(r.seq);
          if (page.length > 0) last = page.at(-1)!.seq;
          else if (!stillWriting) break;
          else await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await Promise.all(writers);
      writing = false;
      await reader;
      const all = (await db.query<{ seq: number }>('select seq::int from vm_sync.changes where seq > $1 order by seq', [start])).map((r) => r.seq);
      assert.ok(all.length > 100, `changes written (${all.length})`);
      assert.deepEqual(seen, all, 'every change seen once, in seq order, none skipped by a later commit of a lower seq');
    } finally {
      await consumer.end();
    }
  });

  test('retention: reconcile() prunes changes older than change_retention, and only those', async () => {
    await db.query('select vm_sync.ingest($1::jsonb)', [changes(NAMES.slice(0, 4), 99)]);
    const [{ n: total }] = await db.query('select count(*)::int as n from vm_sync.changes');
    await db.query(`update vm_sync.changes set changed_at = now() - interval '3 days' where seq in (select seq from vm_sync.changes order by seq limit 10)`);
    await db.query(`update vm_sync.rejects set rejected_at = now() - interval '30 days'`);
    await db.query('select vm_sync.reconcile()');
    const [{ n: left }] = await db.query('select count(*)::int as n from vm_sync.changes');
    assert.equal(left, total - 10, 'the default 24 h retention dropped exactly the old rows');
    await db.query(`update vm_sync.settings set value = '1 hour' where name = 'change_retention'`);
    await db.query(`update vm_sync.changes set changed_at = now() - interval '2 hours' where seq in (select seq from vm_sync.changes order by seq limit 5)`);
    await db.query('select vm_sync.reconcile()');
    const [{ n: after }] = await db.query('select count(*)::int as n from vm_sync.changes');
    assert.equal(after, left - 5, 'a shorter configured retention applies');
    await db.query(`update vm_sync.settings set value = '24 hours' where name = 'change_retention'`);
  });

  async function listenSince(url: string, since: number): Promise<{ lines: () => Record<string, any>[]; err: () => string }> {
    const child = spawn(process.execPath, [path.join(packageRoot, 'dist', 'src', 'cli', 'main.js'), 'listen', '--since', String(since)], {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: url, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    return { lines: () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l)), err: () => err };
  }

  async function resumes(url: string): Promise<void> {
    const [{ last }] = await db.query('select max(seq)::int as last from vm_sync.changes');
    await db.query('select vm_sync.ingest($1::jsonb)', [changes(NAMES.slice(0, 3), 201 + rv)]);
    await db.query('select vm_sync.ingest($1::jsonb)', [changes(NAMES.slice(3, 5), 301 + rv)]);
    const backlog = (await db.query<{ seq: number }>('select seq::int from vm_sync.changes where seq > $1 order by seq', [last])).map((r) => r.seq);
    const l = await listenSince(url, last);
    await eventually(() => l.lines().length >= backlog.length, 15_000, `backlog after seq ${last} printed (${l.err()})`);
    await db.query('select vm_sync.ingest($1::jsonb)', [changes(NAMES.slice(5, 6), 401 + rv)]);
    const lines = await eventually(() => (l.lines().length >= backlog.length + 1 ? l.lines() : false), 15_000, 'the live change printed');
    const seqs = lines.map((x) => Number(x.seq));
    assert.deepEqual(seqs.slice(0, backlog.length), backlog, 'the backlog: exactly the changes after --since, in order');
    assert.equal(seqs.length, backlog.length + 1, 'then the live change, once');
    assert.ok(seqs.at(-1)! > backlog.at(-1)!);
  }

  test('listen --since SEQ resumes from that sequence number', { timeout: 240_000 }, async () => {
    await resumes(db.url);
  });

  test('listen --since works for a consumer holding only vm_sync_reader', { timeout: 240_000 }, async () => {
    await resumes(await readerUrl());
  });
});
