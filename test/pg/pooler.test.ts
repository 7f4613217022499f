// Transaction pooling is found before it can break leadership: probeSessionPooling() against a real
// PgBouncer in transaction, statement and session mode, and directly; `run` through a transaction
// pooler exits 2 with a message that says what to do.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { probeSessionPooling } from '../../src/pg/pooler.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { pgbouncerMissing, startPgBouncer, type Bouncer } from '../helpers/pgbouncer.js';
import { startWatcher, stopAllWatchers, tempDir } from '../helpers/watcher.js';
import fs from 'node:fs';

const skip = pgbouncerMissing() ?? false;

describe('pooler detection', { skip }, () => {
  let db: TestDatabase;
  const bouncers: Bouncer[] = [];
  const bouncer = async (mode: 'session' | 'transaction' | 'statement', size = 2): Promise<Bouncer> => {
    const b = await startPgBouncer(db.url, mode, size);
    bouncers.push(b);
    return b;
  };

  before(async () => {
    db = await createTestDatabase('pg_pooler');
  });
  after(async () => {
    await stopAllWatchers();
    await Promise.all(bouncers.map((b) => b.stop()));
    await db?.drop();
  });

  test('a direct connection keeps one session', async () => {
    const probe = await probeSessionPooling(db.url);
    assert.equal(probe.problem, null);
    assert.equal(probe.pids.second, probe.pids.first);
    assert.notEqual(probe.pids.other, probe.pids.first);
  });

  test('PgBouncer in session mode keeps one session', async () => {
    assert.equal((await probeSessionPooling((await bouncer('session')).url)).problem, null);
  });

  test('PgBouncer in session mode with one server connection: the probe waits for nothing and passes', async () => {
    assert.equal((await probeSessionPooling((await bouncer('session', 1)).url, { timeoutMs: 1000 })).problem, null);
  });

  test('PgBouncer in transaction mode is found', async () => {
    const probe = await probeSessionPooling((await bouncer('transaction')).url);
    assert.match(probe.problem ?? '', /transaction pooling/);
  });

  test('PgBouncer in transaction mode is found by each of four probes at once (two replicas and a doctor starting together)', async () => {
    const url = (await bouncer('transaction', 4)).url;
    const probes = await Promise.all([0, 1, 2, 3].map(() => probeSessionPooling(url)));
    for (const probe of probes) assert.match(probe.problem ?? '', /transaction pooling/, JSON.stringify(probe.pids));
  });

  test('PgBouncer in transaction mode with one server connection is found', async () => {
    const probe = await probeSessionPooling((await bouncer('transaction', 1)).url, { timeoutMs: 1000 });
    assert.match(probe.problem ?? '', /transaction pooling/);
  });

  test('PgBouncer in statement mode is found', async () => {
    const probe = await probeSessionPooling((await bouncer('statement')).url);
    assert.ok(probe.problem, 'statement pooling refused');
  });

  test('`run` through a transaction pooler refuses to start: exit 2 and what to do', async () => {
    const b = await bouncer('transaction');
    const kubeconfig = path.join(tempDir('pooler'), 'kubeconfig');
    fs.writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:9", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n');
    const proc = startWatcher({ databaseUrl: b.url, kubeconfig, holder: 'pooled' });
    const { code } = await proc.exited;
    assert.equal(code, 2, proc.tail());
    assert.match(proc.tail(), /refusing to start: the database connection goes through a transaction- or statement-pooling pooler/);
    assert.match(proc.tail(), /pool_mode = session/);
    assert.ok(!proc.hasLogged('leading'));
  });
});
